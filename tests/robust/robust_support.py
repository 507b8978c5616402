"""Real loopback servers for the robustness tests: the reference in its own process, and a
proxy in front of it that behaves like a supplier's system (extra personal fields, non-JSON
bodies, wrong content types) or like a hostile or broken one (a byte a second, an endless body).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

#: Canonical fields holding personal data: every value of them the proxy sees is a needle.
PERSONAL_FIELDS = (
    "given_name",
    "family_name",
    "name",
    "date_of_birth",
    "expected_date_of_birth",
    "date_of_death",
    "upn",
    "nhs_number",
    "local_id",
    "postcode",
    "text",
    "preview",
    "reason",
)
SUPPLIER_FIELDS = ("forename", "surname", "full_name", "dob", "nhsNumber", "home_address")


def _word(rng: secrets.SystemRandom, n: int = 9) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(n // 2)).capitalize()


@contextmanager
def reference_process(token: str, faults: tuple[str, ...] = ()) -> Iterator[str]:
    """``ics-conformance serve-reference`` in its own process (own CPU, own GIL); yield its URL."""
    command = [sys.executable, "-m", "conformance", "serve-reference", "--port", "0"]
    for fault in faults:
        command += ["--fault", fault]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "ICS_ADMIN_TOKEN": token},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        assert match, f"serve-reference said {line!r}"
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Proxy(ThreadingHTTPServer):
    """A loopback HTTP proxy to ``upstream``; ``tamper`` rewrites each answer.

    ``tamper(method, path, status, headers, body) -> (status, headers, body | None)``;
    a ``None`` body means the handler already answered (e.g. slowly, or without end).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: str, tamper: Callable[..., Any]) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = urlsplit(upstream)
        self.tamper = tamper
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: Proxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        self.server.requests += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            status, data = answer.status, answer.read()
            answer_headers = {
                k: v
                for k, v in answer.getheaders()
                if k.lower() not in ("content-length", "connection", "transfer-encoding")
            }
        finally:
            upstream.close()
        status, answer_headers, data = self.server.tamper(self, self.command, self.path, status, answer_headers, data)
        if data is None:
            self.close_connection = True
            return
        self.send_response(status)
        for key, value in answer_headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward


@contextmanager
def proxy(upstream: str, tamper: Callable[..., Any]) -> Iterator[Proxy]:
    server = Proxy(upstream, tamper)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class SupplierSystem:
    """A tamper function: the reference dressed up as a supplier's system, remembering every secret
    and every piece of personal data it handed out.

    * every JSON object in an answer gains supplier fields with personal data (new values each time);
    * a 404 answer becomes an HTML page naming a person (a non-JSON body);
    * every 7th answer to ``GET /children`` becomes ``text/plain`` prose about a person;
    * ``POST /practitioners`` answers with the wrong content type (``text/plain``), so the contract
      check reports that answer - the new account's token included - as non-conforming.
    """

    def __init__(self) -> None:
        self.rng = secrets.SystemRandom()
        self.tokens: set[str] = set()
        self.personal: set[str] = set()
        self.lock = threading.Lock()
        self.searches = 0

    def _person(self) -> dict[str, str]:
        forename, surname = _word(self.rng), _word(self.rng, 11)
        person = {
            "forename": forename,
            "surname": surname,
            "full_name": f"{forename} {surname}",
            "dob": f"19{self.rng.randrange(50, 99)}-0{self.rng.randrange(1, 9)}-1{self.rng.randrange(0, 9)}",
            "nhsNumber": str(self.rng.randrange(10**9, 10**10)),
            "home_address": f"{self.rng.randrange(10, 99)} {_word(self.rng, 8)} Mews, {_word(self.rng, 7)}",
        }
        with self.lock:
            self.personal.update(person.values())
        return person

    def _dress(self, value: Any) -> Any:
        if isinstance(value, dict):
            for key, item in list(value.items()):
                if "token" in key.lower() and isinstance(item, str):
                    with self.lock:
                        self.tokens.add(item)
                elif key in PERSONAL_FIELDS and isinstance(item, str):
                    with self.lock:
                        self.personal.add(item)
                if key != "capabilities":  # the capability statement is validated strictly
                    value[key] = self._dress(item)
            value.update(self._person())
            return value
        if isinstance(value, list):
            return [self._dress(v) for v in value]
        return value

    def __call__(self, handler: Any, method: str, path: str, status: int, headers: dict, body: bytes) -> Any:
        kind = headers.get("Content-Type") or headers.get("content-type") or ""
        if status == 404:
            person = self._person()
            page = f"<html><body><h1>Not found</h1><p>No record for {person['full_name']} (NHS {person['nhsNumber']}), {person['home_address']}</p></body></html>"
            return 404, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
        if "json" not in kind:
            return status, headers, body
        try:
            data = json.loads(body)
        except ValueError:
            return status, headers, body
        data = self._dress(data)
        if method == "GET" and path.startswith("/children?"):
            with self.lock:
                self.searches += 1
                prose = self.searches % 7 == 0
            if prose:
                person = self._person()
                text = f"Search results for {person['full_name']}, born {person['dob']}, of {person['home_address']}"
                return status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode()
        out = dict(headers)
        if method == "POST" and path.rstrip("/").endswith("/practitioners") and status == 201:
            out["Content-Type"] = "text/plain; charset=utf-8"
        return status, out, json.dumps(data, ensure_ascii=False).encode()


