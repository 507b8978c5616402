"""Run the reference service with uvicorn: in a background thread (tests, ``certify``) or in the foreground (CLI).

The listening socket is bound here, before uvicorn starts, so a port in use is reported
as a clear :class:`~conformance.errors.UsageError` and ``port=0`` yields the real port.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from conformance.errors import UsageError


@dataclass(frozen=True)
class RunningService:
    """A started reference service: its base URL, admin token and active faults."""

    url: str
    admin_token: str
    faults: tuple[str, ...]
    app: Starlette


def bind(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket; a port in use becomes a UsageError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto set: asyncio then sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, but a stop request from another thread is seen at once, not at the next 0.1 s tick."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), 0.1)
            except TimeoutError:
                pass

    def stop(self) -> None:
        """Ask the server to shut down (thread-safe)."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop closed meanwhile
                pass


def uvicorn_server(app: Starlette) -> _Server:
    """A quiet uvicorn server for ``app`` (no access log, no lifespan)."""
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30, server_header=False
    )
    return _Server(config)


@contextmanager
def run_in_thread(
    app: Starlette, *, host: str, port: int, admin_token: str, faults: Sequence[str], startup_timeout: float = 20.0
) -> Iterator[RunningService]:
    """Serve ``app`` from a daemon thread until the block exits; wait until ``/about`` answers."""
    sock = bind(host, port)
    url = base_url(sock)
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"ics-reference {url}", daemon=True)
    thread.start()
    try:
        _wait_ready(url, thread, startup_timeout)
        yield RunningService(url=url, admin_token=admin_token, faults=tuple(faults), app=app)
    finally:
        server.stop()
        thread.join(timeout=10)
        sock.close()


def _wait_ready(url: str, thread: threading.Thread, timeout: float) -> None:
    """Poll ``GET /about`` (stdlib http.client: no TLS context to build) until it answers 200."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=2.0)
        try:
            connection.request("GET", "/about")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the reference service at {url} did not start")
        time.sleep(0.01)
