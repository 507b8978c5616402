"""Example adapter: the canonical ICS API onto a legacy-shaped native API ("CaseBase 2").

The native API it speaks (``tests/adapters/native_server.py`` is a server speaking only it):

* **resources**: ``/clients`` for children, ``/clients/{id}/other-names`` for aliases,
  ``/clients/{id}/keyworkers`` and ``/keyworkers/{id}/close`` for allocations,
  ``/clients/{id}/notes`` for case notes, ``/workers`` for practitioners (``/workers/self``,
  ``/workers/self/alerts``, ``/alerts/{id}/ack``), ``/assessments/{id}/home-visits`` and
  ``/assessments/{id}/sign-off``, ``/audit-trail``, ``/extract``, ``/system-info``;
* **field names**: ``forename``, ``surname``, ``dob``, ``client_ref``, ``worker_id`` ... (:data:`FIELDS`);
* **codes**: roles ``sysadmin``, ``team_manager``, ``social_worker``, ``viewer`` (:data:`ROLES`);
* **dates**: ``dd/mm/yyyy`` (date-times stay ISO 8601);
* **paging**: ``offset`` / ``limit`` (default limit 25), answered as
  ``{"results": [...], "offset": o, "limit": l, "count": n}``; plain lists as ``{"results": [...]}``;
* **auth**: an ``X-Api-Key`` header instead of ``Authorization: Bearer``;
* **errors**: ``{"error": {"number": N, "text": "...", "fields": [{"name": f, "text": t}]}}``
  with HTTP 400 for every refused input (:data:`ERRORS` maps numbers to canonical codes).

The mapping is mechanical in both directions: whatever the native system answers is
translated, not judged, so a native defect reaches the checks as the canonical defect.
Limits: a date or role the harness sends that is already in the native form (``01/02/2008``,
``viewer``) passes unchanged, so the native system would accept an input the canonical API
refuses; the harness never sends such values on purpose.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson

from conformance.adapters.base import Adapter, json_response

#: canonical field name -> native field name (every other name is the same on both sides)
FIELDS: dict[str, str] = {
    "given_name": "forename",
    "family_name": "surname",
    "date_of_birth": "dob",
    "expected_date_of_birth": "expected_dob",
    "date_of_death": "dod",
    "local_id": "client_ref",
    "child_id": "client_id",
    "nhs_number": "nhs_no",
    "postcode": "post_code",
    "shielded": "restricted_access",
    "practitioner_id": "worker_id",
    "start_date": "date_started",
    "end_date": "date_ended",
    "received_on": "date_received",
    "completed_on": "date_completed",
    "visit_date": "date_of_visit",
    "due_date": "date_due",
    "child_seen": "seen",
    "case_note_id": "note_id",
    "created_at": "created",
    "updated_at": "modified",
    "acknowledged_at": "acked",
    "include_deceased": "include_dead",
    "token": "api_key",
    "supplier": "vendor",
    "product": "product_name",
    "version": "release",
    "spec_versions": "ics_versions",
    "capabilities": "features",
}
NATIVE_FIELDS = {native: canonical for canonical, native in FIELDS.items()}
#: canonical fields holding a calendar date (``YYYY-MM-DD`` canonically, ``dd/mm/yyyy`` natively)
DATE_FIELDS = frozenset(
    {
        "date_of_birth",
        "expected_date_of_birth",
        "date_of_death",
        "start_date",
        "end_date",
        "received_on",
        "completed_on",
        "visit_date",
        "due_date",
    }
)
NATIVE_DATE_FIELDS = frozenset(FIELDS.get(name, name) for name in DATE_FIELDS)
ROLES = {"admin": "sysadmin", "manager": "team_manager", "practitioner": "social_worker", "read_only": "viewer"}
NATIVE_ROLES = {native: canonical for canonical, native in ROLES.items()}
#: native error number -> (canonical status, canonical code)
ERRORS: dict[int, tuple[int, str]] = {
    1001: (401, "UNAUTHENTICATED"),
    1003: (403, "FORBIDDEN"),
    1004: (404, "NOT_FOUND"),
    2000: (422, "VALIDATION_ERROR"),
    2001: (400, "MALFORMED_REQUEST"),
    2002: (405, "MALFORMED_REQUEST"),
    2101: (422, "INVALID_UPN"),
    2102: (422, "INVALID_NHS_NUMBER"),
    2103: (422, "INVALID_POSTCODE"),
    2104: (422, "INVALID_NAME"),
    2201: (422, "DATE_IN_FUTURE"),
    2202: (422, "DATE_ORDER"),
    2301: (422, "UNKNOWN_PRACTITIONER"),
    2401: (422, "CHILD_NOT_SEEN"),
    3001: (409, "DUPLICATE_LOCAL_ID"),
    3002: (409, "ASSESSMENT_ALREADY_OPEN"),
    3003: (409, "ASSESSMENT_NOT_OPEN"),
    5000: (500, "INTERNAL_ERROR"),
    5001: (501, "NOT_IMPLEMENTED"),
}
#: canonical path template -> native path template (``{}`` is one path segment, kept as sent)
PATHS: tuple[tuple[str, str], ...] = (
    ("/about", "/system-info"),
    ("/practitioners", "/workers"),
    ("/practitioners/me", "/workers/self"),
    ("/practitioners/me/notifications", "/workers/self/alerts"),
    ("/notifications/{}/acknowledge", "/alerts/{}/ack"),
    ("/children", "/clients"),
    ("/children/{}", "/clients/{}"),
    ("/children/{}/aliases", "/clients/{}/other-names"),
    ("/children/{}/allocations", "/clients/{}/keyworkers"),
    ("/allocations/{}/end", "/keyworkers/{}/close"),
    ("/children/{}/case-notes", "/clients/{}/notes"),
    ("/children/{}/referrals", "/clients/{}/referrals"),
    ("/referrals", "/referrals"),
    ("/referrals/{}", "/referrals/{}"),
    ("/children/{}/assessments", "/clients/{}/assessments"),
    ("/assessments/{}", "/assessments/{}"),
    ("/assessments/{}/visits", "/assessments/{}/home-visits"),
    ("/assessments/{}/complete", "/assessments/{}/sign-off"),
    ("/audit", "/audit-trail"),
    ("/export", "/extract"),
)
#: canonical operations answered with a page (``page``/``page_size`` -> ``offset``/``limit``)
PAGED = frozenset({"/children", "/practitioners/me/notifications", "/audit"})
CANONICAL_PAGE_SIZE = 20
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_NATIVE_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_INTEGER = re.compile(r"^-?\d{1,18}$")


def _split(path: str) -> list[str]:
    return path.strip("/").split("/") if path.strip("/") else []


def native_path(raw_path: str) -> tuple[str, str | None]:
    """The native path of a canonical one, and the canonical template it matched (None: passed unchanged)."""
    segments = _split(raw_path)
    for canonical, native in PATHS:
        template = _split(canonical)
        if len(template) != len(segments):
            continue
        values = [s for t, s in zip(template, segments) if t == "{}"]
        if all(t == "{}" or t == s for t, s in zip(template, segments)) and all(values):
            parts = iter(values)
            return "/" + "/".join(next(parts) if t == "{}" else t for t in _split(native)), canonical
    return raw_path, None


def _date_to_native(value: Any) -> Any:
    match = _ISO_DATE.match(value) if isinstance(value, str) else None
    return f"{match.group(3)}/{match.group(2)}/{match.group(1)}" if match else value


def _date_to_canonical(value: Any) -> Any:
    match = _NATIVE_DATE.match(value) if isinstance(value, str) else None
    return f"{match.group(3)}-{match.group(2)}-{match.group(1)}" if match else value


def body_to_native(value: Any) -> Any:
    """A canonical JSON value with native field names, dates and roles."""
    if isinstance(value, list):
        return [body_to_native(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in DATE_FIELDS:
            item = _date_to_native(item)
        elif key == "role" and isinstance(item, str):
            item = ROLES.get(item, item)
        else:
            item = body_to_native(item)
        name = str(key)
        out[FIELDS.get(name, name)] = item
    return out


def body_to_canonical(value: Any) -> Any:
    """A native JSON value with canonical field names, dates and roles."""
    if isinstance(value, list):
        return [body_to_canonical(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in NATIVE_DATE_FIELDS:
            item = _date_to_canonical(item)
        elif key == "role" and isinstance(item, str):
            item = NATIVE_ROLES.get(item, item)
        else:
            item = body_to_canonical(item)
        name = str(key)
        out[NATIVE_FIELDS.get(name, name)] = item
    return out


def query_to_native(params: httpx.QueryParams, paged: bool) -> list[tuple[str, str | int | float | bool | None]]:
    """Canonical query parameters as native ones (``page``/``page_size`` as ``offset``/``limit``)."""
    out: list[tuple[str, str | int | float | bool | None]] = []
    page: str | None = None
    size: str | None = None
    for key, value in params.multi_items():
        if paged and key == "page":
            page = value
        elif paged and key == "page_size":
            size = value
        elif key in DATE_FIELDS:
            out.append((FIELDS.get(key, key), str(_date_to_native(value))))
        else:
            out.append((FIELDS.get(key, key), value))
    if not paged:
        return out
    page = "1" if page is None else page
    size = str(CANONICAL_PAGE_SIZE) if size is None else size
    if _INTEGER.match(page) and _INTEGER.match(size):
        out += [("offset", str((int(page) - 1) * int(size))), ("limit", size)]
    else:  # not numbers: passed on for the native system to refuse
        out += [("offset", page), ("limit", size)]
    return out


def page_to_canonical(body: dict[str, Any]) -> dict[str, Any]:
    """A native page (``results``, ``offset``, ``limit``, ``count``) as a canonical one."""
    out = {k: v for k, v in body.items() if k not in ("results", "offset", "limit", "count")}
    if "results" in body:
        out["items"] = body["results"]
    offset, limit = body.get("offset"), body.get("limit")
    if isinstance(offset, int) and isinstance(limit, int) and limit > 0:
        out["page"] = offset // limit + 1
        out["page_size"] = limit
    if "count" in body:
        out["total"] = body["count"]
    return out


def error_to_canonical(status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A native error (``{"error": {"number", "text", "fields"}}``) as a canonical status and error body."""
    error = body["error"]
    number = error.get("number")
    mapped = ERRORS.get(number) if isinstance(number, int) else None
    status, code = mapped if mapped else (status, f"LEGACY_{number}")
    out: dict[str, Any] = {"code": code, "message": str(error.get("text", ""))}
    fields = error.get("fields")
    if isinstance(fields, list) and fields:
        out["details"] = [
            {"field": _field_to_canonical(str(f.get("name", ""))), "message": str(f.get("text", ""))}
            for f in fields
            if isinstance(f, dict)
        ]
    return status, out