def slow_paths(prefixes: tuple[str, ...], *, endless: tuple[str, ...] = ()) -> Callable[..., Any]:
    """A tamper function: answers to ``prefixes`` come a byte a second (headers included);
    answers to ``endless`` stream a body that never ends; the rest pass unchanged."""

    def tamper(handler: Any, method: str, path: str, status: int, headers: dict, body: bytes) -> Any:
        if any(path.startswith(p) for p in endless):
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            chunk = b"[" + b"0," * 32768
            try:
                handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                chunk = b"0," * 32768
                while True:
                    handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except OSError:
                return status, headers, None
        if any(path.startswith(p) for p in prefixes):
            raw = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            try:
                for byte in raw + body:
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(1.0)
            except OSError:
                pass
            return status, headers, None
        return status, headers, body

    return tamper


def needle_forms(value: str) -> set[bytes]:
    """The ways a value can appear in an artefact: as is, URL-encoded, JSON-escaped, lower case."""
    forms = {
        value,
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    return {f.encode("utf-8") for f in forms if f}


def artefacts(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and every member of every zip there."""
    import zipfile

    found: dict[str, bytes] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        found[str(path.relative_to(root))] = data
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    found[f"{path.name}:{name}"] = archive.read(name)
    return found


class _HostileHandler(BaseHTTPRequestHandler):
    """``/slow``: a byte a second, headers included; ``/endless``: a body that never ends; else a small JSON."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = (
            b'{"spec_versions": ["2008.1"], "supplier": "Hostile", "product": "x", "version": "1", "capabilities": {}}'
        )
        if self.path.startswith("/slow"):
            raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            try:
                for byte in raw:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(1.0)
            except OSError:
                pass
            self.close_connection = True
            return
        if self.path.startswith("/endless"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b" " * 65536
            try:
                while True:
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:
                pass
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


@contextmanager
def hostile_server() -> Iterator[str]:
    """A loopback server answering slowly (``/slow``), endlessly (``/endless``) or normally."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def about_server(about: dict[str, Any]) -> Iterator[str]:
    """A loopback target whose ``GET /about`` is ``about``; the admin token is accepted; the rest 404."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/about"):
                status, body = 200, about
            elif self.path.startswith("/practitioners/me"):
                status, body = 200, {"id": "p-admin", "name": "Administrator", "role": "admin"}
            else:
                status, body = 404, {"code": "NOT_FOUND", "message": "no such route"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
