"""The reference service's HTTP application: the canonical ICS API of design.md §4.

One :class:`Reference` holds the store, the active faults and the clock; each operation
of ``specs/openapi.yaml`` is one method, wrapped by :meth:`Reference._endpoint`, which
authenticates the caller, turns :class:`ApiError` into an error body and never lets an
expected failure become a 5xx. Bodies and query strings are validated against the
OpenAPI document's own schemas before any rule of the domain is applied.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from conformance._version import __version__
from conformance.reference import rules
from conformance.reference.export import write_export
from conformance.reference.openapi import FieldError, Operation, load_openapi
from conformance.reference.store import Store, new_id

_LONDON = ZoneInfo("Europe/London")
ADMIN_ID = "p-admin"
READERS = frozenset({"admin", "manager", "practitioner", "read_only"})
WRITERS = frozenset({"admin", "manager", "practitioner"})
MANAGERS = frozenset({"admin", "manager"})
ADMINS = frozenset({"admin"})
SEARCH_CRITERIA = ("given_name", "family_name", "date_of_birth", "gender", "postcode", "upn", "nhs_number", "local_id")
CHILD_FIELDS = ("id", "local_id", "given_name", "family_name", "date_of_birth", "expected_date_of_birth", "gender",
                "date_of_death", "upn", "nhs_number", "postcode", "shielded", "created_at", "updated_at")
CAPABILITIES = {
    "unborn_children": True, "shielded_records": True, "restricted_notes": True, "audit": True,
    "bulk_export": True, "notification_latency_seconds": 2, "seen_alone": True,
    "inter_council_transfer": False, "chronology_export": False,
}
NOTIFY_DELAY_SECONDS = 6.0


def london_today() -> date:
    """Today's date in Europe/London (the ICS "today")."""
    return datetime.now(_LONDON).date()


def now_stamp() -> str:
    """The current UTC time as an RFC 3339 timestamp ending in ``Z``."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def token_digest(token: str) -> str:
    """sha256 of a bearer token: the only form in which tokens are stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ApiError(Exception):
    """An error answer: HTTP status, machine-readable code, message and field details."""

    def __init__(self, status: int, code: str, message: str, details: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self) -> Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = [{"field": d.field, "message": d.message} for d in self.details]
        return _json(body, self.status)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _invalid(errors: list[FieldError]) -> ApiError:
    fields = ", ".join(dict.fromkeys(e.field for e in errors))
    return ApiError(422, "VALIDATION_ERROR", f"invalid field(s): {fields}", errors)


def _field_error(code: str, field: str, message: str) -> ApiError:
    return ApiError(422, code, f"{field}: {message}", [FieldError(field, message)])


def _parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None




