"""Bulk export of the reference store (design.md §5): a zip of JSON Lines files and a manifest.

The archive is written record by record into a spooled temporary file (memory for small
exports, disk beyond a few megabytes) while each file's sha256, size and count are
computed on the fly; the HTTP layer then streams it. Export faults perturb single records
or manifest fields right where they are written.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from conformance.reference import rules
from conformance.reference.chronology import events
from conformance.reference.store import Store
from conformance.spec.catalogue import load_catalogue

SPEC_VERSION = load_catalogue().spec_version
_SPOOL_BYTES = 8 * 1024 * 1024

#: record type -> (table, exported columns)
RECORD_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "children": (
        "children",
        (
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
        ),
    ),
    "aliases": ("aliases", ("id", "child_id", "given_name", "family_name", "type")),
    "practitioners": ("practitioners", ("id", "name", "role")),
    "allocations": ("allocations", ("id", "child_id", "practitioner_id", "start_date", "end_date")),
    "referrals": ("referrals", ("id", "child_id", "received_on", "source", "reason")),
    "case_notes": ("case_notes", ("id", "child_id", "author_id", "text", "restricted", "created_at")),
    "assessments": (
        "assessments",
        ("id", "child_id", "referral_id", "type", "start_date", "due_date", "status", "completed_on", "authorised_by"),
    ),
    "visits": (
        "visits",
        ("id", "assessment_id", "visit_date", "child_seen", "seen_alone", "not_seen_alone_reason", "recorded_by"),
    ),
}
#: Phase 1C files of the bulk export: the audit log (capability audit) and the chronology
#: (capability chronology_export, computed by :mod:`conformance.reference.chronology`).
AUDIT_COLUMNS = ("id", "at", "practitioner_id", "child_id", "action")
EXTENSION_TYPES = ("audit", "chronology")
_BOOLEANS = {"shielded", "restricted", "child_seen", "seen_alone"}


def _uk_date(value: str | None) -> str | None:
    return None if value is None else date.fromisoformat(value).strftime("%d/%m/%Y")


def _perturb(record_type: str, faults: Collection[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The per-record change the export faults make to ``record_type`` (identity when clean)."""
    changes: list[Callable[[dict[str, Any]], None]] = []
    if record_type == "children" and "export-bad-date-format" in faults:

        def uk_dates(r: dict[str, Any]) -> None:
            for key in ("date_of_birth", "expected_date_of_birth", "date_of_death"):
                r[key] = _uk_date(r[key])

        changes.append(uk_dates)
    if record_type == "children" and "export-bad-check-digits" in faults:

        def bad_upn(r: dict[str, Any]) -> None:
            if r["upn"]:
                r["upn"] = rules.wrong_check_letter(r["upn"])

        changes.append(bad_upn)
    if record_type == "case_notes" and "export-orphan-case-notes" in faults:

        def orphan(r: dict[str, Any]) -> None:
            r["child_id"] = "c-orphan-" + r["child_id"]

        changes.append(orphan)
    if record_type == "visits" and "export-shifts-visit-dates" in faults:

        def shift(r: dict[str, Any]) -> None:
            if r["child_seen"]:
                r["visit_date"] = (date.fromisoformat(r["visit_date"]) - timedelta(days=60)).isoformat()

        changes.append(shift)

    def apply(record: dict[str, Any]) -> dict[str, Any]:
        for change in changes:
            change(record)
        return record

    return apply


def rows(store: Store, record_type: str, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """The exported columns of ``record_type``'s rows matching ``where`` (booleans as JSON booleans), in order."""
    table, columns = RECORD_TYPES[record_type]
    found = store.all(f"SELECT {', '.join(columns)} FROM {table} {where} ORDER BY seq", params)
    for row in found:
        for key in _BOOLEANS.intersection(row):
            if row[key] is not None:
                row[key] = bool(row[key])
    return found


def _records(store: Store, record_type: str, faults: Collection[str]) -> Iterator[dict[str, Any]]:
    if record_type == "chronology":
        yield from events(store, faults)
        return
    if record_type == "audit":
        for row in store.all(f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit ORDER BY seq"):
            if "export-audit-orphans" in faults:
                row["practitioner_id"] = "p-not-exported-" + row["practitioner_id"]
            yield row
        return
    table, columns = RECORD_TYPES[record_type]
    if record_type == "aliases" and "export-drops-aliases" in faults:
        return
    perturb = _perturb(record_type, faults)
    rows = store.all(f"SELECT {', '.join(columns)} FROM {table} ORDER BY seq")
    duplicate = record_type == "children" and "export-duplicate-ids" in faults
    for row in rows:
        for key in _BOOLEANS.intersection(row):
            if row[key] is not None:
                row[key] = bool(row[key])
        record = perturb(row)
        yield record
        # the first child holding a local ID: a child without one (null) would repeat no local ID
        if duplicate and record.get("local_id") is not None:
            duplicate = False
            yield record


def write_archive(
    files: Iterable[tuple[str, Iterable[dict[str, Any]]]],
    head: dict[str, Any],
    adjust: Callable[[str, dict[str, Any]], None] | None = None,
) -> tempfile.SpooledTemporaryFile:
    """Write ``files`` (record type, records) as JSON Lines members of a zip, then ``manifest.json``.

    The manifest is ``head`` plus the ``files`` entries (path, record type, count, bytes,
    sha256, computed while writing); ``adjust`` may bend an entry (the manifest faults).
    Returns the spooled file (position at its end).
    """
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
    entries: list[dict[str, Any]] = []
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for record_type, records in files:
            path = f"{record_type}.jsonl"
            digest, size, count = hashlib.sha256(), 0, 0
            with archive.open(path, "w") as member:
                for record in records:
                    line = orjson.dumps(record) + b"\n"
                    member.write(line)
                    digest.update(line)
                    size += len(line)
                    count += 1
            entry: dict[str, Any] = {
                "path": path,
                "record_type": record_type,
                "count": count,
                "bytes": size,
                "sha256": digest.hexdigest(),
            }
            if adjust is not None:
                adjust(record_type, entry)
            entries.append(entry)
        manifest = {**head, "files": entries}
        archive.writestr("manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return spool


def stamp() -> str:
    """The manifest's ``generated_at``: now, UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_export(
    store: Store, faults: Collection[str], producer: dict[str, str], extensions: Collection[str] = EXTENSION_TYPES
) -> tempfile.SpooledTemporaryFile:
    """Write the whole export as a zip into a spooled temporary file and return it (position at end).

    ``extensions`` names the phase 1C files to include (those whose capability is declared).
    """
    types = [*RECORD_TYPES, *(t for t in EXTENSION_TYPES if t in extensions)]
    if "export-drops-audit" in faults and "audit" in types:
        types.remove("audit")

    def adjust(record_type: str, entry: dict[str, Any]) -> None:
        if record_type == "children" and "export-bad-manifest-count" in faults:
            entry["count"] += 1
        if record_type == "children" and "export-bad-hash" in faults:
            entry["sha256"] = hashlib.sha256(b"not the file").hexdigest()

    head = {"spec_version": SPEC_VERSION, "generated_at": stamp(), "producer": producer}
    with store.lock:
        return write_archive(((t, _records(store, t, faults)) for t in types), head, adjust)
