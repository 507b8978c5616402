"""HTTP client for the canonical ICS API: one keep-alive connection pool, a timeout on
every call, and evidence capture (redacted at capture, never the credentials).

The transport is a seam (``transport=``) in the manner of httpx, so harness unit tests
can run without a network; checks always talk real HTTP to a real target.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import httpx

DEFAULT_TIMEOUT = 10.0
_EVIDENCE_LIMIT = 50
_BODY_LIMIT = 4096

Redact = Callable[[Any], Any]


class TargetUnavailable(Exception):
    """The target did not answer (refused, reset, timed out): an ERROR, never a FAIL."""


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

    def clear(self) -> None:
        self._items.clear()

    def items(self) -> list[dict[str, Any]]:
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
        self._items.append(entry)


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


class Client:
    """A thin, timed, evidence-recording client of one ICS target."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        evidence: EvidenceLog | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.evidence = evidence or EvidenceLog()
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "ics-conformance"},
        )

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
        try:
            response = self._http.send(request)
            response.read()
        except httpx.TransportError as exc:  # connect, read, timeout, protocol errors
            self.evidence.record(request, None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
            raise TargetUnavailable(f"{method} {path}: target did not answer ({type(exc).__name__}: {exc})") from exc
        self.evidence.record(request, response, time.perf_counter() - started, None)
        return response

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
