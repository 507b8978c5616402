"""The reference ICS service: a complete implementation of ``specs/openapi.yaml``.

Request bodies are validated against the OpenAPI document's own schemas (the spec is
the single source of truth); the semantics are those of the catalogue, using the same
shared definitions the harness uses (names, working days, identifiers). Faults from
:mod:`conformance.reference.faultset` switch small, local behaviours off.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance import names, workingdays
from conformance._resources import spec_path
from conformance._version import __version__
from conformance.identifiers import compact_nhs_number, compact_upn, is_valid_nhs_number, is_valid_upn
from conformance.reference.faultset import resolve_faults
from conformance.reference.storage import Store, new_id

SPEC_VERSION = "2008.1"
LATENCY_SECONDS = 2
_DELAYED_SECONDS = 6.0
_WRITERS = {"admin", "manager", "practitioner"}
_MANAGERS = {"admin", "manager"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_POSTCODE_RE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")
_NAME_PUNCT = set(" -'\u2019\u2018.")
_LONDON = ZoneInfo("Europe/London")


class ApiError(Exception):
    """An error answer: HTTP status, machine-readable code, message, field details."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(exc: ApiError) -> Response:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details:
        body["details"] = exc.details
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return Response(orjson.dumps(body), status_code=exc.status, media_type="application/json", headers=headers)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@cache
def _validators() -> dict[str, Any]:
    """Compiled validators for the request-body schemas of the OpenAPI document."""
    import yaml
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = yaml.safe_load(spec_path("openapi.yaml").read_text(encoding="utf-8"))
    registry = Registry().with_resource("urn:ics:openapi", Resource(contents=document, specification=DRAFT202012))
    out = {}
    for name in document["components"]["schemas"]:
        schema = {"$ref": f"urn:ics:openapi#/components/schemas/{name}"}
        out[name] = Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return out


def _validate(schema: str, body: Any) -> dict[str, Any]:
    errors = sorted(_validators()[schema].iter_errors(body), key=lambda e: list(e.path))
    if errors:
        details = [{"field": "/".join(str(p) for p in e.path) or "(body)", "message": e.message[:300]} for e in errors[:10]]
        raise ApiError(422, "VALIDATION_ERROR", f"request body does not match {schema}: {details[0]['field']}: {details[0]['message']}", details)
    return body


def _valid_name(value: str) -> bool:
    if not value.strip():
        return False
    has_letter = False
    for ch in value:
        cat = unicodedata.category(ch)
        if cat.startswith("L"):
            has_letter = True
        elif cat.startswith("M") or ch in _NAME_PUNCT:
            continue
        else:
            return False
    return has_letter


def _parse_date(value: str, field: str) -> date:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ApiError(422, "VALIDATION_ERROR", f"{field}: {value!r} is not a date (YYYY-MM-DD)", [{"field": field, "message": "not a date"}])
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "VALIDATION_ERROR", f"{field}: {value!r} is not a calendar date", [{"field": field, "message": "not a calendar date"}]) from None


