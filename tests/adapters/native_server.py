"""CaseBase 2: a server that speaks only a legacy-shaped native API (test equipment for adapters).

It is the system a supplier adapter (``conformance/adapters/legacy.py``) is certified through
(``test_adapter_certify.py``).
On the wire it speaks only its native API: ``/clients`` and friends, native field names,
``dd/mm/yyyy`` dates, ``offset``/``limit`` paging, an ``X-Api-Key`` header, numbered errors
with HTTP 400 for refused input. Behind that facade its records and rules are the reference
service's store and rules, run in this process; the facade's translation tables are its own,
written apart from the adapter's so that a mistake in one is not cancelled by the same
mistake in the other.

Faults: ``--reference-fault NAME`` injects a reference fault into the engine behind the facade
(a native-side rule bug); ``--fault offset-skips-one`` is a bug of the native paging itself
(a page at a non-zero offset starts one record late).

Usage: ``CASEBASE_ADMIN_KEY=... python server.py --port 0 [--reference-fault NAME] [--fault NAME]``;
prints ``listening on URL`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FAULTS = {"offset-skips-one": "a page at a non-zero offset starts one record late (drops a record per page boundary)"}
DEFAULT_LIMIT = 25
MAX_LIMIT = 100

#: native name -> name in the engine (the reference's)
NAMES = {
    "forename": "given_name",
    "surname": "family_name",
    "dob": "date_of_birth",
    "expected_dob": "expected_date_of_birth",
    "dod": "date_of_death",
    "client_ref": "local_id",
    "client_id": "child_id",
    "nhs_no": "nhs_number",
    "post_code": "postcode",
    "restricted_access": "shielded",
    "worker_id": "practitioner_id",
    "date_started": "start_date",
    "date_ended": "end_date",
    "date_received": "received_on",
    "date_completed": "completed_on",
    "date_of_visit": "visit_date",
    "date_due": "due_date",
    "seen": "child_seen",
    "note_id": "case_note_id",
    "created": "created_at",
    "modified": "updated_at",
    "acked": "acknowledged_at",
    "include_dead": "include_deceased",
    "api_key": "token",
    "vendor": "supplier",
    "product_name": "product",
    "release": "version",
    "ics_versions": "spec_versions",
    "features": "capabilities",
}
ENGINE_NAMES = {engine: native for native, engine in NAMES.items()}
NATIVE_DATES = {"dob", "expected_dob", "dod", "date_started", "date_ended", "date_received", "date_completed"}
NATIVE_DATES |= {"date_of_visit", "date_due"}
ROLE_CODES = {"sysadmin": "admin", "team_manager": "manager", "social_worker": "practitioner", "viewer": "read_only"}
ENGINE_ROLES = {engine: native for native, engine in ROLE_CODES.items()}
#: engine error code -> native error number
NUMBERS = {
    "UNAUTHENTICATED": 1001,
    "FORBIDDEN": 1003,
    "NOT_FOUND": 1004,
    "VALIDATION_ERROR": 2000,
    "INVALID_UPN": 2101,
    "INVALID_NHS_NUMBER": 2102,
    "INVALID_POSTCODE": 2103,
    "INVALID_NAME": 2104,
    "DATE_IN_FUTURE": 2201,
    "DATE_ORDER": 2202,
    "UNKNOWN_PRACTITIONER": 2301,
    "CHILD_NOT_SEEN": 2401,
    "DUPLICATE_LOCAL_ID": 3001,
    "ASSESSMENT_ALREADY_OPEN": 3002,
    "ASSESSMENT_NOT_OPEN": 3003,
    "INTERNAL_ERROR": 5000,
    "NOT_IMPLEMENTED": 5001,
}
#: native route (``*`` one segment) -> engine route; the paged ones answer results/offset/limit/count
ROUTES = [
    ("system-info", "about"),
    ("workers", "practitioners"),
    ("workers/self", "practitioners/me"),
    ("workers/self/alerts", "practitioners/me/notifications"),
    ("alerts/*/ack", "notifications/*/acknowledge"),
    ("clients", "children"),
    ("clients/*", "children/*"),
    ("clients/*/other-names", "children/*/aliases"),
    ("clients/*/keyworkers", "children/*/allocations"),
    ("keyworkers/*/close", "allocations/*/end"),
    ("clients/*/notes", "children/*/case-notes"),
    ("clients/*/referrals", "children/*/referrals"),
    ("referrals", "referrals"),
    ("referrals/*", "referrals/*"),
    ("clients/*/assessments", "children/*/assessments"),
    ("assessments/*", "assessments/*"),
    ("assessments/*/home-visits", "assessments/*/visits"),
    ("assessments/*/sign-off", "assessments/*/complete"),
    ("audit-trail", "audit"),
    ("extract", "export"),
]
PAGED_ROUTES = {"clients", "workers/self/alerts", "audit-trail"}
IDENTITY = {"vendor": "CaseBase Systems Ltd", "product_name": "CaseBase", "release": "2.4 (test double)"}
_DMY = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_YMD = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class Refused(Exception):
    """A request the native layer itself refuses (native error number, fields)."""

    def __init__(self, number: int, text: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(text)
        self.number, self.text, self.fields = number, text, fields or []


def route(raw_path: str) -> tuple[str, str] | None:
    """(native route, engine path) of a native path, or None."""
    segments = [s for s in raw_path.split("/") if s]
    for native, engine in ROUTES:
        pattern = native.split("/")
        if len(pattern) != len(segments) or not all(p in ("*", s) for p, s in zip(pattern, segments)):
            continue
        ids = iter(s for p, s in zip(pattern, segments) if p == "*")
        return native, "/" + "/".join(next(ids) if part == "*" else part for part in engine.split("/"))
    return None


def to_engine(value: Any, where: str = "") -> Any:
    """A native JSON value in the engine's names; a native date off dd/mm/yyyy is refused here."""
    if isinstance(value, list):
        return [to_engine(v, where) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in NATIVE_DATES and isinstance(item, str):
            match = _DMY.match(item)
            if not match:
                raise Refused(2000, f"{key}: dates are dd/mm/yyyy", [{"name": key, "text": "expected dd/mm/yyyy"}])
            item = f"{match.group(3)}-{match.group(2)}-{match.group(1)}"
        elif key == "role" and isinstance(item, str):
            item = ROLE_CODES.get(item, f"unknown role {item}")
        else:
            item = to_engine(item)
        out[NAMES.get(key, key)] = item
    return out


def to_native(value: Any) -> Any:
    """An engine JSON value in native names, dates and role codes."""
    if isinstance(value, list):
        return [to_native(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        name = ENGINE_NAMES.get(key, key)
        if name in NATIVE_DATES and isinstance(item, str) and (match := _YMD.match(item)):
            item = f"{match.group(3)}/{match.group(2)}/{match.group(1)}"
        elif key == "role" and isinstance(item, str):
            item = ENGINE_ROLES.get(item, item)
        else:
            item = to_native(item)
        out[name] = item
    return out


def native_error(status: int, engine_body: Any) -> tuple[int, dict[str, Any]]:
    code = engine_body.get("code") if isinstance(engine_body, dict) else None
    number = NUMBERS.get(str(code), 2001 if status == 400 else 2002 if status == 405 else 9000 + status)
    native_status = 400 if status in (400, 422) else status
    fields = [
        {"name": ".".join(ENGINE_NAMES.get(p, p) for p in str(d.get("field", "")).split(".")), "text": d.get("message")}
        for d in (engine_body.get("details") or [] if isinstance(engine_body, dict) else [])
        if isinstance(d, dict)
    ]
    text = engine_body.get("message") if isinstance(engine_body, dict) else "error"
    if number == 1001:
        text = "X-Api-Key missing or not valid"
    return native_status, {"error": {"number": number, "text": text, "fields": fields}}


class Facade:
    """ASGI app: the native API in front of the engine (the reference app)."""

    def __init__(self, engine: ASGIApp, faults: set[str]) -> None:
        self.engine, self.faults = engine, faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.engine(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            status, headers, content = await self.handle(scope, body)
        except Refused as refused:
            status, headers = 400, [(b"content-type", b"application/json")]
            fields = refused.fields
            content = orjson.dumps({"error": {"number": refused.number, "text": refused.text, "fields": fields}})
        headers = [(k, v) for k, v in headers if k.lower() not in (b"content-length",)]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def handle(self, scope: Scope, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        found = route(raw_path)
        if found is None:
            raise_status = 404
            return (
                raise_status,
                [(b"content-type", b"application/json")],
                orjson.dumps({"error": {"number": 1004, "text": "no such resource", "fields": []}}),
            )
        native_route, engine_path = found
        headers = [
            (k, v) for k, v in scope["headers"] if k.lower() not in (b"authorization", b"x-api-key", b"content-length")
        ]
        key = next((v for k, v in scope["headers"] if k.lower() == b"x-api-key"), None)
        if key:
            headers.append((b"authorization", b"Bearer " + key))
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        paged = scope["method"] == "GET" and native_route in PAGED_ROUTES
        ignored = ("offset", "limit", "page", "page_size") if paged else ()
        params = [(NAMES.get(k, k), v) for k, v in query if k not in ignored]
        params = [(k, self._query_date(k, v)) for k, v in params]
        content_type = next((v for k, v in scope["headers"] if k.lower() == b"content-type"), b"")
        if body and b"json" in content_type:
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                pass  # the engine refuses it as malformed
            else:
                body = orjson.dumps(to_engine(document))
        method = scope["method"]
        if paged:
            offset, limit = self._window(query)
            return await self._page(scope, engine_path, headers, params, offset, limit)
        status, out_headers, content = await self._engine(scope, method, engine_path, headers, params, body)
        return self._answer(status, out_headers, content, native_route)

    @staticmethod
    def _query_date(name: str, value: str) -> str:
        if ENGINE_NAMES.get(name, name) not in NATIVE_DATES:
            return value
        match = _DMY.match(value)
        if not match:
            native = ENGINE_NAMES.get(name, name)
            raise Refused(2000, f"{native}: dates are dd/mm/yyyy", [{"name": native, "text": "expected dd/mm/yyyy"}])
        return f"{match.group(3)}-{match.group(2)}-{match.group(1)}"

    @staticmethod
    def _window(query: list[tuple[str, str]]) -> tuple[int, int]:
        values = dict(query)
        try:
            offset = int(values.get("offset", "0"))
            limit = int(values.get("limit", str(DEFAULT_LIMIT)))
        except ValueError:
            raise Refused(
                2000, "offset and limit are whole numbers", [{"name": "offset", "text": "not a number"}]
            ) from None
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            raise Refused(2000, f"offset >= 0 and limit 1..{MAX_LIMIT}", [{"name": "limit", "text": "out of range"}])
        return offset, limit

    async def _page(
        self,
        scope: Scope,
        path: str,
        headers: list[tuple[bytes, bytes]],
        params: list[tuple[str, str]],
        offset: int,
        limit: int,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        asked = offset
        if offset and "offset-skips-one" in self.faults:
            offset += 1  # the injected paging bug
        first = offset // limit + 1
        items: list[Any] = []
        total = 0
        for page in (first, first + 1) if offset % limit else (first,):
            status, out_headers, content = await self._engine(
                scope, "GET", path, headers, params + [("page", str(page)), ("page_size", str(limit))], b""
            )
            if status != 200:
                return self._answer(status, out_headers, content, "")
            document = orjson.loads(content)
            items += document["items"]
            total = document["total"]
        start = offset % limit
        native = {"results": to_native(items[start : start + limit]), "offset": asked, "limit": limit, "count": total}
        return 200, [(b"content-type", b"application/json")], orjson.dumps(native)

    def _answer(
        self, status: int, headers: list[tuple[bytes, bytes]], content: bytes, native_route: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        if b"json" not in content_type or not content:
            return status, headers, content
        document = orjson.loads(content)
        if status >= 400:
            status, native = native_error(status, document)
        else:
            if isinstance(document, dict) and "items" in document:
                document = {"results": document["items"], **{k: v for k, v in document.items() if k != "items"}}
            native = to_native(document)
            if native_route == "system-info":
                native.update(IDENTITY)
        return status, headers, orjson.dumps(native)

    async def _engine(
        self,
        scope: Scope,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        params: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        query = urlencode(params).encode("ascii")
        inner = dict(scope, method=method, path=path, raw_path=path.encode("latin-1"), query_string=query)
        inner["headers"] = headers + [(b"content-length", str(len(body)).encode())]
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:  # the client stays connected: wait until the engine stops listening (a streamed body)
                await asyncio.Event().wait()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        answer: dict[str, Any] = {"body": b""}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"], answer["headers"] = message["status"], list(message.get("headers") or [])
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await self.engine(inner, receive, send)
        return answer["status"], answer["headers"], answer["body"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CaseBase 2: a legacy-shaped native ICS API (test equipment)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reference-fault", action="append", default=[], help="fault of the engine behind the facade")
    parser.add_argument(
        "--fault", action="append", default=[], choices=sorted(FAULTS), help="fault of the native layer"
    )
    args = parser.parse_args(argv)
    key = os.environ.get("CASEBASE_ADMIN_KEY")
    if not key:
        print("server.py: set CASEBASE_ADMIN_KEY (the admin API key)", file=sys.stderr)
        return 2
    from conformance.reference import create_app
    from conformance.reference.server import base_url, bind, uvicorn_server

    app = Facade(create_app(faults=args.reference_fault, admin_token=key), set(args.fault))
    sock = bind(args.host, args.port)
    print(f"listening on {base_url(sock)}", flush=True)
    uvicorn_server(app).run(sockets=[sock])  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
