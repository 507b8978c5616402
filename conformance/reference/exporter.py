"""Bulk export of the reference service: JSON Lines per record type plus a manifest.

The format is that of ``specs/schemas/export`` (design.md §5). Export faults alter the
archive after the honest records are produced, so each fault is one visible change.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import orjson

from conformance._version import __version__

if TYPE_CHECKING:
    from conformance.reference.service import Reference

SPEC_VERSION = "2008.1"
RECORD_TYPES = ("children", "aliases", "practitioners", "allocations", "referrals", "case_notes", "assessments", "visits")

_FIELDS = {
    "children": ("id", "local_id", "given_name", "family_name", "date_of_birth", "expected_date_of_birth", "gender", "date_of_death", "upn", "nhs_number", "postcode", "shielded", "created_at", "updated_at"),
    "aliases": ("id", "child_id", "given_name", "family_name", "type"),
    "practitioners": ("id", "name", "role"),
    "allocations": ("id", "child_id", "practitioner_id", "start_date", "end_date"),
    "referrals": ("id", "child_id", "received_on", "source", "reason"),
    "case_notes": ("id", "child_id", "author_id", "text", "restricted", "created_at"),
    "assessments": ("id", "child_id", "referral_id", "type", "start_date", "due_date", "status", "completed_on", "authorised_by"),
    "visits": ("id", "assessment_id", "visit_date", "child_seen", "seen_alone", "recorded_by"),
}
_BOOLEANS = {"shielded", "restricted", "child_seen", "seen_alone"}


def _record(record_type: str, row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in _FIELDS[record_type]:
        value = row.get(key)
        if key in _BOOLEANS and value is not None:
            value = bool(value)
        out[key] = value
    return out


def _dmy(value: str | None) -> str | None:
    return None if value is None else date.fromisoformat(value).strftime("%d/%m/%Y")


def _records(ref: Reference) -> dict[str, list[dict[str, Any]]]:
    data = {t: [_record(t, r) for r in ref.store.all(f"SELECT * FROM {t} ORDER BY seq")] for t in RECORD_TYPES}
    if ref.has("export-drops-aliases"):
        data["aliases"] = []
    if ref.has("export-bad-date-format"):
        for child in data["children"]:
            for key in ("date_of_birth", "expected_date_of_birth", "date_of_death"):
                child[key] = _dmy(child[key])
    if ref.has("export-duplicate-ids") and data["children"]:
        data["children"].append(dict(data["children"][0]))
    if ref.has("export-orphan-case-notes"):
        for note in data["case_notes"]:
            note["child_id"] = "c-missing-" + note["child_id"][-6:]
    if ref.has("export-shifts-visit-dates"):
        for visit in data["visits"]:
            if visit["child_seen"]:
                visit["visit_date"] = (date.fromisoformat(visit["visit_date"]) - timedelta(days=60)).isoformat()
    if ref.has("export-bad-check-digits"):
        for child in data["children"]:
            if child["upn"]:
                letter = child["upn"][0]
                child["upn"] = ("B" if letter == "A" else "A") + child["upn"][1:]
    return data


def build_export(ref: Reference) -> bytes:
    """Return the export archive (zip bytes) of everything the reference holds."""
    buffer = io.BytesIO()
    files = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for record_type, records in _records(ref).items():
            payload = b"".join(orjson.dumps(r) + b"\n" for r in records)
            name = f"{record_type}.jsonl"
            archive.writestr(name, payload)
            entry = {"path": name, "record_type": record_type, "count": len(records), "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
            if record_type == "children":
                if ref.has("export-bad-manifest-count"):
                    entry["count"] += 1
                if ref.has("export-bad-hash"):
                    entry["sha256"] = hashlib.sha256(payload + b"tampered").hexdigest()
            files.append(entry)
        manifest = {
            "spec_version": SPEC_VERSION,
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "producer": {"supplier": "ics-conformance", "product": "ICS reference service", "version": __version__},
            "files": files,
        }
        archive.writestr("manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return buffer.getvalue()