class Reference:
    """The service: store, faults, clock, and one method per API operation."""

    def __init__(self, store: Store, faults: Collection[str], admin_token: str, today: Callable[[], date] | None) -> None:
        self.store = store
        self.faults = frozenset(faults)
        self.today = today or london_today
        self.spec = load_openapi()
        self._tokens: dict[str, dict[str, Any]] = {}
        digest = token_digest(admin_token)
        if store.get("practitioners", ADMIN_ID) is None:
            store.insert("practitioners", {"id": ADMIN_ID, "name": "Administrator", "role": "admin", "token_sha256": digest})
        else:
            store.update("practitioners", ADMIN_ID, {"token_sha256": digest})
        self._admin = {"id": ADMIN_ID, "name": "Administrator", "role": "admin"}

    # -- plumbing ------------------------------------------------------------------

    def has(self, fault: str) -> bool:
        return fault in self.faults

    def _authenticate(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if token:
            digest = token_digest(token)
            who = self._tokens.get(digest)
            if who is None:
                row = self.store.one("SELECT id, name, role FROM practitioners WHERE token_sha256 = ?", (digest,))
                if row is not None:
                    who = self._tokens[digest] = row
            if who is not None:
                return who
        if self.has("auth-ignored") or (token and self.has("auth-accepts-any-token")):
            return self._admin
        raise ApiError(401, "UNAUTHENTICATED", "a valid bearer token is required")

    def _require(self, who: dict[str, Any], roles: frozenset[str]) -> None:
        if who["role"] not in roles and not self.has("rights-ignored"):
            raise ApiError(403, "FORBIDDEN", f"role {who['role']!r} may not do this")

    def _endpoint(self, operation_id: str, handler: Callable[..., Any], roles: frozenset[str] | None) -> Callable[[Request], Awaitable[Response]]:
        operation = self.spec.operations[operation_id]

        async def endpoint(request: Request) -> Response:
            try:
                who = self._authenticate(request) if roles is not None else self._admin
                if roles is not None:
                    self._require(who, roles)
                result = handler(request, who, operation)
                if isinstance(result, Awaitable):
                    result = await result
                return result
            except ApiError as exc:
                return exc.response()

        return endpoint

    async def _body(self, request: Request, operation: Operation, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip() and not operation.body_required:
            body: Any = {}
        else:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ApiError(400, "MALFORMED_REQUEST", "the request body is not valid JSON") from None
        errors = operation.validate_body(body, skip)
        if errors:
            raise _invalid(errors)
        return body

    def _query(self, request: Request, operation: Operation) -> dict[str, Any]:
        values, errors = operation.query(dict(request.query_params))
        if errors:
            raise _invalid(errors)
        return values

    @staticmethod
    def _page(values: dict[str, Any]) -> tuple[int, int]:
        return int(values.get("page", 1)), int(values.get("page_size", 20))

    def _paged(self, sql_from: str, params: tuple[Any, ...], values: dict[str, Any], out: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
        page, size = self._page(values)
        total = self.store.one(f"SELECT COUNT(*) AS n {sql_from}", params)["n"]  # type: ignore[index]
        rows = self.store.all(f"SELECT * {sql_from} ORDER BY seq LIMIT ? OFFSET ?", (*params, size, (page - 1) * size))
        return _json({"items": [out(r) for r in rows], "page": page, "page_size": size, "total": total})

    def _audit(self, who: dict[str, Any], child_id: str, action: str) -> None:
        self.store.insert("audit", {"id": new_id("au"), "at": now_stamp(), "practitioner_id": who["id"],
                                    "child_id": child_id, "action": action})

    def _child_row(self, child_id: str) -> dict[str, Any]:
        row = self.store.get("children", child_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no child {child_id!r}")
        return row

    def _allocated(self, practitioner_id: str, child_id: str) -> bool:
        return self.store.one(
            "SELECT 1 AS x FROM allocations WHERE child_id = ? AND practitioner_id = ? AND (end_date IS NULL OR end_date > ?)",
            (child_id, practitioner_id, self.today().isoformat())) is not None

    # -- about, practitioners --------------------------------------------------------------

    def about(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        versions: Any = "2008.1" if self.has("about-schema-violation") else ["2008.1"]
        return _json({"supplier": "ics-conformance", "product": "ICS reference service", "version": __version__,
                      "spec_versions": versions, "capabilities": dict(CAPABILITIES)})

    async def create_practitioner(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        body = await self._body(request, op)
        token = secrets.token_urlsafe(24)
        row = {"id": new_id("p"), "name": body["name"], "role": body["role"]}
        self.store.insert("practitioners", {**row, "token_sha256": token_digest(token)})
        return _json({**row, "token": token}, 201)

    def me(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        return _json({"id": who["id"], "name": who["name"], "role": who["role"]})

    # -- children ------------------------------------------------------------------------

    def _child_out(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row[k] for k in CHILD_FIELDS}
        out["shielded"] = bool(out["shielded"])
        if self.has("child-read-back-drops-postcode"):
            out["postcode"] = None
        return out

    def _check_child(self, record: dict[str, Any], self_id: str | None) -> dict[str, Any]:
        """Apply the domain rules to a complete child record; return the columns to store."""
        for name in ("given_name", "family_name"):
            if not rules.valid_name(record[name]):
                raise _field_error("INVALID_NAME", name, "only letters, combining marks, spaces, hyphens, apostrophes and full stops")
        dob, expected = record.get("date_of_birth"), record.get("expected_date_of_birth")
        if self.has("unborn-requires-dob") and not dob:
            raise _invalid([FieldError("date_of_birth", "a date of birth is required")])
        if bool(dob) == bool(expected):
            raise _invalid([FieldError("date_of_birth", "give exactly one of date_of_birth and expected_date_of_birth")])
        today = self.today()
        born, died = _parse_date(dob), _parse_date(record.get("date_of_death"))
        if born and born > today:
            raise _field_error("DATE_IN_FUTURE", "date_of_birth", "is in the future")
        if died and died > today:
            raise _field_error("DATE_IN_FUTURE", "date_of_death", "is in the future")
        if born and died and died < born and not self.has("records-accepts-death-before-birth"):
            raise _field_error("DATE_ORDER", "date_of_death", "is before the date of birth")
        columns = dict(record)
        if record.get("upn") is not None:
            columns["upn"] = rules.check_upn(record["upn"], self.faults)
            if columns["upn"] is None:
                raise _field_error("INVALID_UPN", "upn", "not a UPN with a valid check letter")
        if record.get("nhs_number") is not None:
            columns["nhs_number"] = rules.check_nhs_number(record["nhs_number"], self.faults)
            if columns["nhs_number"] is None:
                raise _field_error("INVALID_NHS_NUMBER", "nhs_number", "not a 10-digit NHS number passing modulus 11")
        if record.get("postcode") is not None:
            columns["postcode"] = rules.canonical_postcode(record["postcode"])
            if columns["postcode"] is None:
                raise _field_error("INVALID_POSTCODE", "postcode", "not a UK postcode")
        local_id = record.get("local_id")
        if local_id is not None and not self.has("local-id-duplicates-allowed"):
            clash = self.store.one("SELECT id FROM children WHERE local_id = ? AND id != ?", (local_id, self_id or ""))
            if clash is not None:
                raise ApiError(409, "DUPLICATE_LOCAL_ID", f"local_id {local_id!r} is already used")
        columns["gender"] = str(record["gender"])
        columns["shielded"] = 1 if record.get("shielded") else 0
        columns["postcode_key"] = rules.postcode_key(columns["postcode"]) if columns.get("postcode") else None
        columns["given_keys"] = rules.name_keys(record["given_name"])
        columns["family_keys"] = rules.name_keys(record["family_name"])
        return columns

    def _gender_skip(self, body: Any) -> frozenset[str]:
        if self.has("accepts-invalid-input") and isinstance(body, dict) and isinstance(body.get("gender"), str):
            return frozenset({"gender"})
        return frozenset()

    async def _child_body(self, request: Request, op: Operation) -> dict[str, Any]:
        raw = await request.body()
        try:
            peek = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            peek = None
        return await self._body(request, op, self._gender_skip(peek))

    async def create_child(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        body = await self._child_body(request, op)
        record = {k: None for k in CHILD_FIELDS if k not in ("id", "created_at", "updated_at")}
        record.update(body)
        with self.store.lock:
            columns = self._check_child(record, None)
            stamp = now_stamp()
            columns.update(id=new_id("c"), created_at=stamp, updated_at=stamp)
            self.store.insert("children", columns)
            self._audit(who, columns["id"], "create")
        return _json(self._child_out(columns), 201)

    def get_child(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        row = self.store.get("children", child_id)
        if row is None:
            if self.has("server-error-on-unknown-child"):
                return _json({"code": "INTERNAL_ERROR", "message": "unexpected error"}, 500)
            raise ApiError(404, "NOT_FOUND", f"no child {child_id!r}")
        hidden = (row["shielded"] and who["role"] != "admin" and not self.has("search-shows-shielded")
                  and not self._allocated(who["id"], child_id))
        if not self.has("audit-misses-views"):
            self._audit(who, child_id, "view")
        if hidden:
            raise ApiError(404, "NOT_FOUND", f"no child {child_id!r}")
        return _json(self._child_out(row))

    async def update_child(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        body = await self._child_body(request, op)
        with self.store.lock:
            row = self._child_row(child_id)
            record = {k: row[k] for k in CHILD_FIELDS if k not in ("id", "created_at", "updated_at")}
            record["shielded"] = bool(record["shielded"])
            record.update(body)
            columns = self._check_child(record, child_id)
            if self.has("patch-ignored"):
                return _json(self._child_out(row))
            columns["updated_at"] = now_stamp()
            self.store.update("children", child_id, columns)
            self._audit(who, child_id, "update")
            row = self._child_row(child_id)
        return _json(self._child_out(row))

    def search_children(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        q = self._query(request, op)
        if not any(k in q for k in SEARCH_CRITERIA):
            raise _invalid([FieldError("query", f"give at least one of: {', '.join(SEARCH_CRITERIA)}")])
        where, params = ["1 = 1"], []
        if "date_of_birth" in q and not self.has("search-ignores-dob"):
            if self.has("search-ignores-unborn"):
                where.append("date_of_birth = ?")
                params.append(q["date_of_birth"])
            else:
                where.append("(date_of_birth = ? OR (date_of_birth IS NULL AND expected_date_of_birth = ?))")
                params += [q["date_of_birth"], q["date_of_birth"]]
        if "gender" in q:
            where.append("gender = ?")
            params.append(q["gender"])
        if "postcode" in q:
            if self.has("search-postcode-exact"):
                where.append("postcode = ?")
                params.append(q["postcode"])
            else:
                where.append("postcode_key = ?")
                params.append(rules.postcode_key(q["postcode"]))
        if "upn" in q:
            where.append("upn = ?")
            params.append(rules.search_identifier("upn", q["upn"]))
        if "nhs_number" in q:
            where.append("0 = 1" if self.has("search-ignores-nhs-number") else "nhs_number = ?")
            if not self.has("search-ignores-nhs-number"):
                params.append(rules.search_identifier("nhs_number", q["nhs_number"]))
        if not q.get("include_deceased") and not self.has("search-includes-deceased"):
            where.append("date_of_death IS NULL")
        if who["role"] != "admin" and not self.has("search-shows-shielded"):
            where.append("(shielded = 0 OR id IN (SELECT child_id FROM allocations WHERE practitioner_id = ? "
                         "AND (end_date IS NULL OR end_date > ?)))")
            params += [who["id"], self.today().isoformat()]
        names = {k: q[k] for k in ("given_name", "family_name") if k in q}
        if names and rules.clean_name_search(self.faults):
            self._prefilter_names(names, where, params)
        condition = " AND ".join(where)
        rows = self.store.all(f"SELECT * FROM children WHERE {condition} ORDER BY seq", params)
        if "local_id" in q:
            wanted = rules.search_identifier("local_id", q["local_id"])
            rows = [r for r in rows if r["local_id"] is not None and rules.search_identifier("local_id", r["local_id"]) == wanted]
        if names:
            aliases: list[dict[str, Any]] = []
            if rows and not self.has("search-ignores-aliases"):
                aliases = self.store.all("SELECT child_id, given_name, family_name, given_keys, family_keys FROM aliases "
                                         f"WHERE child_id IN (SELECT id FROM children WHERE {condition})", params)
            rows = self._match_names(rows, aliases, names.get("given_name"), names.get("family_name"))
        page, size = self._page(q)
        total = len(rows)
        start = (page - 1) * size
        if self.has("search-repeats-across-pages") and page > 1:
            start -= 1
        items = rows[start:start + size]
        if self.has("search-drops-last-page") and page > 1 and start + size >= total:
            items = []
        return _json({"items": [self._child_out(r) for r in items], "page": page, "page_size": size, "total": total})

    @staticmethod
    def _prefilter_names(names: dict[str, str], where: list[str], params: list[Any]) -> None:
        """Narrow the SQL scan to children whose current name or an alias has a key starting with each term.

        Only a superset (LIKE ignores ASCII case): :meth:`_match_names` still decides, per name record.
        """
        for field, term in names.items():
            key = rules.like_prefix(term)
            column = "given_keys" if field == "given_name" else "family_keys"
            where.append(f"((char(31) || {column}) LIKE ? ESCAPE '\\' OR id IN "
                         f"(SELECT child_id FROM aliases WHERE (char(31) || {column}) LIKE ? ESCAPE '\\'))")
            params += [key, key]

    def _match_names(self, rows: list[dict[str, Any]], alias_rows: list[dict[str, Any]], given: str | None,
                     family: str | None) -> list[dict[str, Any]]:
        norm, match = rules.name_matcher(self.faults)
        g_term = norm(given) if given is not None else None
        f_term = norm(family) if family is not None else None
        if g_term == "" or f_term == "":
            return []
        aliases: dict[str, list[dict[str, Any]]] = {}
        for a in alias_rows:
            aliases.setdefault(a["child_id"], []).append(a)

        def record_matches(rec: dict[str, Any]) -> bool:
            return ((g_term is None or match(g_term, rec["given_name"], rec["given_keys"]))
                    and (f_term is None or match(f_term, rec["family_name"], rec["family_keys"])))

        return [r for r in rows if record_matches(r) or any(record_matches(a) for a in aliases.get(r["id"], ()))]

    # -- aliases -------------------------------------------------------------------------

    @staticmethod
    def _alias_out(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("id", "child_id", "given_name", "family_name", "type")}

    async def add_alias(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        body = await self._body(request, op)
        for name in ("given_name", "family_name"):
            if not rules.valid_name(body[name]):
                raise _field_error("INVALID_NAME", name, "only letters, combining marks, spaces, hyphens, apostrophes and full stops")
        row = {"id": new_id("al"), "child_id": child_id, "given_name": body["given_name"], "family_name": body["family_name"],
               "given_keys": rules.name_keys(body["given_name"]), "family_keys": rules.name_keys(body["family_name"]),
               "type": body["type"]}
        self.store.insert("aliases", row)
        return _json(self._alias_out(row), 201)

    def list_aliases(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        rows = [] if self.has("aliases-not-listed") else self.store.all(
            "SELECT * FROM aliases WHERE child_id = ? ORDER BY seq", (child_id,))
        return _json({"items": [self._alias_out(r) for r in rows]})

    # -- allocations ------------------------------------------------------------------------

    def _allocation_out(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row[k] for k in ("id", "child_id", "practitioner_id", "start_date", "end_date")}
        if self.has("allocation-end-not-recorded"):
            out["end_date"] = None
        return out

    async def allocate(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        body = await self._body(request, op)
        if self.store.get("practitioners", body["practitioner_id"]) is None and not self.has("allocation-unknown-practitioner"):
            raise _field_error("UNKNOWN_PRACTITIONER", "practitioner_id", "no such practitioner")
        row = {"id": new_id("a"), "child_id": child_id, "practitioner_id": body["practitioner_id"],
               "start_date": body.get("start_date") or self.today().isoformat(), "end_date": None}
        self.store.insert("allocations", row)
        return _json(self._allocation_out(row), 201)

    def list_allocations(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        rows = [] if self.has("allocations-not-listed") else self.store.all(
            "SELECT * FROM allocations WHERE child_id = ? ORDER BY seq", (child_id,))
        return _json({"items": [self._allocation_out(r) for r in rows]})

    async def end_allocation(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        allocation_id = request.path_params["allocation_id"]
        row = self.store.get("allocations", allocation_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no allocation {allocation_id!r}")
        body = await self._body(request, op)
        if row["end_date"] is None:
            end = body.get("end_date") or self.today().isoformat()
            if end < row["start_date"]:
                raise _field_error("DATE_ORDER", "end_date", "is before the allocation's start date")
            self.store.update("allocations", allocation_id, {"end_date": end})
            row["end_date"] = end
        return _json(self._allocation_out(row))

    # -- case notes and notifications ---------------------------------------------------------

    def _note_out(self, row: dict[str, Any], who: dict[str, Any]) -> dict[str, Any]:
        hidden = (row["restricted"] and who["id"] != row["author_id"] and who["role"] not in MANAGERS
                  and not self.has("restricted-note-visible"))
        return {"id": row["id"], "child_id": row["child_id"], "author_id": row["author_id"],
                "text": None if hidden else row["text"], "restricted": bool(row["restricted"]), "created_at": row["created_at"]}

    async def add_case_note(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        body = await self._body(request, op)
        stamp = now_stamp()
        note = {"id": new_id("n"), "child_id": child_id, "author_id": who["id"], "text": body["text"],
                "restricted": 1 if body.get("restricted") else 0, "created_at": stamp}
        with self.store.transaction():
            self.store.insert("case_notes", note)
            self._notify(note, stamp)
        return _json(self._note_out(note, who), 201)

    def _recipients(self, child_id: str, author_id: str) -> list[str]:
        today = self.today().isoformat()
        allocations = self.store.all("SELECT practitioner_id, end_date FROM allocations WHERE child_id = ? ORDER BY seq", (child_id,))
        if self.has("notify-unrelated"):
            return [r["id"] for r in self.store.all("SELECT id FROM practitioners ORDER BY seq")]
        current = [a["practitioner_id"] for a in allocations
                   if self.has("notify-ended-allocation") or a["end_date"] is None or a["end_date"] > today]
        recipients = [p for p in dict.fromkeys(current) if p != author_id]
        if self.has("notify-missing-co-allocated"):
            recipients = recipients[:1]
        if self.has("notify-author") and author_id not in recipients:
            recipients.append(author_id)
        return recipients

    def _notify(self, note: dict[str, Any], stamp: str) -> None:
        if self.has("notify-ack-lost"):
            self.store.execute("UPDATE notifications SET acknowledged_at = NULL WHERE child_id = ?", (note["child_id"],))
        preview = None if note["restricted"] and not self.has("restricted-note-leaks-text") else note["text"][:100]
        visible_at = time.time() + (NOTIFY_DELAY_SECONDS if self.has("notify-delayed") else 0.0)
        for practitioner_id in self._recipients(note["child_id"], note["author_id"]):
            for _ in range(2 if self.has("notify-duplicate") else 1):
                self.store.insert("notifications", {
                    "id": new_id("nt"), "practitioner_id": practitioner_id, "child_id": note["child_id"],
                    "case_note_id": note["id"], "created_at": stamp, "acknowledged_at": None,
                    "preview": preview, "visible_at": visible_at})

    def list_case_notes(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        order = "DESC" if self.has("case-notes-newest-first") else "ASC"
        rows = self.store.all(f"SELECT * FROM case_notes WHERE child_id = ? ORDER BY seq {order}", (child_id,))
        return _json({"items": [self._note_out(r, who) for r in rows]})

    @staticmethod
    def _notification_out(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("id", "practitioner_id", "child_id", "case_note_id", "created_at", "acknowledged_at", "preview")}

    def list_notifications(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        q = self._query(request, op)
        status = q.get("status", "all")
        extra = {"all": "", "acknowledged": " AND acknowledged_at IS NOT NULL",
                 "unacknowledged": " AND acknowledged_at IS NULL"}[status]
        return self._paged(f"FROM notifications WHERE practitioner_id = ? AND visible_at <= ?{extra}",
                           (who["id"], time.time()), q, self._notification_out)

    def acknowledge(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        notification_id = request.path_params["notification_id"]
        with self.store.lock:
            row = self.store.one("SELECT * FROM notifications WHERE id = ? AND practitioner_id = ? AND visible_at <= ?",
                                 (notification_id, who["id"], time.time()))
            if row is None:
                raise ApiError(404, "NOT_FOUND", f"no notification {notification_id!r} for you")
            if row["acknowledged_at"] is None:
                row["acknowledged_at"] = now_stamp()
                self.store.update("notifications", notification_id, {"acknowledged_at": row["acknowledged_at"]})
        return _json(self._notification_out(row))

    # -- referrals -------------------------------------------------------------------------

    @staticmethod
    def _referral_out(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("id", "child_id", "received_on", "source", "reason")}

    async def create_referral(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        body = await self._body(request, op)
        self._child_row(body["child_id"])
        if body["received_on"] > self.today().isoformat() and not self.has("referral-accepts-future-date"):
            raise _field_error("DATE_IN_FUTURE", "received_on", "is in the future")
        row = {"id": new_id("r"), "child_id": body["child_id"], "received_on": body["received_on"],
               "source": "other" if self.has("referral-loses-source") else body["source"], "reason": body["reason"]}
        self.store.insert("referrals", row)
        return _json(self._referral_out(row), 201)

    def get_referral(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        referral_id = request.path_params["referral_id"]
        row = self.store.get("referrals", referral_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no referral {referral_id!r}")
        return _json(self._referral_out(row))

    def list_referrals(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        rows = self.store.all("SELECT * FROM referrals WHERE child_id = ? ORDER BY seq", (child_id,))
        return _json({"items": [self._referral_out(r) for r in rows]})

    # -- assessments and visits ------------------------------------------------------------------

    @staticmethod
    def _visit_out(row: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "assessment_id": row["assessment_id"], "visit_date": row["visit_date"],
                "child_seen": bool(row["child_seen"]),
                "seen_alone": None if row["seen_alone"] is None else bool(row["seen_alone"]),
                "recorded_by": row["recorded_by"]}

    def _assessment_out(self, row: dict[str, Any]) -> dict[str, Any]:
        today = self.today().isoformat()
        overdue = ((row["status"] == "open" and today > row["due_date"])
                   or (row["status"] == "completed" and (row["completed_on"] or "") > row["due_date"]))
        visits = [] if self.has("visits-not-listed") else self.store.all(
            "SELECT * FROM visits WHERE assessment_id = ? ORDER BY seq", (row["id"],))
        out = {k: row[k] for k in ("id", "child_id", "referral_id", "type", "start_date", "due_date", "status",
                                   "completed_on", "authorised_by")}
        out["overdue"] = False if self.has("overdue-never") else overdue
        out["visits"] = [self._visit_out(v) for v in visits]
        return out

    def _assessment_row(self, assessment_id: str) -> dict[str, Any]:
        row = self.store.get("assessments", assessment_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no assessment {assessment_id!r}")
        return row

    async def start_assessment(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        body = await self._body(request, op)
        start = date.fromisoformat(body["start_date"])
        if start > self.today() and not self.has("assessment-accepts-future-start"):
            raise _field_error("DATE_IN_FUTURE", "start_date", "is in the future")
        referral_id = body.get("referral_id")
        if referral_id is not None:
            referral = self.store.get("referrals", referral_id)
            if referral is None or referral["child_id"] != child_id:
                raise _invalid([FieldError("referral_id", "no such referral for this child")])
            if body["start_date"] < referral["received_on"]:
                raise _field_error("DATE_ORDER", "start_date", "is before the referral was received")
        try:
            due = rules.due_date(body["type"], start, self.faults).isoformat()
        except (OverflowError, ValueError):
            raise _invalid([FieldError("start_date", "out of the supported range")]) from None
        with self.store.lock:
            if not self.has("gating-allows-second-open") and self.store.one(
                    "SELECT id FROM assessments WHERE child_id = ? AND status = 'open'", (child_id,)):
                raise ApiError(409, "ASSESSMENT_ALREADY_OPEN", "the child already has an open assessment")
            row = {"id": new_id("as"), "child_id": child_id, "referral_id": referral_id, "type": body["type"],
                   "start_date": body["start_date"], "due_date": due, "status": "open", "completed_on": None,
                   "authorised_by": None}
            self.store.insert("assessments", row)
        return _json(self._assessment_out(row), 201)

    def list_assessments(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        rows = self.store.all("SELECT * FROM assessments WHERE child_id = ? ORDER BY seq", (child_id,))
        return _json({"items": [self._assessment_out(r) for r in rows]})

    def get_assessment(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        return _json(self._assessment_out(self._assessment_row(request.path_params["assessment_id"])))

    async def record_visit(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        assessment = self._assessment_row(request.path_params["assessment_id"])
        body = await self._body(request, op)
        if assessment["status"] != "open":
            raise ApiError(409, "ASSESSMENT_NOT_OPEN", "the assessment is not open")
        visit_date = body["visit_date"]
        if visit_date > self.today().isoformat() and not self.has("gating-accepts-future-seen"):
            raise _field_error("DATE_IN_FUTURE", "visit_date", "is in the future")
        if visit_date < assessment["start_date"] and not self.has("gating-ignores-start-date"):
            raise _field_error("DATE_ORDER", "visit_date", "is before the assessment start")
        if body.get("seen_alone") and not body["child_seen"]:
            raise _invalid([FieldError("seen_alone", "cannot be true when the child was not seen")])
        seen_alone = body.get("seen_alone")
        row = {"id": new_id("v"), "assessment_id": assessment["id"], "visit_date": visit_date,
               "child_seen": 1 if body["child_seen"] else 0, "seen_alone": None if seen_alone is None else int(seen_alone),
               "recorded_by": who["id"]}
        self.store.insert("visits", row)
        return _json(self._visit_out(row), 201)

    def _child_seen(self, assessment: dict[str, Any], completed_on: str) -> bool:
        if self.has("gating-off"):
            return True
        today = self.today().isoformat()
        for visit in self.store.all("SELECT * FROM visits WHERE assessment_id = ?", (assessment["id"],)):
            day = visit["visit_date"]
            if not visit["child_seen"] and not self.has("gating-counts-unseen-visits"):
                continue
            if day < assessment["start_date"] and not self.has("gating-ignores-start-date"):
                continue
            late_ok = self.has("gating-ignores-completion-date") or (self.has("gating-accepts-future-seen") and day > today)
            if day > completed_on and not late_ok:
                continue
            return True
        return False

    async def complete_assessment(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        assessment_id = request.path_params["assessment_id"]
        self._assessment_row(assessment_id)
        body = await self._body(request, op)
        with self.store.lock:
            row = self._assessment_row(assessment_id)
            if row["status"] != "open":
                raise ApiError(409, "ASSESSMENT_NOT_OPEN", "the assessment is not open")
            completed_on = body.get("completed_on") or self.today().isoformat()
            if completed_on > self.today().isoformat():
                raise _field_error("DATE_IN_FUTURE", "completed_on", "is in the future")
            if completed_on < row["start_date"]:
                raise _field_error("DATE_ORDER", "completed_on", "is before the assessment start")
            changes = {"status": "completed", "completed_on": completed_on, "authorised_by": body.get("authorised_by")}
            if not self._child_seen(row, completed_on):
                if self.has("gating-completes-despite-refusal"):
                    self.store.update("assessments", assessment_id, changes)
                code = "VALIDATION_ERROR" if self.has("gating-generic-error-code") else "CHILD_NOT_SEEN"
                raise ApiError(422, code, "no visit saw the child between the start and the completion date")
            self.store.update("assessments", assessment_id, changes)
            row.update(changes)
        return _json(self._assessment_out(row))

    # -- audit and export ----------------------------------------------------------------------

    def list_audit(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        q = self._query(request, op)
        where, params = ["1 = 1"], []
        for key in ("child_id", "practitioner_id"):
            if key in q:
                where.append(f"{key} = ?")
                params.append(q[key])
        return self._paged(f"FROM audit WHERE {' AND '.join(where)}", tuple(params), q,
                           lambda r: {k: r[k] for k in ("id", "at", "practitioner_id", "child_id", "action")})

    async def export(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        if self.has("export-unavailable"):
            raise ApiError(501, "NOT_IMPLEMENTED", "bulk export is not available")
        producer = {"supplier": "ics-conformance", "product": "ICS reference service", "version": __version__}
        spool = await run_in_threadpool(write_export, self.store, self.faults, producer)

        def chunks():  # noqa: ANN202 - a byte iterator
            with spool:
                spool.seek(0)
                while block := spool.read(65536):
                    yield block

        return StreamingResponse(chunks(), media_type="application/zip",
                                 headers={"content-disposition": 'attachment; filename="ics-export.zip"'})

    # -- routing -------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, str, Callable[..., Any], frozenset[str] | None]] = [
            ("/about", "GET", "getAbout", self.about, None),
            ("/practitioners", "POST", "createPractitioner", self.create_practitioner, ADMINS),
            ("/practitioners/me", "GET", "getMe", self.me, READERS),
            ("/practitioners/me/notifications", "GET", "listNotifications", self.list_notifications, READERS),
            ("/notifications/{notification_id}/acknowledge", "POST", "acknowledgeNotification", self.acknowledge, READERS),
            ("/children", "POST", "createChild", self.create_child, WRITERS),
            ("/children", "GET", "searchChildren", self.search_children, READERS),
            ("/children/{child_id}", "GET", "getChild", self.get_child, READERS),
            ("/children/{child_id}", "PATCH", "updateChild", self.update_child, WRITERS),
            ("/children/{child_id}/aliases", "POST", "addAlias", self.add_alias, WRITERS),
            ("/children/{child_id}/aliases", "GET", "listAliases", self.list_aliases, READERS),
            ("/children/{child_id}/allocations", "POST", "allocate", self.allocate, MANAGERS),
            ("/children/{child_id}/allocations", "GET", "listAllocations", self.list_allocations, READERS),
            ("/allocations/{allocation_id}/end", "POST", "endAllocation", self.end_allocation, MANAGERS),
            ("/children/{child_id}/case-notes", "POST", "addCaseNote", self.add_case_note, WRITERS),
            ("/children/{child_id}/case-notes", "GET", "listCaseNotes", self.list_case_notes, READERS),
            ("/children/{child_id}/referrals", "GET", "listReferrals", self.list_referrals, READERS),
            ("/referrals", "POST", "createReferral", self.create_referral, WRITERS),
            ("/referrals/{referral_id}", "GET", "getReferral", self.get_referral, READERS),
            ("/children/{child_id}/assessments", "POST", "startAssessment", self.start_assessment, WRITERS),
            ("/children/{child_id}/assessments", "GET", "listAssessments", self.list_assessments, READERS),
            ("/assessments/{assessment_id}", "GET", "getAssessment", self.get_assessment, READERS),
            ("/assessments/{assessment_id}/visits", "POST", "recordVisit", self.record_visit, WRITERS),
            ("/assessments/{assessment_id}/complete", "POST", "completeAssessment", self.complete_assessment, WRITERS),
            ("/audit", "GET", "listAudit", self.list_audit, MANAGERS),
            ("/export", "GET", "bulkExport", self.export, MANAGERS),
        ]
        by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
        for path, method, operation_id, handler, roles in table:
            by_path.setdefault(path, {})[method] = self._endpoint(operation_id, handler, roles)
        return [Route(path, _dispatch(methods), methods=list(methods)) for path, methods in by_path.items()]


def _dispatch(methods: dict[str, Callable[[Request], Awaitable[Response]]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await methods[request.method if request.method != "HEAD" else "GET"](request)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 405:
        response = ApiError(405, "MALFORMED_REQUEST", "method not allowed on this path").response()
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response
    if status == 404:
        return ApiError(404, "NOT_FOUND", "no such resource").response()
    return ApiError(status, "MALFORMED_REQUEST", str(getattr(exc, "detail", "bad request"))).response()


async def _internal_error(request: Request, exc: Exception) -> Response:
    return _json({"code": "INTERNAL_ERROR", "message": f"internal error: {type(exc).__name__}"}, 500)


def build_app(*, faults: Collection[str], admin_token: str, db_path: str | None, today: Callable[[], date] | None) -> Starlette:
    """Assemble the Starlette application (faults already validated by the caller)."""
    service = Reference(Store(db_path), faults, admin_token, today)
    app = Starlette(routes=service.routes(),
                    exception_handlers={HTTPException: _http_error, Exception: _internal_error})
    app.state.reference = service
    return app
