"""A second, independent implementation of the canonical ICS API (test equipment, not product).

Written from ``specs/`` (openapi.yaml, catalogue/phase-1A.yaml, phase-1B.yaml, phase-1C.yaml,
schemas/export/*.json) and ``docs/design.md`` alone (phase 1C from its §4, §5, §11 and §12), WITHOUT reading anything under
``conformance/reference/``: its purpose is to find checks that assert more than their
requirement's statement says, so it must not share the reference service's choices by
accident. Nothing from the ``conformance`` package is imported either (name normalisation,
working days and identifier checks are re-derived from the statements; ``holidays`` and
``python-stdnum`` are used as any supplier could).

Stack: Python standard library only (``http.server.ThreadingHTTPServer``, an in-memory store
guarded by one lock), plus ``holidays`` and ``python-stdnum``.

Deliberate choices where the catalogue is silent, made *differently* from the ones design.md
lists for the reference service (each still within the requirement statements):

* identifiers, ``local_id`` included, are stored compact (whitespace removed, upper case);
  ``local_id`` uniqueness is decided on the compact form;
* postcodes are stored compact, without their space (``SW1A1AA``);
* search results are ordered by normalised family name, given name, then id (not by creation);
* an allocation is current while its ``end_date`` is null; a start or end date in the future
  is refused (422 DATE_IN_FUTURE); ending an ended allocation is refused with 409;
  allocating a practitioner who is already currently allocated returns the existing
  allocation (201, no duplicate);
* shielding hides a child from non-allocated practitioners (managers included; admins see
  all) in search, in ``GET/PATCH /children/{id}`` and in its sub-resources (aliases, case
  notes, referrals, assessments, visits); allocation endpoints stay open to managers, who
  grant access; a hidden ``GET /children/{id}`` is still audited as a ``view``;
* notifications are delivered asynchronously: each becomes visible in the inbox a short
  delay after the note (``NOTIFICATION_DELAY`` seconds, 0.25 unless
  ``ICS_IMPL2_NOTIFICATION_DELAY`` says otherwise), inside the declared
  ``notification_latency_seconds`` (3);
* visits may be recorded on a completed assessment (no 409), still dated within the rules;
* a referral, assessment start or seen visit after the child's date of death is refused with
  DATE_ORDER, and so is a date of death before any of them, so the export always keeps
  the date order the export rules demand;
* a name search term that is empty after normalisation is refused (422 VALIDATION_ERROR);
* export files are written in id order with compact JSON, deflated.

Phase 1C (every capability declared, ``/about`` names the ``council``: ``--council`` or
``ICS_IMPL2_COUNCIL``, else "Impl2 Council PORT", so two instances are two councils):

* ``not_seen_alone_reason`` is kept as written whenever it is given (a reason on a visit
  seen alone, or not seen, is stored, not refused), and a visit without one carries no
  ``not_seen_alone_reason`` field at all, in the API and in the export (the field is optional
  in both schemas), rather than null;
* an imported child gets a local ID of this council (``TRANSFER<n>``), not null; its
  postcode is stored in this system's compact form; it gets new ``created_at``/``updated_at``;
* every import creates new practitioner records for the package's practitioners (name and
  role, no token, so they can never sign in), one per package practitioner per import: no
  reuse across imports of the same council;
* re-importing a package is allowed and creates another child;
* an import writes only ``transfer_in`` to the audit log (no ``create``); a package is
  refused (422 INVALID_TRANSFER_PACKAGE, ``details`` naming ``file:line/pointer``) for any
  break of the export rules, a practitioner no record names, a visit recorder not in the
  package, a ``source`` not naming the child and its local ID, an ``audit`` file or any
  unlisted file, and a chronology that is not exactly the one its records give;
  a package over 16 MiB gets 413;
* a manager may produce the transfer package of a shielded child without being allocated
  (as for allocations: the package is for managers and admins), though ``GET
  /children/{id}`` stays hidden from them; the chronology, like other sub-resources, is hidden;
* search audit entries are written for every 200 search (the page is built first), case-note
  reads for every 200 list (a hidden child's 404 is not audited as ``read_notes``);
* ``audit.jsonl`` is in id order (not time order), ``chronology.jsonl`` grouped by child in
  child-id order, each child's events by date, type, source_id.

Environment knobs for other supplier choices (defaults as above): ``ICS_IMPL2_ID_STYLE=serial``
(decimal IDs counted per record type, so IDs of different types collide),
``ICS_IMPL2_EXPORT_EOL=crlf`` and ``ICS_IMPL2_EXPORT_FINAL_EOL=0`` (JSON Lines ended CRLF, no
line end after the last line), ``ICS_IMPL2_NOTIFICATION_DELAY=SECONDS``, ``ICS_IMPL2_EXTRA_FIELDS=1``
(supplier fields on API records and pages), ``ICS_IMPL2_SHIELD_SCOPE=record`` (shielding hides only
the child record and search hits, not sub-resources: the reference's choice, kept to show which
checks depend on it); ``ICS_IMPL2_LENIENT_VISITS=1`` is a deliberately non-conformant variant
(see ``LENIENT_VISITS``).

Run: ``python tests/second_impl/server.py --port 8099 --admin-token SECRET`` (or
``python -m tests.second_impl.server``; ``--port 0`` picks a free port). The first line on
stdout is ``listening on http://HOST:PORT``. The token may also come from ``ICS_ADMIN_TOKEN``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import secrets
import sys
import threading
import time
import unicodedata
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo

import holidays
from stdnum.gb import nhs as stdnum_nhs
from stdnum.gb import upn as stdnum_upn

SPEC_VERSIONS = ["2008.1.1", "2008.2"]
SUPPLIER = "Second Implementation Test Equipment"
PRODUCT = "ics-impl2"
VERSION = "0.1.0"
#: Seconds between a case note and its notifications showing in the inbox (asynchronous delivery);
#: ``ICS_IMPL2_NOTIFICATION_DELAY`` moves it, e.g. just inside the declared bound.
NOTIFICATION_DELAY = float(os.environ.get("ICS_IMPL2_NOTIFICATION_DELAY", "0.25"))
LATENCY_SECONDS = 3
MAX_BODY = 1 << 20
#: Largest transfer package ``POST /transfers`` accepts (413 beyond).
MAX_PACKAGE = 16 << 20
LONDON = ZoneInfo("Europe/London")
TIMESCALES = {"initial": 7, "core": 35}
ROLES = ("admin", "manager", "practitioner", "read_only")
WRITERS = frozenset({"admin", "manager", "practitioner"})
MANAGERS = frozenset({"admin", "manager"})
GENDERS = ("male", "female", "not_known", "not_specified")
ALIAS_TYPES = ("alias", "previous", "known_as")
SOURCES = ("police", "school", "health", "self", "family", "local_authority", "other")
EXPORT_TYPES = (
    "children",
    "aliases",
    "practitioners",
    "allocations",
    "referrals",
    "case_notes",
    "assessments",
    "visits",
)
CAPABILITIES: dict[str, Any] = {
    "unborn_children": True,
    "shielded_records": True,
    "restricted_notes": True,
    "audit": True,
    "bulk_export": True,
    "seen_alone": True,
    "inter_council_transfer": True,
    "chronology_export": True,
    "notification_latency_seconds": LATENCY_SECONDS,
}


# ---------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answer: HTTP status, machine-readable code, message and optional field details."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


def invalid(field_name: str, message: str, code: str = "VALIDATION_ERROR") -> ApiError:
    return ApiError(422, code, f"{field_name}: {message}", [{"field": field_name, "message": message}])


def not_found(what: str = "record") -> ApiError:
    return ApiError(404, "NOT_FOUND", f"no such {what}")


def forbidden() -> ApiError:
    return ApiError(403, "FORBIDDEN", "your role does not allow this")


# ---------------------------------------------------------------- rules re-derived from the statements


def today() -> date:
    """Today's date in Europe/London (the API's notion of "today")."""
    return datetime.now(LONDON).date()


def now_stamp() -> str:
    """The current instant as an RFC 3339 timestamp with a +00:00 offset and microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@cache
def _bank_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=[year]))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def due_date(kind: str, start: date) -> date:
    """The date ``TIMESCALES[kind]`` working days after ``start`` (start itself is day 0)."""
    day, left = start, TIMESCALES[kind]
    while left:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return day


_APOSTROPHES = {"\u2019": "'", "\u2018": "'"}


def name_key(text: str) -> str:
    """NFKD, combining marks removed, case folded, the apostrophes ' ’ ‘ unified."""
    text = "".join(_APOSTROPHES.get(ch, ch) for ch in text)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def name_candidates(name: str) -> list[str]:
    """The normalised whole name and each part of it split on spaces and hyphens."""
    whole = name_key(name)
    return [whole, *(p for p in re.split(r"[ \-]+", whole) if p)]


def compact(value: str) -> str:
    """Identifier compaction: every whitespace character removed, upper case."""
    return "".join(value.split()).upper()


_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")


def _is_name_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LM" or ch in " -'\u2019\u2018."


def is_name(value: str) -> bool:
    """A ``Name``: letters, combining marks, spaces, hyphens, apostrophes, full stops; a letter at least."""
    return all(map(_is_name_char, value)) and any(unicodedata.category(ch)[0] == "L" for ch in value)


# ---------------------------------------------------------------- request validation (from openapi.yaml)

