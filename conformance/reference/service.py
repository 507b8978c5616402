"""The reference service's plumbing: errors, clock, authentication, bodies, paging, audit.

:class:`Service` holds the store, the active faults and the clock; the resource groups
(:mod:`conformance.reference.resources`) add one method per API operation, and
:mod:`conformance.reference.app` assembles them into the Starlette application.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import Response

from conformance.reference.openapi import FieldError, Operation, load_openapi
from conformance.reference.store import Store, new_id

_LONDON = ZoneInfo("Europe/London")
ADMIN_ID = "p-admin"
READERS = frozenset({"admin", "manager", "practitioner", "read_only"})
WRITERS = frozenset({"admin", "manager", "practitioner"})
MANAGERS = frozenset({"admin", "manager"})
ADMINS = frozenset({"admin"})
SEARCH_CRITERIA = ("given_name", "family_name", "date_of_birth", "gender", "postcode", "upn", "nhs_number", "local_id")
CHILD_FIELDS = (
    "id",
    "local_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "expected_date_of_birth",
    "gender",
    "date_of_death",
    "upn",
    "nhs_number",
    "postcode",
    "shielded",
    "created_at",
    "updated_at",
)
CAPABILITIES = {
    "unborn_children": True,
    "shielded_records": True,
    "restricted_notes": True,
    "audit": True,
    "bulk_export": True,
    "notification_latency_seconds": 2,
    "seen_alone": True,
    "inter_council_transfer": True,
    "chronology_export": True,
}
#: The council a reference service serves unless told otherwise (named in its transfer packages).
DEFAULT_COUNCIL = "Reference Council"
NOTIFY_DELAY_SECONDS = 6.0
#: operations ``rights-assessments-unchecked`` leaves open to every role
ASSESSMENT_WRITES = frozenset({"startAssessment", "recordVisit", "completeAssessment"})


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
        return json_response(body, self.status)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


_NAME_FIELDS = frozenset({"given_name", "family_name"})


def invalid(errors: list[FieldError]) -> ApiError:
    """422 for fields off their schema; a name off the Name pattern is INVALID_NAME (design.md §4)."""
    if errors and all(e.field.rsplit(".", 1)[-1] in _NAME_FIELDS and "does not match" in e.message for e in errors):
        return field_error(
            "INVALID_NAME",
            errors[0].field,
            "only letters, combining marks, spaces, hyphens, apostrophes and full stops",
        )
    fields = ", ".join(dict.fromkeys(e.field for e in errors))
    return ApiError(422, "VALIDATION_ERROR", f"invalid field(s): {fields}", errors)


def field_error(code: str, field: str, message: str) -> ApiError:
    return ApiError(422, code, f"{field}: {message}", [FieldError(field, message)])


def parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class Service:
    """Store, faults and clock, and what every operation shares (the operations are mixed in)."""

    def __init__(
        self,
        store: Store,
        faults: Collection[str],
        admin_token: str,
        today: Callable[[], date] | None,
        council: str = DEFAULT_COUNCIL,
    ) -> None:
        self.store = store
        self.council = council
        self.faults = frozenset(faults)
        self.today = today or london_today
        self.spec = load_openapi()
        self._tokens: dict[str, dict[str, Any]] = {}
        digest = token_digest(admin_token)
        if store.get("practitioners", ADMIN_ID) is None:
            store.insert(
                "practitioners", {"id": ADMIN_ID, "name": "Administrator", "role": "admin", "token_sha256": digest}
            )
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

    def _require(self, who: dict[str, Any], roles: frozenset[str], operation_id: str = "") -> None:
        if self._rights_bent(who, operation_id):
            return
        if who["role"] not in roles and not self.has("rights-ignored"):
            raise ApiError(403, "FORBIDDEN", f"role {who['role']!r} may not do this")

    def _rights_bent(self, who: dict[str, Any], operation_id: str) -> bool:
        """True when a rights fault lets ``who`` through (each a realistic slip in a rights table)."""
        role = who["role"]
        if self.has("rights-assessments-unchecked") and operation_id in ASSESSMENT_WRITES:
            return True
        if self.has("rights-managers-create-practitioners") and operation_id == "createPractitioner":
            return role == "manager"
        if self.has("rights-allocation-denied-to-practitioners-only") and operation_id in ("allocate", "endAllocation"):
            return role != "practitioner"  # a deny list of one role instead of an allow list
        return False

    def _endpoint(
        self, operation_id: str, handler: Callable[..., Any], roles: frozenset[str] | None
    ) -> Callable[[Request], Awaitable[Response]]:
        operation = self.spec.operations[operation_id]

        open_door = self.has("auth-missing-on-referrals") and operation_id == "getReferral"

        async def endpoint(request: Request) -> Response:
            try:
                who = self._authenticate(request) if roles is not None and not open_door else self._admin
                if roles is not None:
                    self._require(who, roles, operation_id)
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
        if self.has("names-any-character"):  # the Name pattern not enforced
            errors = [
                e for e in errors if not (e.field.rsplit(".", 1)[-1] in _NAME_FIELDS and "does not match" in e.message)
            ]
        if errors:
            raise invalid(errors)
        return body

    def _query(self, request: Request, operation: Operation) -> dict[str, Any]:
        values, errors = operation.query(dict(request.query_params))
        if errors:
            raise invalid(errors)
        return values

    @staticmethod
    def _page(values: dict[str, Any]) -> tuple[int, int]:
        return int(values.get("page", 1)), int(values.get("page_size", 20))

    def _paged(
        self,
        sql_from: str,
        params: tuple[Any, ...],
        values: dict[str, Any],
        out: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Response:
        page, size = self._page(values)
        total = self.store.one(f"SELECT COUNT(*) AS n {sql_from}", params)["n"]  # type: ignore[index]  # COUNT(*) always yields a row
        rows = self.store.all(f"SELECT * {sql_from} ORDER BY seq LIMIT ? OFFSET ?", (*params, size, (page - 1) * size))
        return json_response({"items": [out(r) for r in rows], "page": page, "page_size": size, "total": total})

    def _audit(self, who: dict[str, Any], child_id: str | None, action: str) -> None:
        self.store.insert(
            "audit",
            {
                "id": new_id("au"),
                "at": now_stamp(),
                "practitioner_id": who["id"],
                "child_id": child_id,
                "action": action,
            },
        )

    def _child_row(self, child_id: str) -> dict[str, Any]:
        row = self.store.get("children", child_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no child {child_id!r}")
        return row

    def _allocated(self, practitioner_id: str, child_id: str, *, ever: bool = False) -> bool:
        """True when the practitioner is currently allocated to the child (``ever``: or ever was)."""
        today = "0000-00-00" if ever else self.today().isoformat()
        return (
            self.store.one(
                "SELECT 1 AS x FROM allocations WHERE child_id = ? AND practitioner_id = ? AND (end_date IS NULL OR end_date > ?)",
                (child_id, practitioner_id, today),
            )
            is not None
        )