def _field_to_canonical(name: str) -> str:
    head, dot, last = name.rpartition(".")
    return f"{head}{dot}{NATIVE_FIELDS.get(last, last)}"


class LegacyAdapter(Adapter):
    """The canonical ICS API onto CaseBase 2's native API (see the module docstring)."""

    version = "1.0.0"
    description = "CaseBase 2 legacy API: /clients, dd/mm/yyyy dates, offset/limit paging, X-Api-Key, numbered errors"
    phases = ("1A", "1B")

    def to_native(self, request: httpx.Request) -> httpx.Request:
        raw_path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        path, template = native_path(raw_path)
        paged = request.method == "GET" and template in PAGED
        params = query_to_native(request.url.params, paged)
        headers = [
            (k, v) for k, v in request.headers.multi_items() if k.lower() not in ("authorization", "content-length")
        ]
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            headers.append(("X-Api-Key", credential.strip()))
        content = request.content
        if content and "json" in request.headers.get("content-type", ""):
            try:
                document = orjson.loads(content)
            except orjson.JSONDecodeError:
                pass  # not JSON: passed on for the native system to refuse
            else:
                content = orjson.dumps(body_to_native(document))
        query = str(httpx.QueryParams(params))
        url = request.url.copy_with(raw_path=(path + ("?" + query if query else "")).encode("ascii"))
        return httpx.Request(request.method, url, headers=headers, content=content, extensions=request.extensions)

    def to_canonical(self, response: httpx.Response, request: httpx.Request) -> httpx.Response:
        if "json" not in response.headers.get("content-type", "") or not response.content:
            return response  # the bulk export (a zip) and empty answers pass unchanged
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return response  # not JSON after all: the checks judge it as sent
        status = response.status_code
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            status, body = error_to_canonical(status, body)
        else:
            if isinstance(body, dict) and "results" in body:
                body = page_to_canonical(body)
            body = body_to_canonical(body)
        return json_response(status, body, response.headers)