_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def parse_date(value: Any, field_name: str) -> date:
    if not isinstance(value, str) or not _DATE.match(value):
        raise invalid(field_name, "must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(field_name, "not a calendar date") from None


@dataclass(frozen=True)
class F:
    """One body field: its kind (str, bool, date, enum), nullability and length bounds."""

    kind: str
    nullable: bool = False
    min_len: int = 1
    max_len: int | None = None
    choices: tuple[str, ...] = ()


NAME = F("name", max_len=100)
BODIES: dict[str, tuple[dict[str, F], frozenset[str]]] = {
    "PractitionerCreate": (
        {"name": F("str", max_len=200), "role": F("enum", choices=ROLES)},
        frozenset({"name", "role"}),
    ),
    "ChildCreate": (
        {
            "local_id": F("str", max_len=100),
            "given_name": NAME,
            "family_name": NAME,
            "date_of_birth": F("date"),
            "expected_date_of_birth": F("date"),
            "gender": F("enum", choices=GENDERS),
            "date_of_death": F("date", nullable=True),
            "upn": F("str", nullable=True, max_len=20),
            "nhs_number": F("str", nullable=True, max_len=20),
            "postcode": F("str", nullable=True, max_len=16),
            "shielded": F("bool"),
        },
        frozenset({"given_name", "family_name", "gender"}),
    ),
    "ChildUpdate": (
        {
            "local_id": F("str", max_len=100),
            "given_name": NAME,
            "family_name": NAME,
            "date_of_birth": F("date", nullable=True),
            "expected_date_of_birth": F("date", nullable=True),
            "gender": F("enum", choices=GENDERS),
            "date_of_death": F("date", nullable=True),
            "upn": F("str", nullable=True, max_len=20),
            "nhs_number": F("str", nullable=True, max_len=20),
            "postcode": F("str", nullable=True, max_len=16),
            "shielded": F("bool"),
        },
        frozenset(),
    ),
    "AliasCreate": (
        {"given_name": NAME, "family_name": NAME, "type": F("enum", choices=ALIAS_TYPES)},
        frozenset({"given_name", "family_name", "type"}),
    ),
    "AllocationCreate": (
        {"practitioner_id": F("str", max_len=200), "start_date": F("date")},
        frozenset({"practitioner_id"}),
    ),
    "AllocationEnd": ({"end_date": F("date")}, frozenset()),
    "CaseNoteCreate": ({"text": F("str", max_len=10000), "restricted": F("bool")}, frozenset({"text"})),
    "ReferralCreate": (
        {
            "child_id": F("str", max_len=200),
            "received_on": F("date"),
            "source": F("enum", choices=SOURCES),
            "reason": F("str", max_len=2000),
        },
        frozenset({"child_id", "received_on", "source", "reason"}),
    ),
    "AssessmentCreate": (
        {
            "type": F("enum", choices=("initial", "core")),
            "start_date": F("date"),
            "referral_id": F("str", max_len=200),
        },
        frozenset({"type", "start_date"}),
    ),
    "AssessmentComplete": ({"completed_on": F("date"), "authorised_by": F("str", max_len=200)}, frozenset()),
    "VisitCreate": (
        {
            "visit_date": F("date"),
            "child_seen": F("bool"),
            "seen_alone": F("bool", nullable=True),
            "not_seen_alone_reason": F("str", nullable=True, max_len=500),
        },
        frozenset({"visit_date", "child_seen"}),
    ),
}


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def validate_body(schema: str, body: Any) -> dict[str, Any]:
    """Check ``body`` against a request schema of openapi.yaml; return it with dates parsed."""
    fields, required = BODIES[schema]
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    extra = sorted(set(body) - set(fields))
    if extra:
        raise invalid(extra[0], "unknown field")
    missing = sorted(required - set(body))
    if missing:
        raise invalid(missing[0], "required")
    if schema == "ChildUpdate" and not body:
        raise invalid("body", "at least one field is required")
    out: dict[str, Any] = {}
    for name, value in body.items():
        spec = fields[name]
        if value is None:
            if not spec.nullable:
                raise invalid(name, "must not be null")
            out[name] = None
            continue
        if spec.kind == "bool":
            if type(value) is not bool:
                raise invalid(name, "must be a boolean")
            out[name] = value
        elif spec.kind == "date":
            out[name] = parse_date(value, name)
        elif spec.kind == "enum":
            if not isinstance(value, str) or value not in spec.choices:
                raise invalid(name, f"must be one of {', '.join(spec.choices)}")
            out[name] = value
        else:
            if not isinstance(value, str):
                raise invalid(name, "must be a string")
            if _has_surrogate(value):
                raise invalid(name, "not valid Unicode text")
            if len(value) < spec.min_len or (spec.max_len is not None and len(value) > spec.max_len):
                raise invalid(name, f"length must be {spec.min_len}..{spec.max_len}")
            if spec.kind == "name" and not is_name(value):
                raise invalid(
                    name,
                    "letters, combining marks, spaces, hyphens, apostrophes and full stops, with a letter",
                    "INVALID_NAME",
                )
            out[name] = value
    return out


def query_int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[+-]?[0-9]{1,9}", raw):
        raise invalid(name, "must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise invalid(name, f"must be {low}..{high}")
    return value


def query_str(query: dict[str, str], name: str, max_len: int) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not 1 <= len(raw) <= max_len or _has_surrogate(raw):
        raise invalid(name, f"length must be 1..{max_len}")
    return raw


def page_of(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    page = query_int(query, "page", 1, 1, 1_000_000)
    size = query_int(query, "page_size", 20, 1, 100)
    start = (page - 1) * size
    return {"items": items[start : start + size], "page": page, "page_size": size, "total": len(items)}


# ---------------------------------------------------------------- the store


#: Export line ends (``ICS_IMPL2_EXPORT_EOL``: ``lf`` or ``crlf``) and whether the last line has one
#: (``ICS_IMPL2_EXPORT_FINAL_EOL``: ``1`` or ``0``): JSON Lines allows either.
EXPORT_EOL = b"\r\n" if os.environ.get("ICS_IMPL2_EXPORT_EOL") == "crlf" else b"\n"
EXPORT_FINAL_EOL = os.environ.get("ICS_IMPL2_EXPORT_FINAL_EOL", "1") == "1"
#: ``uuid`` (default) or ``serial``: decimal numbers counted per record type, as many databases
#: hand out, so that a child, a practitioner and a case note may all be "7" (``ICS_IMPL2_ID_STYLE``).
ID_STYLE = os.environ.get("ICS_IMPL2_ID_STYLE", "uuid")
_SERIALS: dict[str, int] = {}


def new_id(kind: str) -> str:
    """A new record ID of ``kind`` (called under the store lock)."""
    if ID_STYLE == "serial":
        _SERIALS[kind] = _SERIALS.get(kind, 0) + 1
        return str(_SERIALS[kind])
    return str(uuid.uuid4())


@dataclass
class Practitioner:
    id: str
    name: str
    role: str
    token: str

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role}


@dataclass
class Notification:
    id: str
    practitioner_id: str
    child_id: str
    case_note_id: str
    created_at: str
    visible_from: float
    preview: str | None
    acknowledged_at: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "practitioner_id": self.practitioner_id,
            "child_id": self.child_id,
            "case_note_id": self.case_note_id,
            "created_at": self.created_at,
            "acknowledged_at": self.acknowledged_at,
            "preview": self.preview,
        }


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


@dataclass
class Store:
    """Every record, in plain dicts keyed by id; one re-entrant lock serialises all access."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    practitioners: dict[str, Practitioner] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    allocations: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    note_seq: dict[str, int] = field(default_factory=dict)
    referrals: dict[str, dict[str, Any]] = field(default_factory=dict)
    assessments: dict[str, dict[str, Any]] = field(default_factory=dict)
    visits: dict[str, dict[str, Any]] = field(default_factory=dict)
    notifications: dict[str, Notification] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: int = 0

    def add_practitioner(self, name: str, role: str, token: str | None = None) -> Practitioner:
        person = Practitioner(new_id("practitioners"), name, role, token or secrets.token_urlsafe(32))
        self.practitioners[person.id] = person
        self.tokens[person.token] = person.id
        return person

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # ---- visibility

    def current_allocations(self, child_id: str) -> list[dict[str, Any]]:
        return [a for a in self.allocations.values() if a["child_id"] == child_id and a["end_date"] is None]

    def is_allocated(self, person: Practitioner, child_id: str) -> bool:
        return any(a["practitioner_id"] == person.id for a in self.current_allocations(child_id))

    def can_see(self, person: Practitioner, child: dict[str, Any]) -> bool:
        return person.role == "admin" or not child["shielded"] or self.is_allocated(person, child["id"])

    def child_for(
        self, person: Practitioner, child_id: str, *, allocating: bool = False, record: bool = False
    ) -> dict[str, Any]:
        """The child if it exists and the caller may see it (managers may always reach allocations).

        ``record`` marks the child record itself (``PATCH /children/{id}``) rather than a
        sub-resource: under ``ICS_IMPL2_SHIELD_SCOPE=record`` only the record is hidden.
        """
        child = self.children.get(child_id)
        if child is None:
            raise not_found("child")
        if SHIELD_SCOPE == "record" and not record:
            return child
        if not self.can_see(person, child) and not (allocating and person.role == "manager"):
            raise not_found("child")
        return child

    def record_audit(self, person: Practitioner, child_id: str | None, action: str) -> None:
        self.audit.append(
            {
                "id": new_id("audit"),
                "at": now_stamp(),
                "practitioner_id": person.id,
                "child_id": child_id,
                "action": action,
                "_seq": self.next_seq(),
            }
        )

    # ---- children

    def normalise_child(self, values: dict[str, Any], own_id: str | None) -> dict[str, Any]:
        """Compact and check identifiers, postcode and dates of a complete child record."""
        out = dict(values)
        if out.get("local_id") is not None:
            local = compact(out["local_id"])
            if not local:
                raise invalid("local_id", "must not be blank")
            out["local_id"] = local
        if out.get("upn") is not None:
            value = compact(out["upn"])
            if not stdnum_upn.is_valid(value):
                raise invalid("upn", "not a valid UPN (check letter)", "INVALID_UPN")
            out["upn"] = value
        if out.get("nhs_number") is not None:
            value = compact(out["nhs_number"])
            if not stdnum_nhs.is_valid(value):
                raise invalid("nhs_number", "not a valid NHS number (modulus 11)", "INVALID_NHS_NUMBER")
            out["nhs_number"] = value
        if out.get("postcode") is not None:
            value = compact(out["postcode"])
            if not _POSTCODE.match(value):
                raise invalid("postcode", "not a UK postcode", "INVALID_POSTCODE")
            out["postcode"] = value
        dob, edob, dod = out.get("date_of_birth"), out.get("expected_date_of_birth"), out.get("date_of_death")
        if (dob is None) == (edob is None):
            raise invalid("date_of_birth", "exactly one of date_of_birth and expected_date_of_birth is required")
        if dob is not None and dob > today():
            raise invalid("date_of_birth", "after today", "DATE_IN_FUTURE")
        if dod is not None:
            if dod > today():
                raise invalid("date_of_death", "after today", "DATE_IN_FUTURE")
            if dob is None:
                raise invalid("date_of_death", "an unborn child has no date of death", "DATE_ORDER")
            if dod < dob:
                raise invalid("date_of_death", "before the date of birth", "DATE_ORDER")
            latest = self.latest_event(own_id) if own_id is not None else None
            if latest is not None and dod < latest:
                raise invalid("date_of_death", "before a recorded referral, assessment or seen visit", "DATE_ORDER")
        held = out.get("local_id")
        if held is not None and any(c["local_id"] == held and c["id"] != own_id for c in self.children.values()):
            raise ApiError(409, "DUPLICATE_LOCAL_ID", "local_id already held by another child")
        return out

    def latest_event(self, child_id: str) -> date | None:
        """The latest referral, assessment start or seen visit date of a child (for date-of-death order)."""
        dates = [r["received_on"] for r in self.referrals.values() if r["child_id"] == child_id]
        for a in self.assessments.values():
            if a["child_id"] == child_id:
                dates.append(a["start_date"])
                dates.extend(
                    v["visit_date"] for v in self.visits.values() if v["assessment_id"] == a["id"] and v["child_seen"]
                )
        return max(dates, default=None)

    def create_child(self, person: Practitioner, body: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {name: None for name in CHILD_FIELDS}
        values.update(body)
        values["shielded"] = bool(body.get("shielded", False))
        values = self.normalise_child(values, None)
        stamp = now_stamp()
        values.update(id=new_id("children"), created_at=stamp, updated_at=stamp)
        self.children[values["id"]] = values
        self.record_audit(person, values["id"], "create")
        return values

    def update_child(self, person: Practitioner, child: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        values = dict(child)
        values.update(body)
        values = self.normalise_child(values, child["id"])
        values["updated_at"] = now_stamp()
        child.update(values)
        self.record_audit(person, child["id"], "update")
        return child

    def search(self, person: Practitioner, query: dict[str, str]) -> list[dict[str, Any]]:
        given = query_str(query, "given_name", 100)
        family = query_str(query, "family_name", 100)
        for label, term in (("given_name", given), ("family_name", family)):
            if term is not None and not is_name(term):
                raise invalid(label, "a name criterion is a Name (letters, at least one)", "INVALID_NAME")
        dob_raw = query.get("date_of_birth")
        dob = parse_date(dob_raw, "date_of_birth") if dob_raw is not None else None
        gender = query.get("gender")
        if gender is not None and gender not in GENDERS:
            raise invalid("gender", "unknown gender")
        postcode = query_str(query, "postcode", 16)
        upn = query_str(query, "upn", 20)
        nhs = query_str(query, "nhs_number", 20)
        local = query_str(query, "local_id", 100)
        deceased_raw = query.get("include_deceased", "false")
        if deceased_raw not in ("true", "false"):
            raise invalid("include_deceased", "must be true or false")
        criteria = (given, family, dob, gender, postcode, upn, nhs, local)
        if all(c is None for c in criteria):
            raise invalid("query", "at least one search criterion is required")
        given_key = name_key(given).strip() if given is not None else None
        family_key = name_key(family).strip() if family is not None else None
        if given_key == "" or family_key == "":
            raise invalid(
                "given_name" if given_key == "" else "family_name", "nothing left to search after normalising"
            )
        postcode_key = compact(postcode) if postcode is not None else None
        upn_key = compact(upn) if upn is not None else None
        nhs_key = compact(nhs) if nhs is not None else None
        local_key = compact(local) if local is not None else None

        def names_of(child: dict[str, Any]) -> list[tuple[str, str]]:
            found = [(child["given_name"], child["family_name"])]
            found += [
                (a["given_name"], a["family_name"]) for a in self.aliases.values() if a["child_id"] == child["id"]
            ]
            return found

        def matches_name(record: tuple[str, str]) -> bool:
            if given_key is not None and not any(c.startswith(given_key) for c in name_candidates(record[0])):
                return False
            return family_key is None or any(c.startswith(family_key) for c in name_candidates(record[1]))

        hits = []
        for child in self.children.values():
            if not self.can_see(person, child):
                continue
            if child["date_of_death"] is not None and deceased_raw != "true":
                continue
            if dob is not None and (child["date_of_birth"] or child["expected_date_of_birth"]) != dob:
                continue
            if gender is not None and child["gender"] != gender:
                continue
            if postcode_key is not None and child["postcode"] != postcode_key:
                continue
            if upn_key is not None and child["upn"] != upn_key:
                continue
            if nhs_key is not None and child["nhs_number"] != nhs_key:
                continue
            if local_key is not None and child["local_id"] != local_key:
                continue
            if (given_key is not None or family_key is not None) and not any(map(matches_name, names_of(child))):
                continue
            hits.append(child)
        hits.sort(key=lambda c: (name_key(c["family_name"]), name_key(c["given_name"]), c["id"]))
        return hits

    # ---- notifications

    def raise_notifications(self, author: Practitioner, note: dict[str, Any]) -> None:
        recipients = {a["practitioner_id"] for a in self.current_allocations(note["child_id"])} - {author.id}
        preview = None if note["restricted"] else note["text"][:100]
        visible = time.monotonic() + NOTIFICATION_DELAY
        for pid in sorted(recipients):
            item = Notification(
                new_id("notifications"), pid, note["child_id"], note["id"], note["created_at"], visible, preview
            )
            self.notifications[item.id] = item

    def inbox(self, person: Practitioner) -> list[Notification]:
        clock = time.monotonic()
        return [n for n in self.notifications.values() if n.practitioner_id == person.id and n.visible_from <= clock]

    # ---- transfers (phase 1C)

    def import_package(self, person: Practitioner, package: dict[str, Any]) -> dict[str, Any]:
        """Store a validated package as a new child with new IDs for every record; the transfer record."""
        rows, manifest = package["rows"], package["manifest"]
        mapping: dict[str, dict[str, str]] = {t: {} for t in EXPORT_TYPES}
        stamp, day = now_stamp(), today()
        for record in rows["practitioners"]:
            # A new practitioner per import, never able to sign in (no token is issued).
            person_there = Practitioner(new_id("practitioners"), record["name"], record["role"], "")
            self.practitioners[person_there.id] = person_there
            mapping["practitioners"][record["id"]] = person_there.id
        people = mapping["practitioners"]
        source_child = rows["children"][0]
        child = {name: source_child[name] for name in CHILD_FIELDS}
        for name in ("date_of_birth", "expected_date_of_birth", "date_of_death"):
            child[name] = None if child[name] is None else date.fromisoformat(child[name])
        if child["postcode"] is not None:
            child["postcode"] = compact(child["postcode"])
        child.update(id=new_id("children"), local_id=self.transfer_local_id(), created_at=stamp, updated_at=stamp)
        self.children[child["id"]] = child
        mapping["children"][source_child["id"]] = child["id"]
        for record in rows["aliases"]:
            alias = {**record, "id": new_id("aliases"), "child_id": child["id"], "_seq": self.next_seq()}
            self.aliases[alias["id"]] = alias
            mapping["aliases"][record["id"]] = alias["id"]
        for record in sorted(rows["allocations"], key=lambda r: (r["start_date"], r["id"])):
            end = date.fromisoformat(record["end_date"]) if record["end_date"] is not None else day
            allocation = {
                "id": new_id("allocations"),
                "child_id": child["id"],
                "practitioner_id": people[record["practitioner_id"]],
                "start_date": date.fromisoformat(record["start_date"]),
                "end_date": end,
                "_seq": self.next_seq(),
            }
            self.allocations[allocation["id"]] = allocation
            mapping["allocations"][record["id"]] = allocation["id"]
        for record in sorted(rows["referrals"], key=lambda r: (r["received_on"], r["id"])):
            referral = {
                **record,
                "id": new_id("referrals"),
                "child_id": child["id"],
                "received_on": date.fromisoformat(record["received_on"]),
                "_seq": self.next_seq(),
            }
            self.referrals[referral["id"]] = referral
            mapping["referrals"][record["id"]] = referral["id"]
        for record in sorted(rows["case_notes"], key=lambda r: (r["created_at"], r["id"])):
            note = {
                **record,
                "id": new_id("case_notes"),
                "child_id": child["id"],
                "author_id": people[record["author_id"]],
                "_seq": self.next_seq(),
            }
            self.notes[note["id"]] = note
            mapping["case_notes"][record["id"]] = note["id"]
        for record in sorted(rows["assessments"], key=lambda r: (r["start_date"], r["id"])):
            completed = record["completed_on"]
            assessment = {
                **record,
                "id": new_id("assessments"),
                "child_id": child["id"],
                "referral_id": None if record["referral_id"] is None else mapping["referrals"][record["referral_id"]],
                "start_date": date.fromisoformat(record["start_date"]),
                "due_date": date.fromisoformat(record["due_date"]),
                "completed_on": None if completed is None else date.fromisoformat(completed),
                "_seq": self.next_seq(),
            }
            self.assessments[assessment["id"]] = assessment
            mapping["assessments"][record["id"]] = assessment["id"]
        for record in sorted(rows["visits"], key=lambda r: (r["visit_date"], r["id"])):
            visit = {
                "id": new_id("visits"),
                "assessment_id": mapping["assessments"][record["assessment_id"]],
                "visit_date": date.fromisoformat(record["visit_date"]),
                "child_seen": record["child_seen"],
                "seen_alone": record["seen_alone"],
                "not_seen_alone_reason": record.get("not_seen_alone_reason"),
                "recorded_by": people[record["recorded_by"]],
                "_seq": self.next_seq(),
            }
            self.visits[visit["id"]] = visit
            mapping["visits"][record["id"]] = visit["id"]
        transfer = {
            "id": new_id("transfers"),
            "child_id": child["id"],
            "source": dict(manifest["source"]),
            "imported_at": stamp,
            "imported_by": person.id,
            "records": mapping,
        }
        self.transfers[transfer["id"]] = transfer
        self.record_audit(person, child["id"], "transfer_in")
        return transfer

    def transfer_local_id(self) -> str:
        """A local child ID of this council for an imported child (unique among children)."""
        held = {c["local_id"] for c in self.children.values()}
        number = len(self.transfers) + 1
        while f"TRANSFER{number}" in held:
            number += 1
        return f"TRANSFER{number}"


#: ``all`` (default): shielding hides a child's sub-resources too; ``record``: only search and the
#: child record itself (``GET``/``PATCH /children/{id}``) hide it, as the reference chose
#: (``ICS_IMPL2_SHIELD_SCOPE``). The variant exists to show which checks depend on that choice.
SHIELD_SCOPE = os.environ.get("ICS_IMPL2_SHIELD_SCOPE", "all")
STORE = Store()
#: The council this system serves: ``GET /about`` names it and its transfer packages give it as their source.
COUNCIL = "Impl2 Council"


# ---------------------------------------------------------------- presentation


def child_out(child: dict[str, Any]) -> dict[str, Any]:
    return {name: (child[name].isoformat() if isinstance(child[name], date) else child[name]) for name in CHILD_FIELDS}


def dated(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in record.items() if not k.startswith("_")}


def assessment_out(store: Store, assessment: dict[str, Any], *, export: bool = False) -> dict[str, Any]:
    out = dated(assessment)
    if export:
        return out
    due = assessment["due_date"]
    if assessment["status"] == "open":
        out["overdue"] = today() > due
    else:
        out["overdue"] = assessment["completed_on"] > due
    visits = sorted(
        (v for v in store.visits.values() if v["assessment_id"] == assessment["id"]),
        key=lambda v: (v["visit_date"], v["_seq"]),
    )
    out["visits"] = [visit_out(v) for v in visits]
    return out


def visit_out(visit: dict[str, Any]) -> dict[str, Any]:
    """A visit as the API and the export give it: ``not_seen_alone_reason`` only when recorded."""
    out = dated(visit)
    if out.get("not_seen_alone_reason") is None:
        out.pop("not_seen_alone_reason", None)
    return out


def note_out(note: dict[str, Any], reader: Practitioner) -> dict[str, Any]:
    out = dated(note)
    if note["restricted"] and reader.id != note["author_id"] and reader.role not in MANAGERS:
        out["text"] = None
    return out


# ---------------------------------------------------------------- handlers

Handler = Callable[[Practitioner, dict[str, str], Any, list[str]], tuple[int, Any]]


def need(person: Practitioner, roles: frozenset[str]) -> None:
    if person.role not in roles:
        raise forbidden()


def h_create_practitioner(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, frozenset({"admin"}))
    data = validate_body("PractitionerCreate", body)
    created = STORE.add_practitioner(data["name"], data["role"])
    return 201, {**created.public(), "token": created.token}


def h_me(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    return 200, person.public()


def h_notifications(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    status = query.get("status", "all")
    if status not in ("unacknowledged", "acknowledged", "all"):
        raise invalid("status", "must be unacknowledged, acknowledged or all")
    items = STORE.inbox(person)
    if status == "acknowledged":
        items = [n for n in items if n.acknowledged_at is not None]
    elif status == "unacknowledged":
        items = [n for n in items if n.acknowledged_at is None]
    return 200, page_of([n.public() for n in items], query)


def h_acknowledge(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    item = STORE.notifications.get(args[0])
    if item is None or item.practitioner_id != person.id or item.visible_from > time.monotonic():
        raise not_found("notification")
    if item.acknowledged_at is None:
        item.acknowledged_at = now_stamp()
    return 200, item.public()


def h_create_child(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, WRITERS)
    return 201, child_out(STORE.create_child(person, validate_body("ChildCreate", body)))


def h_search(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    page = page_of([child_out(c) for c in STORE.search(person, query)], query)
    STORE.record_audit(person, None, "search")
    return 200, page


def h_get_child(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    child = STORE.children.get(args[0])
    if child is None:
        raise not_found("child")
    STORE.record_audit(person, child["id"], "view")
    if not STORE.can_see(person, child):
        raise not_found("child")
    return 200, child_out(child)


def h_patch_child(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, WRITERS)
    child = STORE.child_for(person, args[0], record=True)
    return 200, child_out(STORE.update_child(person, child, validate_body("ChildUpdate", body)))


def h_add_alias(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, WRITERS)
    child = STORE.child_for(person, args[0])
    data = validate_body("AliasCreate", body)
    alias = {"id": new_id("aliases"), "child_id": child["id"], **data, "_seq": STORE.next_seq()}
    STORE.aliases[alias["id"]] = alias
    return 201, dated(alias)


def h_list_aliases(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    child = STORE.child_for(person, args[0])
    items = sorted((a for a in STORE.aliases.values() if a["child_id"] == child["id"]), key=lambda a: a["_seq"])
    return 200, {"items": [dated(a) for a in items]}


def h_allocate(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, MANAGERS)
    child = STORE.child_for(person, args[0], allocating=True)
    data = validate_body("AllocationCreate", body)
    if data["practitioner_id"] not in STORE.practitioners:
        raise invalid("practitioner_id", "no such practitioner", "UNKNOWN_PRACTITIONER")
    start = data.get("start_date", today())
    if start > today():
        raise invalid("start_date", "after today", "DATE_IN_FUTURE")
    for existing in STORE.current_allocations(child["id"]):
        if existing["practitioner_id"] == data["practitioner_id"]:
            return 201, dated(existing)
    record = {
        "id": new_id("allocations"),
        "child_id": child["id"],
        "practitioner_id": data["practitioner_id"],
        "start_date": start,
        "end_date": None,
        "_seq": STORE.next_seq(),
    }
    STORE.allocations[record["id"]] = record
    return 201, dated(record)


def h_list_allocations(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    child = STORE.child_for(person, args[0], allocating=True)
    items = sorted((a for a in STORE.allocations.values() if a["child_id"] == child["id"]), key=lambda a: a["_seq"])
    return 200, {"items": [dated(a) for a in items]}


def h_end_allocation(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, MANAGERS)
    record = STORE.allocations.get(args[0])
    if record is None:
        raise not_found("allocation")
    STORE.child_for(person, record["child_id"], allocating=True)
    data = validate_body("AllocationEnd", {} if body is None else body)
    if record["end_date"] is not None:
        raise ApiError(409, "VALIDATION_ERROR", "the allocation has already ended")
    end = data.get("end_date", today())
    if end > today():
        raise invalid("end_date", "after today", "DATE_IN_FUTURE")
    if end < record["start_date"]:
        raise invalid("end_date", "before the start date", "DATE_ORDER")
    record["end_date"] = end
    return 200, dated(record)


def h_add_note(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, WRITERS)
    child = STORE.child_for(person, args[0])
    data = validate_body("CaseNoteCreate", body)
    note = {
        "id": new_id("case_notes"),
        "child_id": child["id"],
        "author_id": person.id,
        "text": data["text"],
        "restricted": data.get("restricted", False),
        "created_at": now_stamp(),
        "_seq": STORE.next_seq(),
    }
    STORE.notes[note["id"]] = note
    STORE.raise_notifications(person, note)
    return 201, note_out(note, person)


def h_list_notes(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    child = STORE.child_for(person, args[0])
    items = sorted((n for n in STORE.notes.values() if n["child_id"] == child["id"]), key=lambda n: n["_seq"])
    STORE.record_audit(person, child["id"], "read_notes")
    return 200, {"items": [note_out(n, person) for n in items]}


def h_create_referral(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, WRITERS)
    data = validate_body("ReferralCreate", body)
    child = STORE.child_for(person, data["child_id"])
    if data["received_on"] > today():
        raise invalid("received_on", "after today", "DATE_IN_FUTURE")
    if child["date_of_death"] is not None and data["received_on"] > child["date_of_death"]:
        raise invalid("received_on", "after the child's date of death", "DATE_ORDER")
    referral = {"id": new_id("referrals"), **data, "_seq": STORE.next_seq()}
    STORE.referrals[referral["id"]] = referral
    return 201, dated(referral)


def h_get_referral(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    referral = STORE.referrals.get(args[0])
    if referral is None:
        raise not_found("referral")
    STORE.child_for(person, referral["child_id"])
    return 200, dated(referral)


def h_list_referrals(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    child = STORE.child_for(person, args[0])
    items = sorted((r for r in STORE.referrals.values() if r["child_id"] == child["id"]), key=lambda r: r["_seq"])
    return 200, {"items": [dated(r) for r in items]}


def h_start_assessment(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, WRITERS)
    child = STORE.child_for(person, args[0])
    data = validate_body("AssessmentCreate", body)
    start = data["start_date"]
    if start > today():
        raise invalid("start_date", "after today", "DATE_IN_FUTURE")
    referral_id = data.get("referral_id")
    if referral_id is not None:
        referral = STORE.referrals.get(referral_id)
        if referral is None or referral["child_id"] != child["id"]:
            raise invalid("referral_id", "no such referral of this child")
        if start < referral["received_on"]:
            raise invalid("start_date", "before the referral was received", "DATE_ORDER")
    if child["date_of_death"] is not None and start > child["date_of_death"]:
        raise invalid("start_date", "after the child's date of death", "DATE_ORDER")
    if any(a["child_id"] == child["id"] and a["status"] == "open" for a in STORE.assessments.values()):
        raise ApiError(409, "ASSESSMENT_ALREADY_OPEN", "the child already has an open assessment")
    record = {
        "id": new_id("assessments"),
        "child_id": child["id"],
        "referral_id": referral_id,
        "type": data["type"],
        "start_date": start,
        "due_date": due_date(data["type"], start),
        "status": "open",
        "completed_on": None,
        "authorised_by": None,
        "_seq": STORE.next_seq(),
    }
    STORE.assessments[record["id"]] = record
    return 201, assessment_out(STORE, record)


def h_list_assessments(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    child = STORE.child_for(person, args[0])
    items = sorted((a for a in STORE.assessments.values() if a["child_id"] == child["id"]), key=lambda a: a["_seq"])
    return 200, {"items": [assessment_out(STORE, a) for a in items]}


def assessment_for(person: Practitioner, assessment_id: str) -> dict[str, Any]:
    record = STORE.assessments.get(assessment_id)
    if record is None:
        raise not_found("assessment")
    STORE.child_for(person, record["child_id"])
    return record


def h_get_assessment(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    return 200, assessment_out(STORE, assessment_for(person, args[0]))


#: ``ICS_IMPL2_LENIENT_VISITS=1``: visits dated before the assessment start or in the future are
#: stored (they still never count towards completion). ICS-1B-GATE-003 allows that; GATE-002 (spec
#: 2008.1.1) does not for a seen visit before the start when bulk_export is declared, as here: a
#: deliberately non-conformant variant that proves the GATE-002 check.
LENIENT_VISITS = os.environ.get("ICS_IMPL2_LENIENT_VISITS") == "1"


def h_add_visit(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, WRITERS)
    record = assessment_for(person, args[0])
    data = validate_body("VisitCreate", body)
    when = data["visit_date"]
    if when > today() and not LENIENT_VISITS:
        raise invalid("visit_date", "after today", "DATE_IN_FUTURE")
    if when < record["start_date"] and not LENIENT_VISITS:
        raise invalid("visit_date", "before the assessment start", "DATE_ORDER")
    if data.get("seen_alone") is True and not data["child_seen"]:
        raise invalid("seen_alone", "a child not seen cannot be seen alone")
    reason = data.get("not_seen_alone_reason")
    if data["child_seen"] and data.get("seen_alone") is False and reason is None:
        raise invalid("not_seen_alone_reason", "required when the child was seen but not alone")
    death = STORE.children[record["child_id"]]["date_of_death"]
    if data["child_seen"] and death is not None and when > death:
        raise invalid("visit_date", "after the child's date of death", "DATE_ORDER")
    visit = {
        "id": new_id("visits"),
        "assessment_id": record["id"],
        "visit_date": when,
        "child_seen": data["child_seen"],
        "seen_alone": data.get("seen_alone"),
        "not_seen_alone_reason": reason,
        "recorded_by": person.id,
        "_seq": STORE.next_seq(),
    }
    STORE.visits[visit["id"]] = visit
    return 201, visit_out(visit)


def h_complete(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, WRITERS)
    record = assessment_for(person, args[0])
    data = validate_body("AssessmentComplete", {} if body is None else body)
    if record["status"] != "open":
        raise ApiError(409, "ASSESSMENT_NOT_OPEN", "the assessment is not open")
    done = data.get("completed_on", today())
    if done > today():
        raise invalid("completed_on", "after today", "DATE_IN_FUTURE")
    if done < record["start_date"]:
        raise invalid("completed_on", "before the assessment start", "DATE_ORDER")
    seen = any(
        v["assessment_id"] == record["id"] and v["child_seen"] and record["start_date"] <= v["visit_date"] <= done
        for v in STORE.visits.values()
    )
    if not seen:
        raise invalid("completed_on", "no visit saw the child between the start and the completion", "CHILD_NOT_SEEN")
    record.update(status="completed", completed_on=done, authorised_by=data.get("authorised_by"))
    return 200, assessment_out(STORE, record)


def h_audit(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, MANAGERS)
    child_id = query_str(query, "child_id", 200)
    practitioner_id = query_str(query, "practitioner_id", 200)
    items = [
        dated(e)
        for e in STORE.audit
        if (child_id is None or e["child_id"] == child_id)
        and (practitioner_id is None or e["practitioner_id"] == practitioner_id)
    ]
    return 200, page_of(items, query)


# ---------------------------------------------------------------- chronology (phase 1C)

#: (event type, source type, date field) per significant event, in the statements' words.
EVENT_SOURCES = (
    ("referral_received", "referrals", "received_on"),
    ("assessment_started", "assessments", "start_date"),
    ("assessment_completed", "assessments", "completed_on"),
    ("child_seen", "visits", "visit_date"),
    ("allocation_started", "allocations", "start_date"),
    ("allocation_ended", "allocations", "end_date"),
)


def derive_events(
    child_id: str,
    referrals: list[dict[str, Any]],
    assessments: list[dict[str, Any]],
    visits: list[dict[str, Any]],
    allocations: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One child's chronology from its records (ISO date strings), ordered by date, type, source_id."""
    events: list[dict[str, Any]] = []

    def add(kind: str, source_type: str, record: dict[str, Any], day: Any) -> None:
        if day is not None:
            events.append(
                {"child_id": child_id, "date": day, "type": kind, "source_type": source_type, "source_id": record["id"]}
            )

    for r in referrals:
        add("referral_received", "referrals", r, r["received_on"])
    for a in assessments:
        add("assessment_started", "assessments", a, a["start_date"])
        if a["status"] == "completed":
            add("assessment_completed", "assessments", a, a["completed_on"])
    for v in visits:
        if v["child_seen"]:
            add("child_seen", "visits", v, v["visit_date"])
    for a in allocations:
        add("allocation_started", "allocations", a, a["start_date"])
        add("allocation_ended", "allocations", a, a["end_date"])
    events.sort(key=lambda e: (e["date"], e["type"], e["source_id"]))
    return events


def child_records(store: Store, child_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every record of one child as the export gives it (each type in id order)."""
    assessments = [a for a in store.assessments.values() if a["child_id"] == child_id]
    own = {a["id"] for a in assessments}
    rows = {
        "children": [child_out(store.children[child_id])],
        "aliases": [dated(a) for a in store.aliases.values() if a["child_id"] == child_id],
        "allocations": [dated(a) for a in store.allocations.values() if a["child_id"] == child_id],
        "referrals": [dated(r) for r in store.referrals.values() if r["child_id"] == child_id],
        "case_notes": [dated(n) for n in store.notes.values() if n["child_id"] == child_id],
        "assessments": [assessment_out(store, a, export=True) for a in assessments],
        "visits": [visit_out(v) for v in store.visits.values() if v["assessment_id"] in own],
    }
    for items in rows.values():
        items.sort(key=lambda r: r["id"])
    return rows


def chronology_of(rows: dict[str, list[dict[str, Any]]], child_id: str) -> list[dict[str, Any]]:
    return derive_events(child_id, rows["referrals"], rows["assessments"], rows["visits"], rows["allocations"])


# ---------------------------------------------------------------- export and transfer package


def export_rows(store: Store) -> dict[str, list[dict[str, Any]]]:
    """The export's records per type, each type in id order (API fields minus server-only ones)."""
    rows: dict[str, list[dict[str, Any]]] = {
        "children": [child_out(c) for c in store.children.values()],
        "aliases": [dated(a) for a in store.aliases.values()],
        "practitioners": [p.public() for p in store.practitioners.values()],
        "allocations": [dated(a) for a in store.allocations.values()],
        "referrals": [dated(r) for r in store.referrals.values()],
        "case_notes": [dated(n) for n in store.notes.values()],
        "assessments": [assessment_out(store, a, export=True) for a in store.assessments.values()],
        "visits": [visit_out(v) for v in store.visits.values()],
        "audit": [dated(e) for e in store.audit],
    }
    for items in rows.values():
        items.sort(key=lambda r: r["id"])
    rows["chronology"] = [
        event
        for child_id in sorted(store.children)
        for event in chronology_of(child_records(store, child_id), child_id)
    ]
    return rows


def build_zip(rows: dict[str, list[dict[str, Any]]], types: tuple[str, ...], head: dict[str, Any]) -> bytes:
    """A zip of one JSON Lines file per record type of ``types`` and a manifest (``head`` + files)."""
    buffer = io.BytesIO()
    files = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record_type in reversed(types):
            data = EXPORT_EOL.join(json.dumps(r, separators=(",", ":")).encode() for r in rows[record_type])
            data += EXPORT_EOL if data and EXPORT_FINAL_EOL else b""
            path = f"{record_type}.jsonl"
            archive.writestr(path, data)
            files.append(
                {
                    "path": path,
                    "record_type": record_type,
                    "count": len(rows[record_type]),
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        manifest = {
            **head,
            "spec_version": SPEC_VERSIONS[-1],
            "generated_at": now_stamp(),
            "producer": {"supplier": SUPPLIER, "product": PRODUCT, "version": VERSION},
            "files": files,
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
    return buffer.getvalue()


def build_export(store: Store) -> bytes:
    """The bulk export: the eight record files, audit.jsonl and chronology.jsonl, and a manifest."""
    return build_zip(export_rows(store), (*EXPORT_TYPES, "audit", "chronology"), {})


def build_package(store: Store, child_id: str) -> bytes:
    """One child's transfer package: its records, the practitioners they name, its chronology."""
    rows: dict[str, list[dict[str, Any]]] = dict(child_records(store, child_id))
    named = {a["practitioner_id"] for a in rows["allocations"]}
    named |= {n["author_id"] for n in rows["case_notes"]} | {v["recorded_by"] for v in rows["visits"]}
    rows["practitioners"] = sorted((store.practitioners[p].public() for p in named), key=lambda r: r["id"])
    rows["chronology"] = chronology_of(rows, child_id)
    child = rows["children"][0]
    source = {"council": COUNCIL, "child_id": child["id"], "local_id": child["local_id"]}
    return build_zip(rows, (*EXPORT_TYPES, "chronology"), {"kind": "transfer", "source": source})


# ---------------------------------------------------------------- transfer package validation (phase 1C)


class BadPackage(Exception):
    """A transfer package breaking ICS-1C-XFER-001: where (file, line, pointer) and why."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where, self.message = where, message

    def error(self) -> ApiError:
        return ApiError(
            422,
            "INVALID_TRANSFER_PACKAGE",
            f"invalid transfer package: {self.where}: {self.message}",
            [{"field": self.where, "message": self.message}],
        )


@dataclass(frozen=True)
class P:
    """One field of an export record schema (schemas/export/*.schema.json)."""

    kind: str  # str, date, datetime, bool, enum
    nullable: bool = False
    lo: int = 0
    hi: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    optional: bool = False


PID = P("str", lo=1, hi=200)
PNAME = P("str", lo=1, hi=100)
PACKAGE_SCHEMAS: dict[str, dict[str, P]] = {
    "children": {
        "id": PID,
        "local_id": P("str", nullable=True, lo=1, hi=100),
        "given_name": PNAME,
        "family_name": PNAME,
        "date_of_birth": P("date", nullable=True),
        "expected_date_of_birth": P("date", nullable=True),
        "gender": P("enum", choices=GENDERS),
        "date_of_death": P("date", nullable=True),
        "upn": P("str", nullable=True, pattern=r"[A-Z][0-9]{11}[0-9A-Z]"),
        "nhs_number": P("str", nullable=True, pattern=r"[0-9]{10}"),
        "postcode": P("str", nullable=True, pattern=r"[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}"),
        "shielded": P("bool"),
        "created_at": P("datetime"),
        "updated_at": P("datetime"),
    },
    "aliases": {
        "id": PID,
        "child_id": PID,
        "given_name": PNAME,
        "family_name": PNAME,
        "type": P("enum", choices=ALIAS_TYPES),
    },
    "practitioners": {"id": PID, "name": P("str", lo=1, hi=200), "role": P("enum", choices=ROLES)},
    "allocations": {
        "id": PID,
        "child_id": PID,
        "practitioner_id": PID,
        "start_date": P("date"),
        "end_date": P("date", nullable=True),
    },
    "referrals": {
        "id": PID,
        "child_id": PID,
        "received_on": P("date"),
        "source": P("str", lo=1),
        "reason": P("str", lo=1),
    },
    "case_notes": {
        "id": PID,
        "child_id": PID,
        "author_id": PID,
        "text": P("str", nullable=True),
        "restricted": P("bool"),
        "created_at": P("datetime"),
    },
    "assessments": {
        "id": PID,
        "child_id": PID,
        "referral_id": P("str", nullable=True, lo=1, hi=200),
        "type": P("enum", choices=("initial", "core")),
        "start_date": P("date"),
        "due_date": P("date"),
        "status": P("enum", choices=("open", "completed")),
        "completed_on": P("date", nullable=True),
        "authorised_by": P("str", nullable=True, lo=1),
    },
    "visits": {
        "id": PID,
        "assessment_id": PID,
        "visit_date": P("date"),
        "child_seen": P("bool"),
        "seen_alone": P("bool", nullable=True),
        "not_seen_alone_reason": P("str", nullable=True, lo=1, hi=500, optional=True),
        "recorded_by": PID,
    },
    "chronology": {
        "child_id": PID,
        "date": P("date"),
        "type": P("enum", choices=tuple(e[0] for e in EVENT_SOURCES)),
        "source_type": P("enum", choices=("referrals", "assessments", "visits", "allocations")),
        "source_id": PID,
    },
}
PACKAGE_TYPES = (*EXPORT_TYPES, "chronology")
_DATETIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str) or not _DATETIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return value[17:19] != "60"


def _check_value(spec: P, value: Any) -> str | None:
    """Why ``value`` breaks ``spec`` (None when it is valid)."""
    if value is None:
        return None if spec.nullable else "must not be null"
    if spec.kind == "bool":
        return None if type(value) is bool else "must be a boolean"
    if spec.kind == "date":
        return None if _is_date(value) else "must be a date"
    if spec.kind == "datetime":
        return None if _is_datetime(value) else "must be a date-time"
    if spec.kind == "enum":
        return None if isinstance(value, str) and value in spec.choices else "not an allowed value"
    if not isinstance(value, str):
        return "must be a string"
    if len(value) < spec.lo or (spec.hi is not None and len(value) > spec.hi):
        return "wrong length"
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        return "does not match the pattern"
    return None


def _check_record(record_type: str, record: Any, where: str) -> None:
    if not isinstance(record, dict):
        raise BadPackage(where, "not a JSON object")
    schema = PACKAGE_SCHEMAS[record_type]
    for name in record:
        if name not in schema:
            raise BadPackage(f"{where}/{name}", "field not allowed")
    for name, spec in schema.items():
        if name not in record:
            if spec.optional:
                continue
            raise BadPackage(f"{where}/{name}", "required")
        problem = _check_value(spec, record[name])
        if problem:
            raise BadPackage(f"{where}/{name}", problem)
    if record_type == "children" and (record["date_of_birth"] is None) == (record["expected_date_of_birth"] is None):
        raise BadPackage(f"{where}/date_of_birth", "exactly one of date_of_birth and expected_date_of_birth")
    if record_type == "visits" and record["seen_alone"] is True and record["child_seen"] is not True:
        raise BadPackage(f"{where}/seen_alone", "seen alone but not seen")
    if record_type == "assessments" and (record["status"] == "completed") != (record["completed_on"] is not None):
        raise BadPackage(f"{where}/completed_on", "set exactly when the assessment is completed")


def _json_lines(data: bytes, path: str) -> list[Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPackage(path, "not UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for number, line in enumerate(lines, 1):
        line = line[:-1] if line.endswith("\r") else line
        try:
            out.append(json.loads(line, parse_constant=_refuse_constant))
        except ValueError:
            raise BadPackage(f"{path}:{number}", "not a JSON value") from None
    return out


def _check_manifest(manifest: Any) -> None:
    top = {"kind", "spec_version", "generated_at", "producer", "source", "files"}
    if not isinstance(manifest, dict) or set(manifest) != top:
        raise BadPackage("manifest.json", f"must hold exactly {sorted(top)}")
    if manifest["kind"] != "transfer":
        raise BadPackage("manifest.json/kind", "must be transfer")
    if not isinstance(manifest["spec_version"], str) or not manifest["spec_version"]:
        raise BadPackage("manifest.json/spec_version", "must be a non-empty string")
    if not _is_datetime(manifest["generated_at"]):
        raise BadPackage("manifest.json/generated_at", "must be a date-time")
    producer = manifest["producer"]
    if (
        not isinstance(producer, dict)
        or set(producer) != {"supplier", "product", "version"}
        or not all(isinstance(v, str) for v in producer.values())
    ):
        raise BadPackage("manifest.json/producer", "must be {supplier, product, version} strings")
    source = manifest["source"]
    if not isinstance(source, dict) or set(source) != {"council", "child_id", "local_id"}:
        raise BadPackage("manifest.json/source", "must be {council, child_id, local_id}")
    for name, spec in (("council", P("str", lo=1)), ("child_id", PID), ("local_id", P("str", nullable=True))):
        if problem := _check_value(spec, source[name]):
            raise BadPackage(f"manifest.json/source/{name}", problem)
    if not isinstance(manifest["files"], list):
        raise BadPackage("manifest.json/files", "must be an array")
    for index, entry in enumerate(manifest["files"]):
        where = f"manifest.json/files/{index}"
        if not isinstance(entry, dict) or set(entry) != {"path", "record_type", "count", "bytes", "sha256"}:
            raise BadPackage(where, "must be {path, record_type, count, bytes, sha256}")
        if not isinstance(entry["path"], str) or not entry["path"]:
            raise BadPackage(f"{where}/path", "must be a non-empty string")
        if entry["record_type"] not in PACKAGE_TYPES:
            raise BadPackage(f"{where}/record_type", "not a record type of a transfer package")
        for name in ("count", "bytes"):
            if type(entry[name]) is not int or entry[name] < 0:
                raise BadPackage(f"{where}/{name}", "must be an integer >= 0")
        if not isinstance(entry["sha256"], str) or not _SHA256.match(entry["sha256"]):
            raise BadPackage(f"{where}/sha256", "must be 64 lower-case hex digits")


def read_package(raw: bytes) -> dict[str, Any]:
    """The manifest and records of a valid transfer package, or 422 INVALID_TRANSFER_PACKAGE."""
    try:
        return _read_package(raw)
    except BadPackage as bad:
        raise bad.error() from None


def _read_package(raw: bytes) -> dict[str, Any]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        members = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        contents = {name: archive.read(name) for name in members}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError):
        raise BadPackage("package", "not a readable zip archive") from None
    if "manifest.json" not in contents:
        raise BadPackage("manifest.json", "missing")
    try:
        manifest = json.loads(contents.pop("manifest.json").decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise BadPackage("manifest.json", "not JSON") from None
    _check_manifest(manifest)
    rows: dict[str, list[dict[str, Any]]] = {}
    listed = set()
    for entry in manifest["files"]:
        path, record_type = entry["path"], entry["record_type"]
        if path in listed or record_type in rows:
            raise BadPackage(f"manifest.json/{path}", "listed twice (path or record type)")
        listed.add(path)
        if path not in contents:
            raise BadPackage(path, "listed in the manifest but absent")
        data = contents[path]
        if len(data) != entry["bytes"]:
            raise BadPackage(path, f"{len(data)} bytes, the manifest says {entry['bytes']}")
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise BadPackage(path, "sha256 differs from the manifest")
        records = _json_lines(data, path)
        if len(records) != entry["count"]:
            raise BadPackage(path, f"{len(records)} lines, the manifest says {entry['count']}")
        for number, record in enumerate(records, 1):
            _check_record(record_type, record, f"{path}:{number}")
        rows[record_type] = records
    unlisted = sorted(set(contents) - listed)
    if unlisted:
        raise BadPackage(unlisted[0], "present but not listed in the manifest")
    missing = [t for t in EXPORT_TYPES if t not in rows]
    if missing:
        raise BadPackage(f"{missing[0]}.jsonl", "record file missing")
    _check_package_rules(manifest, rows)
    return {"manifest": manifest, "rows": rows}


def _check_package_rules(manifest: dict[str, Any], rows: dict[str, list[dict[str, Any]]]) -> None:
    """One child, everything its own, references resolved, dates and check digits as the export rules say."""
    index: dict[str, dict[str, dict[str, Any]]] = {}
    for record_type in EXPORT_TYPES:
        index[record_type] = {}
        for number, record in enumerate(rows[record_type], 1):
            if record["id"] in index[record_type]:
                raise BadPackage(f"{record_type}.jsonl:{number}/id", "duplicate record ID")
            index[record_type][record["id"]] = record
    if len(rows["children"]) != 1:
        raise BadPackage("children.jsonl", f"must hold exactly one child, holds {len(rows['children'])}")
    child = rows["children"][0]
    source = manifest["source"]
    if source["child_id"] != child["id"] or source["local_id"] != child["local_id"]:
        raise BadPackage("manifest.json/source", "does not name the package's child and its local ID")
    if child["upn"] is not None and not stdnum_upn.is_valid(child["upn"]):
        raise BadPackage("children.jsonl:1/upn", "wrong check letter")
    if child["nhs_number"] is not None and not stdnum_nhs.is_valid(child["nhs_number"]):
        raise BadPackage("children.jsonl:1/nhs_number", "wrong check digit")

    def refer(record_type: str, number: int, name: str, target_type: str, value: Any) -> None:
        if value not in index[target_type]:
            raise BadPackage(f"{record_type}.jsonl:{number}/{name}", f"names no record of {target_type} in the package")

    for record_type in ("aliases", "allocations", "referrals", "case_notes", "assessments"):
        for number, record in enumerate(rows[record_type], 1):
            refer(record_type, number, "child_id", "children", record["child_id"])
    for number, record in enumerate(rows["allocations"], 1):
        refer("allocations", number, "practitioner_id", "practitioners", record["practitioner_id"])
        if record["end_date"] is not None and record["end_date"] < record["start_date"]:
            raise BadPackage(f"allocations.jsonl:{number}/end_date", "before the start date")
    for number, record in enumerate(rows["case_notes"], 1):
        refer("case_notes", number, "author_id", "practitioners", record["author_id"])
    for number, record in enumerate(rows["visits"], 1):
        refer("visits", number, "assessment_id", "assessments", record["assessment_id"])
        refer("visits", number, "recorded_by", "practitioners", record["recorded_by"])
    named = {a["practitioner_id"] for a in rows["allocations"]} | {n["author_id"] for n in rows["case_notes"]}
    named |= {v["recorded_by"] for v in rows["visits"]}
    for number, record in enumerate(rows["practitioners"], 1):
        if record["id"] not in named:
            raise BadPackage(f"practitioners.jsonl:{number}", "a practitioner no record of the package names")
    death = child["date_of_death"]
    for number, record in enumerate(rows["referrals"], 1):
        if death is not None and record["received_on"] > death:
            raise BadPackage(f"referrals.jsonl:{number}/received_on", "after the child's date of death")
    for number, record in enumerate(rows["assessments"], 1):
        where = f"assessments.jsonl:{number}"
        if record["referral_id"] is not None:
            refer("assessments", number, "referral_id", "referrals", record["referral_id"])
            if index["referrals"][record["referral_id"]]["received_on"] > record["start_date"]:
                raise BadPackage(f"{where}/start_date", "before its referral was received")
        if death is not None and record["start_date"] > death:
            raise BadPackage(f"{where}/start_date", "after the child's date of death")
        if record["due_date"] != due_date(record["type"], date.fromisoformat(record["start_date"])).isoformat():
            raise BadPackage(f"{where}/due_date", "not the working-day due date of its type and start")
        if record["status"] == "completed":
            if record["completed_on"] < record["start_date"]:
                raise BadPackage(f"{where}/completed_on", "before the start")
            seen = [
                v
                for v in rows["visits"]
                if v["assessment_id"] == record["id"]
                and v["child_seen"]
                and record["start_date"] <= v["visit_date"] <= record["completed_on"]
            ]
            if not seen:
                raise BadPackage(f"{where}/completed_on", "completed without a seen visit between start and completion")
    for number, record in enumerate(rows["visits"], 1):
        if not record["child_seen"]:
            continue
        start = index["assessments"][record["assessment_id"]]["start_date"]
        if record["visit_date"] < start:
            raise BadPackage(f"visits.jsonl:{number}/visit_date", "a seen visit before its assessment's start")
        if death is not None and record["visit_date"] > death:
            raise BadPackage(f"visits.jsonl:{number}/visit_date", "a seen visit after the child's date of death")
    if "chronology" in rows:
        expected = derive_events(
            child["id"], rows["referrals"], rows["assessments"], rows["visits"], rows["allocations"]
        )
        for number, (got, want) in enumerate(zip(rows["chronology"], expected, strict=False), 1):
            if got != want:
                raise BadPackage(f"chronology.jsonl:{number}", f"expected {want}")
        if len(rows["chronology"]) != len(expected):
            raise BadPackage("chronology.jsonl", f"{len(rows['chronology'])} events, the records give {len(expected)}")


def h_export(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, MANAGERS)
    return 200, build_export(STORE)


def h_chronology(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    child = STORE.child_for(person, args[0])
    return 200, {"items": chronology_of(child_records(STORE, child["id"]), child["id"])}


def h_transfer_package(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, MANAGERS)
    child = STORE.child_for(person, args[0], allocating=True)
    package = build_package(STORE, child["id"])
    STORE.record_audit(person, child["id"], "transfer_out")
    return 200, package


def h_import(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, MANAGERS)
    package = read_package(body if isinstance(body, bytes) else b"")
    return 201, transfer_out(STORE.import_package(person, package))


def h_get_transfer(person: Practitioner, query: dict[str, str], body: Any, args: list[str]) -> tuple[int, Any]:
    need(person, MANAGERS)
    record = STORE.transfers.get(args[0])
    if record is None:
        raise not_found("transfer")
    return 200, transfer_out(record)


def transfer_out(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(record))


ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("POST", re.compile(r"/practitioners"), h_create_practitioner),
    ("GET", re.compile(r"/practitioners/me"), h_me),
    ("GET", re.compile(r"/practitioners/me/notifications"), h_notifications),
    ("POST", re.compile(r"/notifications/([^/]+)/acknowledge"), h_acknowledge),
    ("POST", re.compile(r"/children"), h_create_child),
    ("GET", re.compile(r"/children"), h_search),
    ("GET", re.compile(r"/children/([^/]+)"), h_get_child),
    ("PATCH", re.compile(r"/children/([^/]+)"), h_patch_child),
    ("POST", re.compile(r"/children/([^/]+)/aliases"), h_add_alias),
    ("GET", re.compile(r"/children/([^/]+)/aliases"), h_list_aliases),
    ("POST", re.compile(r"/children/([^/]+)/allocations"), h_allocate),
    ("GET", re.compile(r"/children/([^/]+)/allocations"), h_list_allocations),
    ("POST", re.compile(r"/allocations/([^/]+)/end"), h_end_allocation),
    ("POST", re.compile(r"/children/([^/]+)/case-notes"), h_add_note),
    ("GET", re.compile(r"/children/([^/]+)/case-notes"), h_list_notes),
    ("GET", re.compile(r"/children/([^/]+)/referrals"), h_list_referrals),
    ("POST", re.compile(r"/referrals"), h_create_referral),
    ("GET", re.compile(r"/referrals/([^/]+)"), h_get_referral),
    ("POST", re.compile(r"/children/([^/]+)/assessments"), h_start_assessment),
    ("GET", re.compile(r"/children/([^/]+)/assessments"), h_list_assessments),
    ("GET", re.compile(r"/assessments/([^/]+)"), h_get_assessment),
    ("POST", re.compile(r"/assessments/([^/]+)/visits"), h_add_visit),
    ("POST", re.compile(r"/assessments/([^/]+)/complete"), h_complete),
    ("GET", re.compile(r"/audit"), h_audit),
    ("GET", re.compile(r"/export"), h_export),
    ("GET", re.compile(r"/children/([^/]+)/chronology"), h_chronology),
    ("GET", re.compile(r"/children/([^/]+)/transfer-package"), h_transfer_package),
    ("POST", re.compile(r"/transfers"), h_import),
    ("GET", re.compile(r"/transfers/([^/]+)"), h_get_transfer),
]
OPTIONAL_BODY = frozenset({h_end_allocation, h_complete})


def about() -> dict[str, Any]:
    return {
        "supplier": SUPPLIER,
        "product": PRODUCT,
        "version": VERSION,
        "spec_versions": SPEC_VERSIONS,
        "council": COUNCIL,
        "capabilities": CAPABILITIES,
    }


# ---------------------------------------------------------------- HTTP

#: ``ICS_IMPL2_EXTRA_FIELDS=1``: API records and pages carry fields of the supplier's own, as the
#: response schemas allow (never in the export, whose schemas do not).
EXTRA_FIELDS = os.environ.get("ICS_IMPL2_EXTRA_FIELDS") == "1"


def with_extra_fields(value: Any) -> Any:
    """``value`` with a ``supplier_ref`` on every record and ``links`` on every page or list."""
    if isinstance(value, list):
        return [with_extra_fields(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: with_extra_fields(v) for k, v in value.items()}
    if "id" in value:
        out["supplier_ref"] = f"impl2:{value['id']}"
    if "items" in value:
        out["links"] = {"self": "#"}
    return out


class RequestHandler(BaseHTTPRequestHandler):
    """Routes every method through :meth:`dispatch`; answers JSON (or the export zip)."""

    protocol_version = "HTTP/1.1"
    server_version = "ics-impl2"

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("ICS_IMPL2_LOG"):
            super().log_message(format, *args)

    def send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(payload, bytes):
            data, kind = payload, "application/zip"
        else:
            if EXTRA_FIELDS and status < 400 and self.path.split("?")[0] != "/about":
                payload = with_extra_fields(payload)
            data, kind = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self) -> bytes:
        limit = MAX_PACKAGE if urlsplit(self.path).path.rstrip("/") == "/transfers" else MAX_BODY
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if sum(map(len, chunks)) > limit:
                    raise too_large(limit)
            return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "MALFORMED_REQUEST", "bad Content-Length") from None
        if length < 0:
            raise ApiError(400, "MALFORMED_REQUEST", "bad Content-Length")
        if length > limit:
            self.close_connection = True
            raise too_large(limit)
        return self.rfile.read(length) if length else b""

    def dispatch(self) -> None:
        try:
            raw = self.read_body()
        except ApiError as error:
            self.close_connection = True
            self.send(error.status, error.body())
            return
        try:
            status, payload = self.route(raw)
        except ApiError as error:
            status, payload = error.status, error.body()
        except Exception as error:
            status, payload = 500, {"code": "VALIDATION_ERROR", "message": f"internal error: {error!r}"}
            print(f"impl2: internal error on {self.command} {self.path}: {error!r}", file=sys.stderr, flush=True)
        headers = {"Allow": "GET, POST, PATCH"} if status == 405 else None
        self.send(status, payload, headers)

    def route(self, raw: bytes) -> tuple[int, Any]:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        try:
            query: dict[str, str] = {}
            for key, value in parse_qsl(parts.query, keep_blank_values=True, errors="strict"):
                query.setdefault(key, value)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "MALFORMED_REQUEST", "query string is not valid UTF-8") from None
        if path == "/about":
            if self.command not in ("GET", "HEAD"):
                raise ApiError(405, "VALIDATION_ERROR", "method not allowed")
            return 200, about()
        matched = [(method, handler, m) for method, pattern, handler in ROUTES if (m := pattern.fullmatch(path))]
        if not matched:
            raise not_found("resource")
        person = self.authenticate()
        chosen = [(handler, m) for method, handler, m in matched if method == self.command]
        if not chosen:
            raise ApiError(405, "VALIDATION_ERROR", "method not allowed")
        handler, match = chosen[0]
        args = [unquote(g) for g in match.groups()]
        body: Any = None
        if handler is h_import:
            body = raw
        elif self.command in ("POST", "PATCH") and raw.strip():
            try:
                body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
            except (UnicodeDecodeError, ValueError):
                raise ApiError(400, "MALFORMED_REQUEST", "the body is not JSON") from None
        elif self.command in ("POST", "PATCH") and handler not in OPTIONAL_BODY and handler is not h_acknowledge:
            raise invalid("body", "a JSON body is required")
        with STORE.lock:
            return handler(person, query, body, args)

    def authenticate(self) -> Practitioner:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        with STORE.lock:
            pid = STORE.tokens.get(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
            if pid is None:
                raise ApiError(401, "UNAUTHENTICATED", "a valid bearer token is required")
            return STORE.practitioners[pid]

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = do_TRACE = dispatch

    def __getattr__(self, name: str) -> Any:
        """Any other method (QUERY, PROPFIND, ...) is dispatched too: answered 405, never 501."""
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)


def too_large(limit: int) -> ApiError:
    """400 for an API body over 1 MiB (as before), 413 for a transfer package over its limit."""
    if limit == MAX_PACKAGE:
        return ApiError(413, "VALIDATION_ERROR", f"the package is larger than {limit} bytes")
    return ApiError(400, "MALFORMED_REQUEST", "body too large")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def serve(host: str, port: int, admin_token: str) -> Server:
    """Provision the admin practitioner and return a bound (not yet serving) server."""
    with STORE.lock:
        if admin_token not in STORE.tokens:
            STORE.add_practitioner("Administrator", "admin", admin_token)
    return Server((host, port), RequestHandler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    parser.add_argument(
        "--council",
        default=os.environ.get("ICS_IMPL2_COUNCIL"),
        help="the council this system serves (default $ICS_IMPL2_COUNCIL, else named after the port)",
    )
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("ICS_ADMIN_TOKEN"),
        help="bearer token of the provisioned admin (default $ICS_ADMIN_TOKEN)",
    )
    options = parser.parse_args(argv)
    if not options.admin_token:
        parser.error("an admin token is required (--admin-token or ICS_ADMIN_TOKEN)")
    server = serve(options.host, options.port, options.admin_token)
    global COUNCIL
    COUNCIL = options.council or f"Impl2 Council {server.server_port}"
    print(f"listening on http://{options.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
