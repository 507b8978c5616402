"""A minimal stand-in ICS target for plugin tests: ``GET /about`` and a few canned routes.

Serves on a free loopback port in a thread. ``hang=True`` makes every request after the
first ``answer`` requests wait (never answering), to test timeouts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ABOUT = {
    "supplier": "Stub Systems",
    "product": "Stub ICS",
    "version": "0.1",
    "spec_versions": ["2008.1"],
    "capabilities": {"audit": True},
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.count += 1
        if self.server.hang_after is not None and self.server.count > self.server.hang_after:
            self.server.release.wait(60)
            return
        if self.path.startswith("/about"):
            self._send(200, ABOUT)
        elif self.path.startswith("/echo-auth"):
            self._send(200, {"saw_auth": bool(self.headers.get("Authorization"))})
        else:
            self._send(404, {"code": "NOT_FOUND", "message": "no such route"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    count = 0
    hang_after: int | None = None
    release: threading.Event


@contextmanager
def stub_target(*, hang_after: int | None = None) -> Iterator[str]:
    """Serve the stub; yield its base URL."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hang_after = hang_after
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        time.sleep(0)
