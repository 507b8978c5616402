"""Run the reference service: in a background thread for tests and the harness, or in
the foreground for ``serve-reference``."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import httpx
import uvicorn

from conformance.reference.service import create_app

_START_TIMEOUT = 15.0


@dataclass(frozen=True)
class RunningService:
    """A reference service listening on ``url``; ``admin_token`` is hidden from ``repr``."""

    url: str
    admin_token: str = field(repr=False)
    faults: tuple[str, ...] = ()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextmanager
def serve(
    *,
    faults: Iterable[str] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    admin_token: str | None = None,
    db_path: str | None = None,
    today: Callable[[], date] | None = None,
) -> Iterator[RunningService]:
    """Start the reference on ``host:port`` (0: a free port) in a thread; stop it on exit."""
    token = admin_token or secrets.token_urlsafe(24)
    fault_list = tuple(faults)
    app = create_app(faults=fault_list, admin_token=token, db_path=db_path, today=today)
    chosen = port or _free_port(host)
    config = uvicorn.Config(app, host=host, port=chosen, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name=f"ics-reference-{chosen}", daemon=True)
    thread.start()
    url = f"http://{host}:{chosen}"
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if not thread.is_alive():
            raise OSError(f"the reference service could not start on {host}:{chosen} (port in use?)")
        try:
            if httpx.get(f"{url}/about", timeout=1.0).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.should_exit = True
            raise OSError(f"the reference service did not answer on {url} within {_START_TIMEOUT:.0f} s")
        time.sleep(0.02)
    try:
        yield RunningService(url=url, admin_token=token, faults=fault_list)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
