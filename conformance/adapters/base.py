"""The base class of a supplier adapter: an httpx transport between the harness and a native API.

The harness speaks only the canonical ICS API (``specs/openapi.yaml``). A supplier whose
system speaks its own API writes an :class:`Adapter`: an httpx transport that sits beneath
the harness's client, wraps the real transport, and translates each canonical request into
a native one (:meth:`Adapter.to_native`) and each native response back into the canonical
one (:meth:`Adapter.to_canonical`). The checks never know it is there; the certificate does
(name, version and sha256 of the adapter's source are recorded and shown on the report).

What the base class guarantees, whatever the subclass does:

* transport errors of the native system (refused, reset, timed out) pass through untouched,
  so an unreachable system is an ERROR of the check, never a FAIL;
* anything else a translation raises becomes :class:`AdapterError` naming the adapter and the
  canonical operation: an ERROR of that check, never a PASS and never a supplier FAIL (an
  ``AssertionError`` raised by a careless adapter is wrapped too, so it cannot pose as one);
* a translation that returns something other than an ``httpx.Request`` / ``httpx.Response``
  is refused the same way;
* the native response is read within the run's size bound before it is translated.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from conformance.checking.client import DEFAULT_MAX_RESPONSE_BYTES, read_limited

__all__ = ["Adapter", "AdapterError", "json_response"]

_CHUNK = 64 * 1024
#: Headers that describe the native body's encoding, not the canonical body built from it.
_BODY_HEADERS = ("content-length", "content-encoding", "transfer-encoding")


class AdapterError(Exception):
    """An adapter could not translate an exchange: an ERROR of the check, never PASS or FAIL."""


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """A canonical JSON response (``headers`` kept, except those describing the native body's encoding)."""
    import orjson

    kept = {k: v for k, v in (headers or {}).items() if k.lower() not in _BODY_HEADERS and k.lower() != "content-type"}
    kept["content-type"] = "application/json"
    return httpx.Response(status, headers=kept, content=orjson.dumps(body))


class Adapter(httpx.BaseTransport):
    """Base class of supplier adapters (entry-point group ``ics_conformance.adapters``).

    Subclass it, set :attr:`version` (or leave it empty to use the version of the
    distribution the adapter is installed from), and override :meth:`to_native` and
    :meth:`to_canonical`. Both receive complete messages: the request's body is in
    ``request.content``, the native response's in ``response.content``.
    """

    #: the adapter's own version, recorded on the certificate (empty: the distribution's version)
    version: ClassVar[str] = ""
    #: one line saying which native API it speaks (``ics-conformance adapters`` lists it)
    description: ClassVar[str] = ""
    #: the phases the adapter maps (``certify --phase`` outside them is a usage error)
    phases: ClassVar[tuple[str, ...]] = ("1A", "1B")

    def __init__(self, inner: httpx.BaseTransport, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self.inner = inner
        self.max_response_bytes = int(max_response_bytes)
        #: the name it was installed under (set by :func:`conformance.adapters.registry.load`)
        self.name = type(self).__name__

    # ------------------------------------------------------------------ what a supplier writes

    def to_native(self, request: httpx.Request) -> httpx.Request:
        """The native request for a canonical one (default: unchanged)."""
        return request

    def to_canonical(self, response: httpx.Response, request: httpx.Request) -> httpx.Response:
        """The canonical response for a native one; ``request`` is the canonical request (default: unchanged)."""
        return response

    # ------------------------------------------------------------------ the transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        what = f"{request.method} {request.url.path}"
        request.read()
        native = self._translate("request", what, self.to_native, request)
        if not isinstance(native, httpx.Request):
            raise AdapterError(f"adapter {self.name}: to_native returned {type(native).__name__} for {what}")
        if "timeout" in request.extensions and "timeout" not in native.extensions:
            native.extensions = dict(native.extensions, timeout=request.extensions["timeout"])
        response = self.inner.handle_request(native)  # transport errors pass through: the target did not answer
        try:
            content = read_limited(response.iter_bytes(_CHUNK), self.max_response_bytes, threading.Event(), what)
        finally:
            response.close()
        native_response = httpx.Response(
            response.status_code,
            headers=[(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS],
            content=content,
            request=native,
            extensions=response.extensions,
        )
        canonical = self._translate("response", what, self.to_canonical, native_response, request)
        if not isinstance(canonical, httpx.Response):
            raise AdapterError(f"adapter {self.name}: to_canonical returned {type(canonical).__name__} for {what}")
        canonical.request = request
        return canonical

    def _translate(self, kind: str, what: str, hook: Any, *args: Any) -> Any:
        try:
            return hook(*args)
        except AdapterError:
            raise
        except Exception as exc:  # a bug or a gap of the adapter, never the supplier's FAIL
            raise AdapterError(
                f"adapter {self.name} could not translate the {kind} of {what}: {type(exc).__name__}: {exc}"
            ) from exc

    def note_failure(self) -> None:
        """Pass a bound exceeded above the transport on to the inner transport's breaker, if it has one."""
        note = getattr(self.inner, "note_failure", None)
        if note is not None:
            note()

    def close(self) -> None:
        self.inner.close()
