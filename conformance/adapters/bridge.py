"""A ``requests`` transport adapter that sends through an httpx transport (a supplier adapter).

Schemathesis sends the contract checks' requests with ``requests``; through this bridge they
take the same path as every other check's — the supplier adapter, then the real transport —
bounded the same way (total deadline, maximum response size).
"""

from __future__ import annotations

import http
import threading
from collections.abc import Mapping
from typing import Any

import httpx
from requests import PreparedRequest, Response
from requests.adapters import BaseAdapter
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from conformance.checking.client import bounded, read_limited

__all__ = ["TransportBridge"]


class TransportBridge(BaseAdapter):
    """Mount on a ``requests.Session`` to send its requests through ``transport``."""

    def __init__(self, transport: httpx.BaseTransport, *, timeout: float, deadline: float, limit: int) -> None:
        super().__init__()
        self.transport, self.timeout, self.deadline, self.limit = transport, timeout, deadline, limit

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        body = request.body
        content = body.encode("utf-8") if isinstance(body, str) else body if isinstance(body, bytes) else b""
        seconds = timeout if isinstance(timeout, (int, float)) else self.timeout
        native = httpx.Request(
            str(request.method),
            str(request.url),
            headers=[(str(k), v if isinstance(v, str) else v.decode("latin-1")) for k, v in request.headers.items()],
            content=content,
            extensions={"timeout": httpx.Timeout(seconds).as_dict()},
        )
        what = f"{request.method} {request.path_url}"

        def exchange(cancelled: threading.Event) -> tuple[httpx.Response, bytes]:
            answer = self.transport.handle_request(native)
            try:
                return answer, read_limited(answer.iter_bytes(64 * 1024), self.limit, cancelled, what)
            finally:
                answer.close()

        try:
            answer, data = bounded(exchange, self.deadline, what)
        except httpx.TimeoutException as exc:
            raise ReadTimeout(f"{what}: {exc}", request=request) from exc
        except httpx.TransportError as exc:
            raise RequestsConnectionError(f"{what}: {exc}", request=request) from exc
        return _response(request, answer, data)

    def close(self) -> None:
        """The transport belongs to the session's client: closed with it, not here."""


def _response(request: PreparedRequest, answer: httpx.Response, data: bytes) -> Response:
    from urllib3 import HTTPHeaderDict, HTTPResponse

    headers = [
        (k, v) for k, v in answer.headers.multi_items() if k.lower() not in ("content-encoding", "transfer-encoding")
    ]
    raw_headers = HTTPHeaderDict()
    for key, value in headers:
        raw_headers.add(key, value)
    response = Response()
    response.status_code = answer.status_code
    response.headers = CaseInsensitiveDict(raw_headers)
    response.raw = HTTPResponse(
        body=b"", headers=raw_headers, status=answer.status_code, version=11, preload_content=False
    )
    response._content = data
    response._content_consumed = True
    response.encoding = get_encoding_from_headers(response.headers)
    try:
        response.reason = http.HTTPStatus(answer.status_code).phrase
    except ValueError:
        response.reason = ""
    response.url = str(request.url)
    response.request = request
    return response
