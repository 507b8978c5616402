"""Transfer packages the harness writes itself (phase 1C): a known-good package, and broken ones.

:func:`write_package` turns records into a zip in the transfer package format (design.md
§5 and §11) with a correct manifest; the checks of ICS-1C-XFER-004 break one rule at a
time on a copy of a good package (:data:`MUTATIONS`), and when a sender's own package
fails, the receiving side is judged on a package the harness builds from what the
sender's API gave (:func:`harness_package`), so that it is never blamed for the sender.
"""

from __future__ import annotations

import copy
import hashlib
import io
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from conformance.domain import identifiers
from conformance.domain.chronology import derive_events
from conformance.spec.catalogue import load_catalogue

#: The record files of a package, in the order they are written.
RECORD_TYPES = (
    "children",
    "aliases",
    "practitioners",
    "allocations",
    "referrals",
    "case_notes",
    "assessments",
    "visits",
)
PRODUCER = {"supplier": "ics-conformance", "product": "harness (package built from the sender's API)", "version": "1"}
#: Fields of each record type in the export format (the API's, minus server-only ones).
EXPORT_FIELDS: dict[str, tuple[str, ...]] = {
    "children": (
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
    "aliases": ("id", "child_id", "given_name", "family_name", "type"),
    "practitioners": ("id", "name", "role"),
    "allocations": ("id", "child_id", "practitioner_id", "start_date", "end_date"),
    "referrals": ("id", "child_id", "received_on", "source", "reason"),
    "case_notes": ("id", "child_id", "author_id", "text", "restricted", "created_at"),
    "assessments": (
        "id",
        "child_id",
        "referral_id",
        "type",
        "start_date",
        "due_date",
        "status",
        "completed_on",
        "authorised_by",
    ),
    "visits": ("id", "assessment_id", "visit_date", "child_seen", "seen_alone", "not_seen_alone_reason", "recorded_by"),
}


def write_package(manifest_head: Mapping[str, Any], files: Mapping[str, Sequence[Mapping[str, Any]]]) -> bytes:
    """A zip with one JSON Lines file per record type of ``files`` and a manifest (counts, sizes, sha256)."""
    buffer = io.BytesIO()
    entries = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for record_type, records in files.items():
            data = b"".join(orjson.dumps(dict(r)) + b"\n" for r in records)
            archive.writestr(f"{record_type}.jsonl", data)
            entries.append(
                {
                    "path": f"{record_type}.jsonl",
                    "record_type": record_type,
                    "count": len(records),
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        archive.writestr("manifest.json", orjson.dumps({**manifest_head, "files": entries}, option=orjson.OPT_INDENT_2))
    return buffer.getvalue()


def harness_package(
    council: str, api: Mapping[str, Any], practitioners: Mapping[str, Mapping[str, str]], *, chronology: bool
) -> bytes:
    """The package of a child as the harness reads it from the sender's API.

    ``api`` holds ``child`` and the lists ``aliases``, ``allocations``, ``referrals``,
    ``case_notes``, ``assessments`` and ``visits`` as an admin reads them;
    ``practitioners`` maps the IDs they reference to ``{name, role}``.
    """
    files = package_records(api, practitioners)
    if chronology:
        files["chronology"] = [
            e.to_json()
            for e in derive_events(
                referrals=files["referrals"],
                assessments=files["assessments"],
                visits=files["visits"],
                allocations=files["allocations"],
            )
        ]
    child = api["child"]
    head = {
        "kind": "transfer",
        "spec_version": load_catalogue().spec_version,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "producer": PRODUCER,
        "source": {"council": council, "child_id": child["id"], "local_id": child.get("local_id")},
    }
    return write_package(head, files)


def package_records(
    api: Mapping[str, Any], practitioners: Mapping[str, Mapping[str, str]]
) -> dict[str, list[dict[str, Any]]]:
    """The records of a package (export fields only) from what the API gives."""
    files: dict[str, list[dict[str, Any]]] = {
        "children": [_fields("children", api["child"])],
        **{t: [_fields(t, r) for r in api.get(t) or []] for t in RECORD_TYPES[1:] if t != "practitioners"},
    }
    referenced = {n["author_id"] for n in files["case_notes"]}
    referenced |= {a["practitioner_id"] for a in files["allocations"]}
    referenced |= {v["recorded_by"] for v in files["visits"]}
    files["practitioners"] = [
        {"id": pid, "name": practitioners[pid]["name"], "role": practitioners[pid]["role"]}
        for pid in sorted(referenced)
        if pid in practitioners
    ]
    return {t: files[t] for t in RECORD_TYPES}


def _fields(record_type: str, record: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: record.get(k) for k in EXPORT_FIELDS[record_type]}
    if record_type == "visits" and out.get("not_seen_alone_reason") is None:
        out.pop("not_seen_alone_reason")
    return out


# -- broken packages (ICS-1C-XFER-004) ------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """One way to break a good package: what it breaks, and how (None: not applicable to this package)."""

    name: str
    description: str
    apply: Callable[[dict[str, Any], dict[str, list[dict[str, Any]]]], bytes | None]


def _rewrite(manifest: dict[str, Any], files: dict[str, list[dict[str, Any]]]) -> bytes:
    head = {k: v for k, v in manifest.items() if k != "files"}
    return write_package(head, files)


def _bad_hash(manifest: dict[str, Any], files: dict[str, list[dict[str, Any]]]) -> bytes:
    data = _rewrite(manifest, files)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    bent = orjson.loads(members["manifest.json"])
    for entry in bent["files"]:
        if entry["path"] == "children.jsonl":
            entry["sha256"] = hashlib.sha256(b"not the children file").hexdigest()
    members["manifest.json"] = orjson.dumps(bent, option=orjson.OPT_INDENT_2)
    return _zip(members)


def _zip(members: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _no_manifest(manifest: dict[str, Any], files: dict[str, list[dict[str, Any]]]) -> bytes:
    data = _rewrite(manifest, files)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return _zip({n: archive.read(n) for n in archive.namelist() if n != "manifest.json"})


def _duplicate_id(manifest: dict[str, Any], files: dict[str, list[dict[str, Any]]]) -> bytes | None:
    if not files["referrals"]:
        return None
    files["referrals"].append(copy.deepcopy(files["referrals"][0]))
    return _rewrite(manifest, files)


def _dangling(manifest: dict[str, Any], files: dict[str, list[dict[str, Any]]]) -> bytes | None:
    if not files["visits"]:
        return None
    files["visits"][0]["assessment_id"] = files["visits"][0]["assessment_id"] + "-missing"
    return _rewrite(manifest, files)


def _seen_before_start(manifest: dict[str, Any], files: dict[str, list[dict[str, Any]]]) -> bytes | None:
    starts = {a["id"]: a["start_date"] for a in files["assessments"]}
    for visit in files["visits"]:
        if visit["child_seen"] and visit["assessment_id"] in starts:
            visit["visit_date"] = (date.fromisoformat(starts[visit["assessment_id"]]) - timedelta(days=3)).isoformat()
            return _rewrite(manifest, files)
    return None


def _bad_upn(manifest: dict[str, Any], files: dict[str, list[dict[str, Any]]]) -> bytes | None:
    child = files["children"][0]
    if not child.get("upn"):
        return None
    for letter in "ABCDEFGHJKLMNPQRTUVWXYZ":
        candidate = letter + child["upn"][1:]
        if letter != child["upn"][0] and not identifiers.is_valid_upn(candidate):
            child["upn"] = candidate
            return _rewrite(manifest, files)
    return None


def _unseen_completion(manifest: dict[str, Any], files: dict[str, list[dict[str, Any]]]) -> bytes | None:
    completed = {a["id"] for a in files["assessments"] if a["status"] == "completed"}
    if not completed:
        return None
    for visit in files["visits"]:
        if visit["assessment_id"] in completed:
            visit["child_seen"] = False
            visit["seen_alone"] = None
            visit.pop("not_seen_alone_reason", None)
    return _rewrite(manifest, files)


def _second_child(manifest: dict[str, Any], files: dict[str, list[dict[str, Any]]]) -> bytes:
    other = copy.deepcopy(files["children"][0])
    other["id"] = other["id"] + "-second"
    other["local_id"] = None
    other["upn"] = other["nhs_number"] = None
    files["children"].append(other)
    return _rewrite(manifest, files)


def _foreign_record(manifest: dict[str, Any], files: dict[str, list[dict[str, Any]]]) -> bytes | None:
    if not files["aliases"]:
        return None
    foreign = copy.deepcopy(files["aliases"][0])
    foreign["id"] = foreign["id"] + "-foreign"
    foreign["child_id"] = files["children"][0]["id"] + "-another-child"
    files["aliases"].append(foreign)
    return _rewrite(manifest, files)


MUTATIONS: tuple[Mutation, ...] = (
    Mutation("not-a-zip", "a body that is not a zip archive", lambda m, f: b"this is not a transfer package\n"),
    Mutation("no-manifest", "a zip without manifest.json", _no_manifest),
    Mutation("sha256-mismatch", "children.jsonl whose sha256 differs from the manifest", _bad_hash),
    Mutation("duplicate-id", "a referral listed twice (duplicate record ID)", _duplicate_id),
    Mutation("dangling-reference", "a visit of an assessment the package does not hold", _dangling),
    Mutation("seen-before-start", "a seen visit dated before its assessment's start", _seen_before_start),
    Mutation("wrong-check-letter", "the child's UPN with a wrong check letter", _bad_upn),
    Mutation("unseen-completion", "a completed assessment whose visits did not see the child", _unseen_completion),
    Mutation("second-child", "a second child in children.jsonl", _second_child),
    Mutation("foreign-record", "an alias of another child", _foreign_record),
)


def renamed(files: Mapping[str, list[dict[str, Any]]], family_name: str) -> dict[str, list[dict[str, Any]]]:
    """A deep copy of ``files`` whose child and aliases carry ``family_name`` (so a stored copy can be found)."""
    out = copy.deepcopy(dict(files))
    for record in out.get("children") or []:
        record["family_name"] = family_name
    for record in out.get("aliases") or []:
        record["family_name"] = family_name
    return out
