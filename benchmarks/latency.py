"""Latency benchmark (not a test): the same quick run direct and through a slow loopback proxy.

    .venv/bin/python benchmarks/latency.py [--delay-ms 50] [--rounds 1] [--phase 1B] [--seed 1]
                                           [--max-in-flight N] [--workers N] [--json FILE]

A supplier's test instance is 30-100 ms away; this measures what that costs a certify run.
Each round runs ``ics-conformance certify --target URL`` twice against a fresh reference
service (``serve-reference``, its own process, so the harness and the target do not share
a core's interpreter lock): once direct, once through a loopback TCP proxy that holds each
request ``--delay-ms`` milliseconds before passing it on (it delays the first bytes a client
sends after the server last spoke: one delay per HTTP request on a keep-alive connection).
Rounds alternate the order (direct first, then proxied first, ...) so that a change in the
machine's load hits both alike. It prints each run's wall time and requests, the ratio
proxied / direct, and the load average (``os.getloadavg``) before and after each run.

Goal (issue 16): proxied <= 1.5 x direct with 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class DelayProxy:
    """A loopback TCP proxy adding ``delay`` seconds to every request (see the module docstring)."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.port = 0
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return
        turn = {"server_spoke": True}

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if turn["server_spoke"]:  # the first bytes of a new request
                    turn["server_spoke"] = False
                    self.requests += 1
                    await asyncio.sleep(self.delay)
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                turn["server_spoke"] = True
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def reference(token_file: Path) -> Iterator[int]:
    """A fresh ``serve-reference`` process (in-memory database); yields its port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "ICS_ADMIN_TOKEN"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conformance",
            "serve-reference",
            "--port",
            str(port),
            "--admin-token-file",
            str(token_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("serve-reference exited") from None
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def certify(url: str, token_file: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One certify run against ``url``; wall seconds, exit code, verdict and request count."""
    cmd = [sys.executable, "-m", "conformance", "certify", "--target", url, "--token-file", str(token_file)]
    cmd += ["--phase", args.phase, "--profile", "quick", "--seed", str(args.seed), "--no-bundle", "--quiet"]
    cmd += ["--output", str(out)]
    if args.workers is not None:
        cmd += ["-n", str(args.workers)]
    if args.max_in_flight is not None:
        cmd += ["--max-in-flight", str(args.max_in_flight)]
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - began
    results = sorted(out.glob("*/result.json"), key=lambda p: p.stat().st_mtime)
    result = json.loads(results[-1].read_text()) if results else {}
    return {
        "seconds": round(seconds, 1),
        "exit": proc.returncode,
        "verdict": result.get("verdict"),
        "requests": (result.get("requests") or {}).get("total"),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "stderr": proc.stderr[-2000:] if proc.returncode not in (0, 1) else "",
        "not_passed": {
            r["id"]: next((str(c.get("message") or "")[:300] for c in r.get("checks") or [] if c.get("message")), "")
            for r in result.get("requirements") or []
            if r.get("verdict") != "PASS"
        },
        "errors": result.get("errors") or [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay-ms", type=float, default=50.0, help="delay per request (default 50)")
    parser.add_argument("--rounds", type=int, default=1, help="direct/proxied pairs, order alternating (default 1)")
    parser.add_argument("--phase", default="1B", choices=("1A", "1B", "1C"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", help="certify -n (default: certify's)")
    parser.add_argument("--max-in-flight", type=int, help="certify --max-in-flight (default: certify's)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to FILE")
    args = parser.parse_args(argv)

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ics-latency-") as tmp:
        work = Path(tmp)
        token_file = work / "token"
        token_file.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        token_file.chmod(0o600)
        for round_no in range(args.rounds):
            order = ("direct", "proxied") if round_no % 2 == 0 else ("proxied", "direct")
            for mode in order:
                with reference(token_file) as port:
                    if mode == "direct":
                        run = certify(f"http://127.0.0.1:{port}", token_file, args, work / f"{mode}-{round_no}")
                    else:
                        with DelayProxy(port, args.delay_ms / 1000) as proxy:
                            run = certify(
                                f"http://127.0.0.1:{proxy.port}", token_file, args, work / f"{mode}-{round_no}"
                            )
                            run["proxied_requests"] = proxy.requests
                run.update(mode=mode, round=round_no)
                runs.append(run)
                print(json.dumps(run), flush=True)
    direct = [r["seconds"] for r in runs if r["mode"] == "direct"]
    proxied = [r["seconds"] for r in runs if r["mode"] == "proxied"]
    summary = {
        "delay_ms": args.delay_ms,
        "direct_s": round(sum(direct) / len(direct), 1),
        "proxied_s": round(sum(proxied) / len(proxied), 1),
        "ratio": round(sum(proxied) / sum(direct), 2),
        "goal": 1.5,
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "max_in_flight": args.max_in_flight,
        "workers": args.workers,
    }
    print(
        f"direct {summary['direct_s']} s, through a {args.delay_ms:g} ms proxy {summary['proxied_s']} s: "
        f"ratio {summary['ratio']} (goal <= 1.5); load average {summary['loadavg_1_5_15']} on {summary['cpus']} CPUs"
    )
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2) + "\n", encoding="utf-8")
    verdicts = {r["verdict"] for r in runs}
    return 0 if verdicts == {"CERTIFIED"} else 1


if __name__ == "__main__":
    sys.exit(main())
