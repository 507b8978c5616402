"""HTTP client for the canonical ICS API: one keep-alive connection pool, bounded calls,
and evidence capture (redacted at capture, never the credentials).

Every call is bounded three ways: a timeout on each network operation (``timeout``), a
total deadline for the whole exchange (``deadline``: a target that answers a byte a
second never trips a per-read timeout) and a maximum response size
(``max_response_bytes``: an endless body). Exceeding either bound raises
:class:`TargetUnavailable` (an ERROR of the check, never a FAIL). The exchange runs in a
helper thread so that the deadline holds even while the target dribbles its headers.

The transport is a seam (``transport=``) in the manner of httpx, so harness unit tests
can run without a network; checks always talk real HTTP to a real target.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

DEFAULT_TIMEOUT = 10.0
#: Total seconds one exchange may take, headers and body included.
DEFAULT_DEADLINE = 60.0
#: Largest response body accepted (after content decoding): 128 MiB, for the bulk export.
DEFAULT_MAX_RESPONSE_BYTES = 128 * 1024 * 1024
_CHUNK = 64 * 1024
_EVIDENCE_LIMIT = 50
_BODY_LIMIT = 4096

Redact = Callable[[Any], Any]


class TargetUnavailable(Exception):
    """The target did not answer (refused, reset, timed out): an ERROR, never a FAIL."""


class DeadlineExceeded(TargetUnavailable):
    """The target did not complete its answer within the total deadline."""


class ResponseTooLarge(TargetUnavailable):
    """The target's answer exceeded the maximum response size."""


class _Cancelled(Exception):
    pass


def bounded(fn: Callable[[threading.Event], Any], deadline: float, what: str) -> Any:
    """Run ``fn(cancelled)`` in a daemon thread; raise :class:`DeadlineExceeded` after ``deadline`` seconds.

    ``fn`` should check ``cancelled`` between reads and give up when it is set; a thread
    stuck in a read is abandoned (daemon: it never holds up the end of the run). The
    wait is interruptible (Ctrl-C).
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()
    cancelled = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = fn(cancelled)
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=work, name="ics-bounded-call", daemon=True)
    thread.start()
    if not done.wait(deadline):
        cancelled.set()
        raise DeadlineExceeded(f"{what}: no complete answer within the {deadline:g} s deadline")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def read_limited(chunks: Any, limit: int, cancelled: threading.Event, what: str) -> bytes:
    """Join ``chunks`` (an iterator of bytes), refusing more than ``limit`` bytes or a cancelled call."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        if cancelled.is_set():
            raise _Cancelled
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"{what}: response larger than the {limit:,} byte maximum")
        parts.append(chunk)
    return b"".join(parts)


_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: Any) -> int:
    """A byte count such as ``1048576``, ``64K``, ``128M``, ``1G`` or ``128MiB`` (``ValueError`` if not one)."""
    match = _SIZE.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"not a positive number of bytes: {text!r} (e.g. 1048576, 64K, 128M, 1G)")
    return int(match.group(1)) * 1024 ** " kmg".index((match.group(2) or " ").lower())


def check_base_url(url: str) -> str:
    """The base URL of a target, or ``ValueError`` saying what is wrong with it (scheme, host, port)."""
    from urllib.parse import urlsplit

    text = str(url).strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: expected an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError(f"{url!r}: the URL names no host")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{url!r}: port {port} is not a TCP port (1-65535)")
    try:
        httpx.URL(text)
    except Exception as exc:  # httpx.InvalidURL and friends
        raise ValueError(f"{url!r} is not a valid URL ({exc})") from None
    return text


_ACCOUNTS: list[dict[str, Any]] = []
_ACCOUNTS_LOCK = threading.Lock()


def note_account(method: str, path: str, status: int, body: Any) -> None:
    """Remember a practitioner account the run created (``POST /practitioners`` -> 201): id and role only."""
    if method.upper() != "POST" or status != 201 or not path.rstrip("/").endswith("/practitioners"):
        return
    if not isinstance(body, dict) or body.get("id") in (None, ""):
        return
    from conformance.certificate.redaction import remember_secret

    for key, value in body.items():
        if "token" in str(key).lower():
            remember_secret(value)
    with _ACCOUNTS_LOCK:
        _ACCOUNTS.append({"id": str(body.get("id"))[:200], "role": str(body.get("role"))[:40]})


def drain_accounts() -> list[dict[str, Any]]:
    """The accounts noted since the last call (each reported once)."""
    with _ACCOUNTS_LOCK:
        out = list(_ACCOUNTS)
        _ACCOUNTS.clear()
    return out


def _identity(value: Any) -> Any:
    return value


def _drop_secrets(headers: Mapping[str, str]) -> dict[str, str]:
    secret = ("authorization", "proxy-authorization", "cookie", "set-cookie")
    return {k: v for k, v in headers.items() if k.lower() not in secret and "token" not in k.lower()}