class Reference:
    """State and behaviour of one reference service instance."""

    def __init__(self, *, faults: Iterable[str], admin_token: str, db_path: str | None, today: Callable[[], date] | None) -> None:
        self.faults = resolve_faults(faults)
        self.store = Store(db_path)
        self._today = today or (lambda: datetime.now(_LONDON).date())
        token_hash = hashlib.sha256(admin_token.encode()).hexdigest()
        if self.store.one("SELECT id FROM practitioners WHERE token_sha256 = ?", (token_hash,)) is None:
            self.store.insert("practitioners", {"id": new_id("p"), "name": "Administrator", "role": "admin", "token_sha256": token_hash})
        self.admin = self.store.one("SELECT * FROM practitioners WHERE token_sha256 = ?", (token_hash,))

    def has(self, fault: str) -> bool:
        return fault in self.faults

    def today(self) -> date:
        return self._today()

    # -- auth ---------------------------------------------------------------------------
    def caller(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if self.has("auth-ignored") and not (scheme.lower() == "bearer" and token):
            return self.admin
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "UNAUTHENTICATED", "a bearer token is required")
        if self.has("auth-accepts-any-token"):
            found = self.store.one("SELECT * FROM practitioners WHERE token_sha256 = ?", (hashlib.sha256(token.encode()).hexdigest(),))
            return found or self.admin
        found = self.store.one("SELECT * FROM practitioners WHERE token_sha256 = ?", (hashlib.sha256(token.encode()).hexdigest(),))
        if found is None:
            if self.has("auth-ignored"):
                return self.admin
            raise ApiError(401, "UNAUTHENTICATED", "the bearer token is not valid")
        return found

    def require_role(self, who: dict[str, Any], roles: set[str], action: str) -> None:
        if who["role"] not in roles and not self.has("rights-ignored"):
            raise ApiError(403, "FORBIDDEN", f"role {who['role']} may not {action}")

    # -- helpers ------------------------------------------------------------------------
    def audit(self, who: dict[str, Any], child_id: str, action: str) -> None:
        if action == "view" and self.has("audit-misses-views"):
            return
        self.store.insert("audit", {"id": new_id("a"), "at": _now(), "practitioner_id": who["id"], "child_id": child_id, "action": action})

    def current_allocations(self, child_id: str) -> list[dict[str, Any]]:
        return self.store.all("SELECT * FROM allocations WHERE child_id = ? AND end_date IS NULL ORDER BY seq", (child_id,))

    def allocated(self, who: dict[str, Any], child_id: str) -> bool:
        return any(a["practitioner_id"] == who["id"] for a in self.current_allocations(child_id))

    def visible(self, who: dict[str, Any], child: dict[str, Any]) -> bool:
        """Shielded children are visible only to managers, admins and allocated practitioners."""
        if not child["shielded"] or who["role"] in _MANAGERS or self.has("search-shows-shielded"):
            return True
        return self.allocated(who, child["id"])

    def child_for(self, who: dict[str, Any], child_id: str) -> dict[str, Any]:
        child = self.store.get("children", child_id)
        if child is None:
            if self.has("server-error-on-unknown-child"):
                raise RuntimeError("injected fault: server-error-on-unknown-child")
            raise ApiError(404, "NOT_FOUND", f"no child {child_id}")
        if not self.visible(who, child):
            raise ApiError(404, "NOT_FOUND", f"no child {child_id}")
        return child

    # -- representations ---------------------------------------------------------------
    @staticmethod
    def child_out(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"], "local_id": row["local_id"], "given_name": row["given_name"], "family_name": row["family_name"],
            "date_of_birth": row["date_of_birth"], "expected_date_of_birth": row["expected_date_of_birth"],
            "gender": row["gender"], "date_of_death": row["date_of_death"], "upn": row["upn"],
            "nhs_number": row["nhs_number"], "postcode": row["postcode"], "shielded": bool(row["shielded"]),
            "created_at": row["created_at"], "updated_at": row["updated_at"],
        }

    def allocation_out(self, row: dict[str, Any]) -> dict[str, Any]:
        end = None if self.has("allocation-end-not-recorded") else row["end_date"]
        return {"id": row["id"], "child_id": row["child_id"], "practitioner_id": row["practitioner_id"], "start_date": row["start_date"], "end_date": end}

    def note_out(self, row: dict[str, Any], who: dict[str, Any]) -> dict[str, Any]:
        hidden = bool(row["restricted"]) and who["id"] != row["author_id"] and who["role"] not in _MANAGERS
        if self.has("restricted-note-visible"):
            hidden = False
        return {"id": row["id"], "child_id": row["child_id"], "author_id": row["author_id"], "text": None if hidden else row["text"], "restricted": bool(row["restricted"]), "created_at": row["created_at"]}

    @staticmethod
    def notification_out(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("id", "practitioner_id", "child_id", "case_note_id", "created_at", "acknowledged_at", "preview")}

    @staticmethod
    def visit_out(row: dict[str, Any]) -> dict[str, Any]:
        seen_alone = None if row["seen_alone"] is None else bool(row["seen_alone"])
        return {"id": row["id"], "assessment_id": row["assessment_id"], "visit_date": row["visit_date"], "child_seen": bool(row["child_seen"]), "seen_alone": seen_alone, "recorded_by": row["recorded_by"]}

    def assessment_out(self, row: dict[str, Any]) -> dict[str, Any]:
        due = date.fromisoformat(row["due_date"])
        if row["status"] == "open":
            overdue = self.today() > due
        else:
            overdue = row["completed_on"] is not None and date.fromisoformat(row["completed_on"]) > due
        if self.has("overdue-never"):
            overdue = False
        visits = [] if self.has("visits-not-listed") else [
            self.visit_out(v) for v in self.store.all("SELECT * FROM visits WHERE assessment_id = ? ORDER BY seq", (row["id"],))
        ]
        return {
            "id": row["id"], "child_id": row["child_id"], "referral_id": row["referral_id"], "type": row["type"],
            "start_date": row["start_date"], "due_date": row["due_date"], "status": row["status"],
            "completed_on": row["completed_on"], "authorised_by": row["authorised_by"], "overdue": overdue, "visits": visits,
        }

    # -- domain rules -------------------------------------------------------------------
    def due_date(self, kind: str, start: date) -> date:
        days = workingdays.TIMESCALES[kind]
        if self.has("timescale-calendar-days"):
            return start + timedelta(days=days)
        if self.has("timescale-ignores-bank-holidays") or self.has("timescale-wrong-holiday-year"):
            current, remaining = start, days
            while remaining:
                current += timedelta(days=1)
                if current.weekday() >= 5:
                    continue
                if self.has("timescale-wrong-holiday-year"):
                    try:
                        as_2007 = current.replace(year=2007)
                    except ValueError:
                        as_2007 = None
                    if as_2007 is not None and workingdays.is_bank_holiday(as_2007):
                        continue
                remaining -= 1
            return current
        return workingdays.add_working_days(start, days)

    def check_child_fields(self, data: dict[str, Any], existing: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate and normalise child fields (names, dates, identifiers); return DB columns."""
        out: dict[str, Any] = {}
        for field in ("given_name", "family_name"):
            if field in data:
                if not _valid_name(data[field]):
                    raise ApiError(422, "INVALID_NAME", f"{field}: only letters, spaces, hyphens, apostrophes and full stops are allowed", [{"field": field, "message": "invalid name"}])
                out[field] = data[field]
        for field in ("date_of_birth", "expected_date_of_birth", "date_of_death"):
            if field in data:
                out[field] = None if data[field] is None else _parse_date(data[field], field).isoformat()
        if "gender" in data:
            out["gender"] = data["gender"]
        if "local_id" in data:
            out["local_id"] = data["local_id"]
        if "shielded" in data:
            out["shielded"] = int(bool(data["shielded"]))
        if "upn" in data:
            upn = data["upn"]
            if upn is not None:
                upn = compact_upn(upn)
                if not is_valid_upn(upn) and not (self.has("upn-no-check-letter") and len(upn) == 13 and upn[1:12].isdigit()):
                    raise ApiError(422, "INVALID_UPN", "upn: not a valid Unique Pupil Number (13 characters, correct check letter)", [{"field": "upn", "message": "invalid UPN"}])
            out["upn"] = upn
        if "nhs_number" in data:
            nhs = data["nhs_number"]
            if nhs is not None:
                nhs = compact_nhs_number(nhs)
                if not is_valid_nhs_number(nhs) and not (self.has("nhs-no-modulus") and len(nhs) == 10 and nhs.isdigit()):
                    raise ApiError(422, "INVALID_NHS_NUMBER", "nhs_number: not a valid NHS number (10 digits, modulus 11)", [{"field": "nhs_number", "message": "invalid NHS number"}])
            out["nhs_number"] = nhs
        if "postcode" in data:
            postcode = data["postcode"]
            if postcode is not None:
                key = names.normalise_postcode(postcode)
                if not _POSTCODE_RE.match(key):
                    raise ApiError(422, "INVALID_POSTCODE", "postcode: not a UK postcode", [{"field": "postcode", "message": "invalid postcode"}])
                out["postcode_key"] = key
            else:
                out["postcode_key"] = None
            out["postcode"] = postcode
        merged = {**(existing or {}), **out}
        dob, edob, dod = merged.get("date_of_birth"), merged.get("expected_date_of_birth"), merged.get("date_of_death")
        if (dob is None) == (edob is None):
            if not (self.has("unborn-requires-dob") and dob is not None):
                raise ApiError(422, "VALIDATION_ERROR", "exactly one of date_of_birth and expected_date_of_birth is required", [{"field": "date_of_birth", "message": "exactly one of the two"}])
        if self.has("unborn-requires-dob") and dob is None:
            raise ApiError(422, "VALIDATION_ERROR", "date_of_birth is required", [{"field": "date_of_birth", "message": "required"}])
        today = self.today().isoformat()
        if dob is not None and dob > today:
            raise ApiError(422, "DATE_IN_FUTURE", "date_of_birth is in the future", [{"field": "date_of_birth", "message": "in the future"}])
        if dod is not None:
            if dod > today:
                raise ApiError(422, "DATE_IN_FUTURE", "date_of_death is in the future", [{"field": "date_of_death", "message": "in the future"}])
            if dob is not None and dod < dob and not self.has("records-accepts-death-before-birth"):
                raise ApiError(422, "DATE_ORDER", "date_of_death is before date_of_birth", [{"field": "date_of_death", "message": "before birth"}])
            if dob is None:
                raise ApiError(422, "DATE_ORDER", "an unborn child cannot have a date of death", [{"field": "date_of_death", "message": "unborn"}])
        if out.get("local_id") is not None and not self.has("local-id-duplicates-allowed"):
            clash = self.store.one("SELECT id FROM children WHERE local_id = ?", (out["local_id"],))
            if clash is not None and (existing is None or clash["id"] != existing["id"]):
                raise ApiError(409, "DUPLICATE_LOCAL_ID", "local_id is already used by another child", [{"field": "local_id", "message": "duplicate"}])
        return out

    # -- search -------------------------------------------------------------------------
    def _name_match(self, term: str | None, value: str) -> bool:
        if term is None:
            return True
        if self.has("search-case-sensitive") or self.has("search-accent-sensitive"):
            t, v = term, value
            if not self.has("search-case-sensitive"):
                t, v = t.casefold(), v.casefold()
            if not self.has("search-accent-sensitive"):
                t, v = names.normalise(t), names.normalise(v)
            parts = [v, *re.split(r"[\s\-]+", v)]
            return bool(t) and any(p.startswith(t) for p in parts)
        if self.has("search-exact-names-only"):
            key = names.normalise(term)
            return bool(key) and key in names.name_keys(value)
        if self.has("search-substring-overmatch"):
            key = names.normalise(term)
            return bool(key) and key in names.normalise(value)
        return names.name_matches(term, value)

    def search(self, who: dict[str, Any], q: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.store.all("SELECT * FROM children ORDER BY seq")
        given, family = q.get("given_name"), q.get("family_name")
        aliases: dict[str, list[dict[str, Any]]] = {}
        if (given or family) and not self.has("search-ignores-aliases"):
            for alias in self.store.all("SELECT * FROM aliases ORDER BY seq"):
                aliases.setdefault(alias["child_id"], []).append(alias)
        results = []
        for row in rows:
            if given or family:
                records = [row, *aliases.get(row["id"], [])]
                if not any(self._name_match(given, r["given_name"]) and self._name_match(family, r["family_name"]) for r in records):
                    continue
            dob = q.get("date_of_birth")
            if dob is not None and not self.has("search-ignores-dob"):
                unborn_match = row["date_of_birth"] is None and row["expected_date_of_birth"] == dob and not self.has("search-ignores-unborn")
                if row["date_of_birth"] != dob and not unborn_match:
                    continue
            if q.get("gender") is not None and row["gender"] != q["gender"]:
                continue
            if q.get("postcode") is not None:
                wanted = q["postcode"] if self.has("search-postcode-exact") else names.normalise_postcode(q["postcode"])
                have = row["postcode"] if self.has("search-postcode-exact") else row["postcode_key"]
                if have != wanted:
                    continue
            if q.get("upn") is not None and row["upn"] != compact_upn(q["upn"]):
                continue
            if q.get("nhs_number") is not None and (self.has("search-ignores-nhs-number") or row["nhs_number"] != compact_nhs_number(q["nhs_number"])):
                continue
            if q.get("local_id") is not None and row["local_id"] != q["local_id"]:
                continue
            if row["date_of_death"] is not None and not q.get("include_deceased") and not self.has("search-includes-deceased"):
                continue
            if not self.visible(who, row):
                continue
            results.append(row)
        results.sort(key=lambda r: (names.normalise(r["family_name"]), names.normalise(r["given_name"]), r["seq"]))
        return results


def _page_params(request: Request) -> tuple[int, int]:
    page = _int_param(request, "page", 1, 1, 1_000_000)
    size = _int_param(request, "page_size", 20, 1, 100)
    return page, size


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, "VALIDATION_ERROR", f"{name}: {raw!r} is not an integer", [{"field": name, "message": "not an integer"}]) from None
    if not low <= value <= high:
        raise ApiError(422, "VALIDATION_ERROR", f"{name}: must be between {low} and {high}", [{"field": name, "message": "out of range"}])
    return value


def _paged(items: list[Any], page: int, size: int) -> dict[str, Any]:
    return {"items": items[(page - 1) * size : page * size], "page": page, "page_size": size, "total": len(items)}


def create_app(*, faults: Iterable[str] = (), admin_token: str, db_path: str | None = None, today: Callable[[], date] | None = None) -> Starlette:
    """Build the reference service's ASGI app. Unknown fault names raise UsageError."""
    if not admin_token:
        raise ValueError("admin_token must be a non-empty string")
    ref = Reference(faults=faults, admin_token=admin_token, db_path=db_path, today=today)
    _validators()  # compile once at start-up, not on the first request

    async def body_of(request: Request, schema: str, *, optional: bool = False) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            if optional:
                return {}
            raise ApiError(422, "VALIDATION_ERROR", "a JSON request body is required")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "MALFORMED_REQUEST", f"request body is not JSON: {exc}") from None
        return _validate(schema, data)

    def handler(fn: Callable[..., Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except ApiError as exc:
                return _error(exc)
        endpoint.__name__ = fn.__name__
        return endpoint

    # -- about & practitioners ----------------------------------------------------------
    async def about(request: Request) -> Response:
        capabilities = {
            "unborn_children": True, "shielded_records": True, "restricted_notes": True, "audit": True,
            "bulk_export": True, "seen_alone": True, "inter_council_transfer": False, "chronology_export": False,
            "notification_latency_seconds": LATENCY_SECONDS,
        }
        spec_versions: Any = SPEC_VERSION if ref.has("about-schema-violation") else [SPEC_VERSION]
        return _json({"supplier": "ics-conformance", "product": "ICS reference service", "version": __version__, "spec_versions": spec_versions, "capabilities": capabilities})

    async def create_practitioner(request: Request) -> Response:
        who = ref.caller(request)
        ref.require_role(who, {"admin"}, "create practitioners")
        data = await body_of(request, "PractitionerCreate")
        token = secrets.token_urlsafe(24)
        row = ref.store.insert("practitioners", {"id": new_id("p"), "name": data["name"], "role": data["role"], "token_sha256": hashlib.sha256(token.encode()).hexdigest()})
        return _json({"id": row["id"], "name": row["name"], "role": row["role"], "token": token}, 201)

    async def me(request: Request) -> Response:
        who = ref.caller(request)
        return _json({"id": who["id"], "name": who["name"], "role": who["role"]})

    # -- notifications ------------------------------------------------------------------
    async def list_notifications(request: Request) -> Response:
        who = ref.caller(request)
        status = request.query_params.get("status", "all")
        if status not in ("all", "acknowledged", "unacknowledged"):
            raise ApiError(422, "VALIDATION_ERROR", "status: must be unacknowledged, acknowledged or all", [{"field": "status", "message": "invalid"}])
        page, size = _page_params(request)
        rows = ref.store.all("SELECT * FROM notifications WHERE practitioner_id = ? AND visible_at <= ? ORDER BY seq", (who["id"], time.time()))
        if status == "acknowledged":
            rows = [r for r in rows if r["acknowledged_at"] is not None]
        elif status == "unacknowledged":
            rows = [r for r in rows if r["acknowledged_at"] is None]
        return _json(_paged([ref.notification_out(r) for r in rows], page, size))

    async def acknowledge(request: Request) -> Response:
        who = ref.caller(request)
        nid = request.path_params["notification_id"]
        row = ref.store.get("notifications", nid)
        if row is None or row["practitioner_id"] != who["id"] or row["visible_at"] > time.time():
            raise ApiError(404, "NOT_FOUND", f"no notification {nid}")
        if row["acknowledged_at"] is None:
            ref.store.update("notifications", nid, {"acknowledged_at": _now()})
        return _json(ref.notification_out(ref.store.get("notifications", nid)))

    # -- children -----------------------------------------------------------------------
    async def create_child(request: Request) -> Response:
        who = ref.caller(request)
        ref.require_role(who, _WRITERS, "create children")
        if ref.has("accepts-invalid-input"):
            raw = await request.body()
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ApiError(400, "MALFORMED_REQUEST", f"request body is not JSON: {exc}") from None
            if isinstance(data, dict) and isinstance(data.get("gender"), str) and data["gender"] not in ("male", "female", "not_known", "not_specified"):
                accepted_gender = data["gender"]
                data = _validate("ChildCreate", {**data, "gender": "not_known"})
                data["gender"] = accepted_gender
            else:
                data = _validate("ChildCreate", data)
        else:
            data = await body_of(request, "ChildCreate")
        cols = ref.check_child_fields(data)
        stamp = _now()
        row = {
            "id": new_id("c"), "local_id": None, "date_of_birth": None, "expected_date_of_birth": None, "date_of_death": None,
            "upn": None, "nhs_number": None, "postcode": None, "postcode_key": None, "shielded": 0,
            **cols, "created_at": stamp, "updated_at": stamp,
        }
        ref.store.insert("children", row)
        ref.audit(who, row["id"], "create")
        out = ref.child_out(ref.store.get("children", row["id"]))
        return _json(out, 201)

    async def search_children(request: Request) -> Response:
        who = ref.caller(request)
        params = request.query_params
        q: dict[str, Any] = {}
        for key in ("given_name", "family_name", "postcode", "upn", "nhs_number", "local_id"):
            if key in params:
                value = params[key]
                if not value or len(value) > 100:
                    raise ApiError(422, "VALIDATION_ERROR", f"{key}: must be 1 to 100 characters", [{"field": key, "message": "length"}])
                q[key] = value
        if "date_of_birth" in params:
            q["date_of_birth"] = _parse_date(params["date_of_birth"], "date_of_birth").isoformat()
        if "gender" in params:
            if params["gender"] not in ("male", "female", "not_known", "not_specified"):
                raise ApiError(422, "VALIDATION_ERROR", "gender: not a known value", [{"field": "gender", "message": "invalid"}])
            q["gender"] = params["gender"]
        include = params.get("include_deceased", "false")
        if include not in ("true", "false"):
            raise ApiError(422, "VALIDATION_ERROR", "include_deceased: must be true or false", [{"field": "include_deceased", "message": "invalid"}])
        q["include_deceased"] = include == "true"
        page, size = _page_params(request)
        if not any(k in q for k in ("given_name", "family_name", "date_of_birth", "gender", "postcode", "upn", "nhs_number", "local_id")):
            raise ApiError(422, "VALIDATION_ERROR", "at least one search criterion is required")
        found = [ref.child_out(r) for r in ref.search(who, q)]
        body = _paged(found, page, size)
        if ref.has("search-drops-last-page") and page > 1 and (page - 1) * size < len(found) <= page * size:
            body["items"] = []
        if ref.has("search-repeats-across-pages") and page > 1 and body["items"]:
            body["items"] = [found[(page - 1) * size - 1], *body["items"][:-1]]
        return _json(body)

    async def get_child(request: Request) -> Response:
        who = ref.caller(request)
        child = ref.child_for(who, request.path_params["child_id"])
        ref.audit(who, child["id"], "view")
        return _json(ref.child_out(child))

    async def update_child(request: Request) -> Response:
        who = ref.caller(request)
        ref.require_role(who, _WRITERS, "update children")
        child = ref.child_for(who, request.path_params["child_id"])
        data = await body_of(request, "ChildUpdate")
        cols = ref.check_child_fields(data, existing=child)
        if not ref.has("patch-ignored"):
            ref.store.update("children", child["id"], {**cols, "updated_at": _now()})
        ref.audit(who, child["id"], "update")
        return _json(ref.child_out(ref.store.get("children", child["id"])))

    async def aliases(request: Request) -> Response:
        who = ref.caller(request)
        child = ref.child_for(who, request.path_params["child_id"])
        if request.method == "GET":
            rows = [] if ref.has("aliases-not-listed") else ref.store.all("SELECT * FROM aliases WHERE child_id = ? ORDER BY seq", (child["id"],))
            return _json({"items": [{k: r[k] for k in ("id", "child_id", "given_name", "family_name", "type")} for r in rows]})
        ref.require_role(who, _WRITERS, "record aliases")
        data = await body_of(request, "AliasCreate")
        for field in ("given_name", "family_name"):
            if not _valid_name(data[field]):
                raise ApiError(422, "INVALID_NAME", f"{field}: only letters, spaces, hyphens, apostrophes and full stops are allowed", [{"field": field, "message": "invalid name"}])
        row = ref.store.insert("aliases", {"id": new_id("al"), "child_id": child["id"], "given_name": data["given_name"], "family_name": data["family_name"], "type": data["type"]})
        return _json(row, 201)

    # -- allocations --------------------------------------------------------------------
    async def allocations(request: Request) -> Response:
        who = ref.caller(request)
        child = ref.child_for(who, request.path_params["child_id"])
        if request.method == "GET":
            rows = [] if ref.has("allocations-not-listed") else ref.store.all("SELECT * FROM allocations WHERE child_id = ? ORDER BY seq", (child["id"],))
            return _json({"items": [ref.allocation_out(r) for r in rows]})
        ref.require_role(who, _MANAGERS, "allocate practitioners")
        data = await body_of(request, "AllocationCreate")
        if ref.store.get("practitioners", data["practitioner_id"]) is None and not ref.has("allocation-unknown-practitioner"):
            raise ApiError(422, "UNKNOWN_PRACTITIONER", f"no practitioner {data['practitioner_id']}", [{"field": "practitioner_id", "message": "unknown"}])
        start = _parse_date(data["start_date"], "start_date") if "start_date" in data else ref.today()
        if start > ref.today():
            raise ApiError(422, "DATE_IN_FUTURE", "start_date is in the future", [{"field": "start_date", "message": "in the future"}])
        row = ref.store.insert("allocations", {"id": new_id("al"), "child_id": child["id"], "practitioner_id": data["practitioner_id"], "start_date": start.isoformat(), "end_date": None})
        return _json(ref.allocation_out(row), 201)

    async def end_allocation(request: Request) -> Response:
        who = ref.caller(request)
        ref.require_role(who, _MANAGERS, "end allocations")
        aid = request.path_params["allocation_id"]
        row = ref.store.get("allocations", aid)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no allocation {aid}")
        data = await body_of(request, "AllocationEnd", optional=True)
        if row["end_date"] is not None:
            raise ApiError(409, "ALLOCATION_ENDED", "the allocation has already ended")
        end = _parse_date(data["end_date"], "end_date") if "end_date" in data else ref.today()
        if end > ref.today():
            raise ApiError(422, "DATE_IN_FUTURE", "end_date is in the future", [{"field": "end_date", "message": "in the future"}])
        if end.isoformat() < row["start_date"]:
            raise ApiError(422, "DATE_ORDER", "end_date is before start_date", [{"field": "end_date", "message": "before start"}])
        ref.store.update("allocations", aid, {"end_date": end.isoformat()})
        return _json(ref.allocation_out(ref.store.get("allocations", aid)))

    # -- case notes & notifications -----------------------------------------------------
    async def case_notes(request: Request) -> Response:
        who = ref.caller(request)
        child = ref.child_for(who, request.path_params["child_id"])
        if request.method == "GET":
            order = "DESC" if ref.has("case-notes-newest-first") else "ASC"
            rows = ref.store.all(f"SELECT * FROM case_notes WHERE child_id = ? ORDER BY seq {order}", (child["id"],))
            return _json({"items": [ref.note_out(r, who) for r in rows]})
        ref.require_role(who, _WRITERS, "add case notes")
        data = await body_of(request, "CaseNoteCreate")
        restricted = bool(data.get("restricted", False))
        note = {"id": new_id("n"), "child_id": child["id"], "author_id": who["id"], "text": data["text"], "restricted": int(restricted), "created_at": _now()}
        with ref.store.transaction():
            ref.store.insert("case_notes", note)
            _notify(note, who)
        return _json(ref.note_out(note, who), 201)

    def _notify(note: dict[str, Any], author: dict[str, Any]) -> None:
        child_id = note["child_id"]
        if ref.has("notify-unrelated"):
            recipients = [p["id"] for p in ref.store.all("SELECT id FROM practitioners ORDER BY seq")]
        else:
            current = ref.current_allocations(child_id)
            if ref.has("notify-missing-co-allocated"):
                current = current[:1]
            recipients = [a["practitioner_id"] for a in current]
            if ref.has("notify-ended-allocation"):
                recipients += [a["practitioner_id"] for a in ref.store.all("SELECT practitioner_id FROM allocations WHERE child_id = ? AND end_date IS NOT NULL", (child_id,))]
        unique = list(dict.fromkeys(recipients))
        if not ref.has("notify-author") and not ref.has("notify-unrelated"):
            unique = [p for p in unique if p != author["id"]]
        elif ref.has("notify-author") and author["id"] not in unique:
            unique.append(author["id"])
        if ref.has("notify-ack-lost"):
            ref.store._conn.execute("UPDATE notifications SET acknowledged_at = NULL WHERE child_id = ?", (child_id,))
        preview = None if note["restricted"] and not ref.has("restricted-note-leaks-text") else note["text"][:100]
        visible_at = time.time() + (_DELAYED_SECONDS if ref.has("notify-delayed") else 0.0)
        copies = 2 if ref.has("notify-duplicate") else 1
        for practitioner_id in unique:
            for _ in range(copies):
                ref.store.insert("notifications", {
                    "id": new_id("nt"), "practitioner_id": practitioner_id, "child_id": child_id, "case_note_id": note["id"],
                    "created_at": note["created_at"], "acknowledged_at": None, "preview": preview, "visible_at": visible_at,
                })

    # -- referrals ----------------------------------------------------------------------
    async def create_referral(request: Request) -> Response:
        who = ref.caller(request)
        ref.require_role(who, _WRITERS, "record referrals")
        data = await body_of(request, "ReferralCreate")
        child = ref.child_for(who, data["child_id"])
        received = _parse_date(data["received_on"], "received_on")
        if received > ref.today() and not ref.has("referral-accepts-future-date"):
            raise ApiError(422, "DATE_IN_FUTURE", "received_on is in the future", [{"field": "received_on", "message": "in the future"}])
        source = "other" if ref.has("referral-loses-source") else data["source"]
        row = ref.store.insert("referrals", {"id": new_id("r"), "child_id": child["id"], "received_on": received.isoformat(), "source": source, "reason": data["reason"]})
        return _json(row, 201)

    def _referral_out(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("id", "child_id", "received_on", "source", "reason")}

    async def get_referral(request: Request) -> Response:
        who = ref.caller(request)
        row = ref.store.get("referrals", request.path_params["referral_id"])
        if row is None:
            raise ApiError(404, "NOT_FOUND", "no such referral")
        ref.child_for(who, row["child_id"])
        return _json(_referral_out(row))

    async def child_referrals(request: Request) -> Response:
        who = ref.caller(request)
        child = ref.child_for(who, request.path_params["child_id"])
        rows = ref.store.all("SELECT * FROM referrals WHERE child_id = ? ORDER BY seq", (child["id"],))
        return _json({"items": [_referral_out(r) for r in rows]})

    # -- assessments --------------------------------------------------------------------
    async def assessments(request: Request) -> Response:
        who = ref.caller(request)
        child = ref.child_for(who, request.path_params["child_id"])
        if request.method == "GET":
            rows = ref.store.all("SELECT * FROM assessments WHERE child_id = ? ORDER BY seq", (child["id"],))
            return _json({"items": [ref.assessment_out(r) for r in rows]})
        ref.require_role(who, _WRITERS, "start assessments")
        data = await body_of(request, "AssessmentCreate")
        start = _parse_date(data["start_date"], "start_date")
        if start > ref.today() and not ref.has("assessment-accepts-future-start"):
            raise ApiError(422, "DATE_IN_FUTURE", "start_date is in the future", [{"field": "start_date", "message": "in the future"}])
        referral_id = data.get("referral_id")
        if referral_id is not None:
            referral = ref.store.get("referrals", referral_id)
            if referral is None or referral["child_id"] != child["id"]:
                raise ApiError(422, "VALIDATION_ERROR", "referral_id: no such referral for this child", [{"field": "referral_id", "message": "unknown"}])
            if start.isoformat() < referral["received_on"]:
                raise ApiError(422, "DATE_ORDER", "start_date is before the referral was received", [{"field": "start_date", "message": "before referral"}])
        if child["date_of_death"] is not None and start.isoformat() > child["date_of_death"]:
            raise ApiError(422, "DATE_ORDER", "start_date is after the child's date of death", [{"field": "start_date", "message": "after death"}])
        with ref.store.transaction():
            open_one = ref.store.one("SELECT id FROM assessments WHERE child_id = ? AND status = 'open'", (child["id"],))
            if open_one is not None and not ref.has("gating-allows-second-open"):
                raise ApiError(409, "ASSESSMENT_ALREADY_OPEN", f"assessment {open_one['id']} is still open for this child")
            row = {"id": new_id("as"), "child_id": child["id"], "referral_id": referral_id, "type": data["type"], "start_date": start.isoformat(), "due_date": ref.due_date(data["type"], start).isoformat(), "status": "open", "completed_on": None, "authorised_by": None}
            ref.store.insert("assessments", row)
        return _json(ref.assessment_out(ref.store.get("assessments", row["id"])), 201)

    def _assessment_for(who: dict[str, Any], assessment_id: str) -> dict[str, Any]:
        row = ref.store.get("assessments", assessment_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no assessment {assessment_id}")
        ref.child_for(who, row["child_id"])
        return row

    async def get_assessment(request: Request) -> Response:
        who = ref.caller(request)
        return _json(ref.assessment_out(_assessment_for(who, request.path_params["assessment_id"])))

    async def record_visit(request: Request) -> Response:
        who = ref.caller(request)
        ref.require_role(who, _WRITERS, "record visits")
        row = _assessment_for(who, request.path_params["assessment_id"])
        data = await body_of(request, "VisitCreate")
        visit_date = _parse_date(data["visit_date"], "visit_date")
        seen, alone = bool(data["child_seen"]), data.get("seen_alone")
        if alone and not seen:
            raise ApiError(422, "VALIDATION_ERROR", "seen_alone cannot be true when the child was not seen", [{"field": "seen_alone", "message": "child not seen"}])
        if visit_date > ref.today() and not (ref.has("gating-accepts-future-seen") or ref.has("gating-off")):
            raise ApiError(422, "DATE_IN_FUTURE", "visit_date is in the future", [{"field": "visit_date", "message": "in the future"}])
        if visit_date.isoformat() < row["start_date"] and not (ref.has("gating-ignores-start-date") or ref.has("gating-off")):
            raise ApiError(422, "DATE_ORDER", "visit_date is before the assessment started", [{"field": "visit_date", "message": "before start"}])
        if row["status"] != "open":
            raise ApiError(409, "ASSESSMENT_NOT_OPEN", "the assessment is completed")
        visit = {"id": new_id("v"), "assessment_id": row["id"], "visit_date": visit_date.isoformat(), "child_seen": int(seen), "seen_alone": None if alone is None else int(alone), "recorded_by": who["id"]}
        ref.store.insert("visits", visit)
        return _json(ref.visit_out(visit), 201)

    async def complete(request: Request) -> Response:
        who = ref.caller(request)
        ref.require_role(who, _WRITERS, "complete assessments")
        row = _assessment_for(who, request.path_params["assessment_id"])
        data = await body_of(request, "AssessmentComplete", optional=True)
        completed = _parse_date(data["completed_on"], "completed_on") if "completed_on" in data else ref.today()
        if row["status"] != "open":
            raise ApiError(409, "ASSESSMENT_NOT_OPEN", "the assessment is already completed")
        if completed > ref.today():
            raise ApiError(422, "DATE_IN_FUTURE", "completed_on is in the future", [{"field": "completed_on", "message": "in the future"}])
        if completed.isoformat() < row["start_date"]:
            raise ApiError(422, "DATE_ORDER", "completed_on is before the assessment started", [{"field": "completed_on", "message": "before start"}])
        if not ref.has("gating-off") and not _seen(row, completed):
            if ref.has("gating-completes-despite-refusal"):
                ref.store.update("assessments", row["id"], {"status": "completed", "completed_on": completed.isoformat()})
            code = "VALIDATION_ERROR" if ref.has("gating-generic-error-code") else "CHILD_NOT_SEEN"
            raise ApiError(422, code, "the child has not been seen between the assessment start and the completion date")
        ref.store.update("assessments", row["id"], {"status": "completed", "completed_on": completed.isoformat(), "authorised_by": data.get("authorised_by")})
        return _json(ref.assessment_out(ref.store.get("assessments", row["id"])))

    def _seen(row: dict[str, Any], completed: date) -> bool:
        today = ref.today().isoformat()
        for visit in ref.store.all("SELECT * FROM visits WHERE assessment_id = ?", (row["id"],)):
            if not visit["child_seen"] and not ref.has("gating-counts-unseen-visits"):
                continue
            when = visit["visit_date"]
            if when > today and not ref.has("gating-accepts-future-seen"):
                continue
            if when < row["start_date"] and not ref.has("gating-ignores-start-date"):
                continue
            if when > completed.isoformat() and not (ref.has("gating-ignores-completion-date") or ref.has("gating-accepts-future-seen")):
                continue
            return True
        return False

    # -- audit & export -----------------------------------------------------------------
    async def audit_log(request: Request) -> Response:
        who = ref.caller(request)
        ref.require_role(who, _MANAGERS, "read the audit log")
        page, size = _page_params(request)
        clauses, params = [], []
        for key in ("child_id", "practitioner_id"):
            if key in request.query_params:
                clauses.append(f"{key} = ?")
                params.append(request.query_params[key])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = ref.store.all(f"SELECT id, at, practitioner_id, child_id, action FROM audit {where} ORDER BY seq", params)
        return _json(_paged(rows, page, size))

    async def export(request: Request) -> Response:
        who = ref.caller(request)
        ref.require_role(who, _MANAGERS, "take a bulk export")
        if ref.has("export-unavailable"):
            raise ApiError(501, "NOT_IMPLEMENTED", "bulk export is not available")
        from conformance.reference.exporter import build_export

        data = build_export(ref)
        return Response(data, media_type="application/zip", headers={"Content-Disposition": 'attachment; filename="ics-export.zip"'})

    routes = [
        Route("/about", handler(about), methods=["GET"]),
        Route("/practitioners", handler(create_practitioner), methods=["POST"]),
        Route("/practitioners/me", handler(me), methods=["GET"]),
        Route("/practitioners/me/notifications", handler(list_notifications), methods=["GET"]),
        Route("/notifications/{notification_id}/acknowledge", handler(acknowledge), methods=["POST"]),
        Route("/children", handler(create_child), methods=["POST"]),
        Route("/children", handler(search_children), methods=["GET"]),
        Route("/children/{child_id}", handler(get_child), methods=["GET"]),
        Route("/children/{child_id}", handler(update_child), methods=["PATCH"]),
        Route("/children/{child_id}/aliases", handler(aliases), methods=["GET", "POST"]),
        Route("/children/{child_id}/allocations", handler(allocations), methods=["GET", "POST"]),
        Route("/allocations/{allocation_id}/end", handler(end_allocation), methods=["POST"]),
        Route("/children/{child_id}/case-notes", handler(case_notes), methods=["GET", "POST"]),
        Route("/children/{child_id}/referrals", handler(child_referrals), methods=["GET"]),
        Route("/referrals", handler(create_referral), methods=["POST"]),
        Route("/referrals/{referral_id}", handler(get_referral), methods=["GET"]),
        Route("/children/{child_id}/assessments", handler(assessments), methods=["GET", "POST"]),
        Route("/assessments/{assessment_id}", handler(get_assessment), methods=["GET"]),
        Route("/assessments/{assessment_id}/visits", handler(record_visit), methods=["POST"]),
        Route("/assessments/{assessment_id}/complete", handler(complete), methods=["POST"]),
        Route("/audit", handler(audit_log), methods=["GET"]),
        Route("/export", handler(export), methods=["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if status == 405:
            return _json({"code": "VALIDATION_ERROR", "message": "method not allowed"}, 405)
        return _json({"code": "NOT_FOUND", "message": "no such resource"}, 404)

    async def server_error(request: Request, exc: Exception) -> Response:
        return _json({"code": "INTERNAL_ERROR", "message": "internal error"}, 500)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, 500: server_error})
    app.state.reference = ref
    return app