class EvidenceLog:
    """The last exchanges of the current check, redacted as they are captured."""

    def __init__(
        self,
        *,
        redact_body: Redact = _identity,
        redact_headers: Callable[[Mapping[str, str]], dict[str, str]] = _drop_secrets,
        redact_text: Callable[[str], str] = _identity,
        limit: int = _EVIDENCE_LIMIT,
    ) -> None:
        self._redact_body = redact_body
        self._redact_headers = redact_headers
        self._redact_text = redact_text
        self._items: deque[dict[str, Any]] = deque(maxlen=limit)
        self._requests = 0
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Start a new check: no exchanges kept (the request count runs on until :meth:`take_requests`)."""
        with self._lock:
            self._items.clear()

    def take_requests(self) -> int:
        """HTTP requests sent since the last call (recorded ones and those only counted), and start again at 0.

        Read when a check ends, so that requests of a module- or session-scoped fixture set up
        for a check count for that check.
        """
        with self._lock:
            count, self._requests = self._requests, 0
        return count

    def count(self, n: int = 1) -> None:
        """Count ``n`` requests sent outside :class:`Client` (e.g. Schemathesis' own session)."""
        with self._lock:
            self._requests += n

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def record(
        self, request: httpx.Request, response: httpx.Response | None, elapsed: float, error: str | None
    ) -> None:
        entry: dict[str, Any] = {
            "kind": "http",
            "request": {
                "method": request.method,
                "url": self._redact_text(str(request.url)),
                "headers": self._redact_headers(dict(request.headers)),
                "json": self._redact_body(_json_or_none(request.content)),
            },
            "elapsed_ms": round(elapsed * 1000, 1),
        }
        if response is not None:
            entry["response"] = {
                "status": response.status_code,
                "headers": self._redact_headers(dict(response.headers)),
                "json": self._redact_body(_json_or_none(response.content)),
            }
        if error:
            entry["error"] = error
        with self._lock:
            self._items.append(entry)
            self._requests += 1


def _json_or_none(content: bytes) -> Any:
    if not content:
        return None
    if len(content) > _BODY_LIMIT * 16:
        return {"_truncated": f"{len(content)} bytes"}
    try:
        import orjson

        return orjson.loads(content)
    except Exception:
        text = content[:_BODY_LIMIT].decode("utf-8", "replace")
        return {"_text": text}


_ROUTE = threading.local()


@contextmanager
def evidence_to(log: EvidenceLog) -> Iterator[None]:
    """Within this thread, every :class:`Client` records into ``log`` (a check running on a thread of its own)."""
    previous = getattr(_ROUTE, "log", None)
    _ROUTE.log = log
    try:
        yield
    finally:
        _ROUTE.log = previous


class InFlight:
    """At most ``limit`` requests in flight to one target from this process (a polite harness).

    ``limit`` None: no bound (the checks run one after another anyway).
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"max in-flight requests must be >= 1, got {limit}")
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit) if limit else None

    def __enter__(self) -> InFlight:
        if self._slots is not None:
            self._slots.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._slots is not None:
            self._slots.release()


class Client:
    """A thin, timed, evidence-recording client of one ICS target."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        evidence: EvidenceLog | None = None,
        deadline: float = DEFAULT_DEADLINE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if deadline <= 0:
            raise ValueError(f"deadline must be > 0 seconds, got {deadline}")
        if max_response_bytes <= 0:
            raise ValueError(f"max_response_bytes must be > 0, got {max_response_bytes}")
        self.deadline = float(deadline)
        self.max_response_bytes = int(max_response_bytes)
        self._transport = transport
        self.base_url = base_url.rstrip("/")
        self._evidence = evidence or EvidenceLog()
        #: bounds the requests in flight to the target (shared with the transport when it has one)
        self.in_flight: InFlight = getattr(transport, "in_flight", None) or InFlight()
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "ics-conformance"},
        )

    @property
    def evidence(self) -> EvidenceLog:
        """Where this thread's exchanges are recorded: the running check's log (see :func:`evidence_to`)."""
        routed = getattr(_ROUTE, "log", None)
        return routed if routed is not None else self._evidence

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send one request; raise :class:`TargetUnavailable` if the target does not answer."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        request = self._http.build_request(
            method, path, json=json, params=clean_params or None, headers=hdrs, content=content
        )
        started = time.perf_counter()
        what = f"{method} {path}"

        def exchange(cancelled: threading.Event) -> httpx.Response:
            response = self._http.send(request, stream=True)
            try:
                content = read_limited(response.iter_bytes(_CHUNK), self.max_response_bytes, cancelled, what)
            finally:
                response.close()
            response._content = content  # the body, read within the bounds (httpx keeps it here)
            return response

        try:
            with self.in_flight:
                response = bounded(exchange, self.deadline, what)
        except (httpx.TransportError, TargetUnavailable, httpx.StreamError) as exc:  # connect, read, timeout, bounds
            self.evidence.record(request, None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
            note = getattr(self._transport, "note_failure", None)
            if note is not None and not isinstance(exc, httpx.TransportError):
                note()  # the breaker counts an exceeded bound like a transport error
            if isinstance(exc, TargetUnavailable):
                raise
            raise TargetUnavailable(f"{what}: target did not answer ({type(exc).__name__}: {exc})") from exc
        if response.status_code == 201 and method.upper() == "POST":
            note_account(method, request.url.path, response.status_code, _json_or_none(response.content))
        self.evidence.record(request, response, time.perf_counter() - started, None)
        return response

    @property
    def transport(self) -> httpx.BaseTransport | None:
        """The transport given at construction (None: httpx's own)."""
        return self._transport

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
