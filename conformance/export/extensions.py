"""Phase 1C export content: the audit log (ICS-1C-AUD-002) and the chronology (ICS-1C-CHRON-001, -003).

Judged apart from the streaming 1A rules of :mod:`conformance.export.validate`, which only
check that ``audit.jsonl`` and ``chronology.jsonl``, when present, are listed in the
manifest with the right count, size and sha256. Here each file is read line by line; the
records they point at are read from the export's own record files, keeping only IDs and
dates. Unlike the 1A rules, memory grows with the number of records (IDs and dates held
in dictionaries): phase 1C is a draft, and so is this.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from conformance.domain.chronology import EVENT_SOURCES, derive_events, order_key, source_date
from conformance.export.archive import Limits, SourceSpec, member, open_export
from conformance.export.findings import Finding, FindingSink
from conformance.export.lines import iter_batches
from conformance.export.records import schema_errors, validator
from conformance.results.result import CheckResult
from conformance.results.verdicts import Verdict

AUD_EXPORT = "ICS-1C-AUD-002"
CHRON_COMPLETE = "ICS-1C-CHRON-001"
CHRON_LINKS = "ICS-1C-CHRON-003"
#: The requirements judged here, in report order.
EXTENSION_REQUIREMENTS = (AUD_EXPORT, CHRON_COMPLETE, CHRON_LINKS)
#: Phase 1C record files an export may hold beside the eight of phase 1A, by export kind.
EXTENSION_FILES: dict[str, dict[str, str]] = {
    "bulk": {"audit.jsonl": "audit", "chronology.jsonl": "chronology"},
    "transfer": {"chronology.jsonl": "chronology"},
}
MANIFEST = "manifest.json"
#: Source record type -> the fields a chronology event may take from it.
_SOURCE_FIELDS = {
    "referrals": ("child_id", "received_on"),
    "assessments": ("child_id", "start_date", "completed_on", "status"),
    "visits": ("assessment_id", "visit_date", "child_seen"),
    "allocations": ("child_id", "start_date", "end_date"),
}


@dataclass
class ExtensionReport:
    """Findings of the phase 1C export rules, and the records kept for reconciliation."""

    path: str
    sink: FindingSink
    judged: tuple[str, ...]
    audit: list[dict[str, Any]] = field(default_factory=list)  # entries of the children asked for
    chronology: list[dict[str, Any]] = field(default_factory=list)  # events of the children asked for
    present: set[str] = field(default_factory=set)  # extension files the export holds

    def verdict(self, requirement: str) -> Verdict:
        """PASS, FAIL (findings) or ERROR (a rule crashed or the export could not be read)."""
        if self.sink.counts.get(requirement):
            return Verdict.FAIL
        if requirement in self.sink.errors:
            return Verdict.ERROR
        return Verdict.PASS

    def count(self, requirement: str) -> int:
        return self.sink.counts.get(requirement, 0)

    def examples(self, requirement: str) -> list[Finding]:
        return list(self.sink.examples.get(requirement, []))

    def error(self, requirement: str) -> str | None:
        return self.sink.errors.get(requirement)

    def checks(self, reproduce: str | None = None) -> list[CheckResult]:
        """One ``export`` CheckResult per judged requirement."""
        out = []
        for rid in self.judged:
            verdict, examples = self.verdict(rid), self.examples(rid)
            message = None
            if verdict is Verdict.FAIL:
                message = f"{self.count(rid)} finding(s); first: {examples[0]}" if examples else "findings"
            elif verdict is Verdict.ERROR:
                message = self.error(rid)
            out.append(
                CheckResult(
                    id=f"export::{rid}",
                    requirements=(rid,),
                    kind="export",
                    verdict=verdict,
                    failed_requirements=(rid,) if verdict is Verdict.FAIL else (),
                    message=message,
                    reproduce=reproduce,
                    evidence=[{"kind": "finding", "count": self.count(rid), **f.to_json()} for f in examples],
                )
            )
        return out


class _NoHash:
    def update(self, _data: bytes) -> None:
        return None


def records(spec: SourceSpec, name: str, limits: Limits) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed record or None)`` of each line of a member (None: not JSON, or too long)."""
    counter = [0]
    with member(spec, name) as stream:
        for first, lines, _final in iter_batches(stream, _NoHash(), limits.max_line_bytes, counter):
            for n, line in enumerate(lines, first):
                if line is None:
                    yield n, None
                    continue
                if not line.strip():
                    continue
                try:
                    yield n, orjson.loads(line)
                except orjson.JSONDecodeError:
                    yield n, None


def file_stats(spec: SourceSpec, name: str, limits: Limits) -> tuple[int, int, str]:
    """``(records, bytes, sha256)`` of a member, records counted as the 1A scan counts them (lines)."""
    hasher = hashlib.sha256()
    counter = [0]
    count = 0
    with member(spec, name) as stream:
        for _first, lines, _final in iter_batches(stream, hasher, limits.max_line_bytes, counter):
            count += len(lines)
    return count, counter[0], hasher.hexdigest()


def _listed(spec: SourceSpec, members: dict[str, int], limits: Limits) -> set[str] | None:
    """Paths the manifest lists (None: no readable manifest; its problems are ICS-1A-EXP-002's)."""
    if MANIFEST not in members or members[MANIFEST] > limits.max_manifest_bytes:
        return None
    try:
        with member(spec, MANIFEST) as stream:
            data = orjson.loads(stream.read(limits.max_manifest_bytes + 1))
    except (OSError, orjson.JSONDecodeError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        return None
    return {str(f.get("path")) for f in files if isinstance(f, dict)}


def _ids(spec: SourceSpec, name: str, members: dict[str, int], limits: Limits) -> set[str]:
    if name not in members:
        return set()
    return {
        obj["id"] for _, obj in records(spec, name, limits) if isinstance(obj, dict) and isinstance(obj.get("id"), str)
    }


def _sources(spec: SourceSpec, members: dict[str, int], limits: Limits) -> dict[str, dict[str, dict[str, Any]]]:
    """Record type -> ID -> the fields chronology events take from it."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for record_type, fields in _SOURCE_FIELDS.items():
        table: dict[str, dict[str, Any]] = {}
        name = f"{record_type}.jsonl"
        if name in members:
            for _, obj in records(spec, name, limits):
                if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                    table[obj["id"]] = {"id": obj["id"], **{f: obj.get(f) for f in fields}}
        out[record_type] = table
    return out


def validate_extensions(
    path: str | os.PathLike[str],
    *,
    kind: str = "bulk",
    requirements: Iterable[str] = EXTENSION_REQUIREMENTS,
    max_examples: int = 20,
    limits: Limits | None = None,
    keep_for: Iterable[str] = (),
) -> ExtensionReport:
    """Judge the phase 1C content of the export (or transfer package) at ``path``.

    ``requirements`` selects what is judged (a transfer package has no audit log);
    ``keep_for`` names children whose audit entries and chronology events are kept on the
    report for reconciliation with the API. A rule that crashes is recorded as an error
    (ERROR), never a pass; an unreadable export raises like :func:`validate_export`.
    """
    limits = limits or Limits()
    wanted = tuple(r for r in EXTENSION_REQUIREMENTS if r in set(requirements))
    source = open_export(path, limits)
    sink = FindingSink(max_examples)
    report = ExtensionReport(str(path), sink, wanted)
    report.present = {n for n in EXTENSION_FILES.get(kind, {}) if n in source.members}
    keep = set(keep_for)
    listed = _listed(source.spec, source.members, limits)
    if AUD_EXPORT in wanted:
        try:
            _audit(source.spec, source.members, limits, listed, sink, keep, report)
        except Exception as exc:  # a crashed rule is ERROR, never a pass
            sink.crashed(AUD_EXPORT, "audit.jsonl", exc)
    if CHRON_COMPLETE in wanted or CHRON_LINKS in wanted:
        try:
            _chronology(source.spec, source.members, limits, listed, sink, keep, report, wanted)
        except Exception as exc:
            for rid in (CHRON_COMPLETE, CHRON_LINKS):
                if rid in wanted:
                    sink.crashed(rid, "chronology.jsonl", exc)
    return report


def _presence(
    name: str, rid: str, members: dict[str, int], listed: set[str] | None, sink: FindingSink, what: str
) -> bool:
    if name not in members:
        sink.add(rid, name, None, "", f"{name} missing from the export ({what})")
        return False
    if listed is not None and name not in listed:
        sink.add(rid, MANIFEST, None, "/files", f"{name} is not listed in the manifest")
    return True


def _audit(
    spec: SourceSpec,
    members: dict[str, int],
    limits: Limits,
    listed: set[str] | None,
    sink: FindingSink,
    keep: set[str],
    report: ExtensionReport,
) -> None:
    name = "audit.jsonl"
    if not _presence(name, AUD_EXPORT, members, listed, sink, "the audit log"):
        return
    children = _ids(spec, "children.jsonl", members, limits)
    practitioners = _ids(spec, "practitioners.jsonl", members, limits)
    seen: set[str] = set()
    is_valid = validator("audit").is_valid
    for n, obj in records(spec, name, limits):
        if not isinstance(obj, dict) or not is_valid(obj):
            problems = schema_errors("audit", obj) if isinstance(obj, dict) else [("", "not a JSON object")]
            for pointer, message in problems[:3]:
                sink.add(AUD_EXPORT, name, n, pointer, message)
            continue
        if obj["id"] in seen:
            sink.add(AUD_EXPORT, name, n, "/id", f"duplicate audit entry id {obj['id']!r}")
        seen.add(obj["id"])
        if obj["practitioner_id"] not in practitioners:
            sink.add(
                AUD_EXPORT, name, n, "/practitioner_id", f"practitioner_id {obj['practitioner_id']!r} not exported"
            )
        if obj["child_id"] is not None and obj["child_id"] not in children:
            sink.add(AUD_EXPORT, name, n, "/child_id", f"child_id {obj['child_id']!r} not exported")
        if obj["child_id"] in keep:
            report.audit.append(obj)


def _chronology(
    spec: SourceSpec,
    members: dict[str, int],
    limits: Limits,
    listed: set[str] | None,
    sink: FindingSink,
    keep: set[str],
    report: ExtensionReport,
    wanted: tuple[str, ...],
) -> None:
    name = "chronology.jsonl"
    judge_complete, judge_links = CHRON_COMPLETE in wanted, CHRON_LINKS in wanted
    if name not in members:
        if judge_complete:
            _presence(name, CHRON_COMPLETE, members, listed, sink, "the chronology")
        return
    if judge_complete:
        _presence(name, CHRON_COMPLETE, members, listed, sink, "the chronology")
    sources = _sources(spec, members, limits)
    child_of_assessment = {k: v.get("child_id") for k, v in sources["assessments"].items()}
    derived = derive_events(
        referrals=sources["referrals"].values(),
        assessments=sources["assessments"].values(),
        visits=sources["visits"].values(),
        allocations=sources["allocations"].values(),
    )
    # completeness counts what happened when (child, type, date); which record it links to is CHRON-003's
    expected = Counter((e.child_id, e.type, e.date) for e in derived)
    found: Counter[tuple[str, str, str]] = Counter()
    last: dict[str, tuple[tuple[str, str, str], int]] = {}
    is_valid = validator("chronology").is_valid
    for n, obj in records(spec, name, limits):
        if not isinstance(obj, dict) or not is_valid(obj):
            if judge_complete:
                problems = schema_errors("chronology", obj) if isinstance(obj, dict) else [("", "not a JSON object")]
                for pointer, message in problems[:3]:
                    sink.add(CHRON_COMPLETE, name, n, pointer, message)
            continue
        child, key = obj["child_id"], order_key(obj)
        if child in keep:
            report.chronology.append(obj)
        if judge_complete:
            previous = last.get(child)
            if previous is not None and key < previous[0]:
                sink.add(
                    CHRON_COMPLETE,
                    name,
                    n,
                    "",
                    f"child {child!r}: event {'/'.join(key)} listed after {'/'.join(previous[0])} (line {previous[1]}); "
                    "events go by date, then type, then source_id",
                )
            else:
                last[child] = (key, n)
            event = (child, obj["type"], obj["date"])
            found[event] += 1
            if found[event] > expected.get(event, 0):
                sink.add(
                    CHRON_COMPLETE,
                    name,
                    n,
                    "",
                    f"child {child!r}: {found[event]} {obj['type']} events on {obj['date']}, "
                    f"the records give {expected.get(event, 0)}",
                )
        if judge_links:
            problem = _link_problem(obj, sources, child_of_assessment)
            if problem is not None:
                sink.add(CHRON_LINKS, name, n, problem[0], problem[1])
    if judge_complete:
        missing = sorted((key, n - found.get(key, 0)) for key, n in expected.items() if n > found.get(key, 0))
        for (child, event_type, day), n in missing[: sink.max_examples]:
            sink.add(
                CHRON_COMPLETE,
                name,
                None,
                "",
                f"child {child!r}: {n} {event_type} event(s) on {day} missing (the records give "
                f"{expected[(child, event_type, day)]})",
            )
        sink.add_count(CHRON_COMPLETE, len(missing) - min(len(missing), sink.max_examples))


def _link_problem(
    obj: dict[str, Any], sources: dict[str, dict[str, dict[str, Any]]], child_of_assessment: dict[str, Any]
) -> tuple[str, str] | None:
    """Why event ``obj`` does not link to its source record (None: it does)."""
    event_type = obj["type"]
    wanted_type, field_name = EVENT_SOURCES[event_type]
    if obj["source_type"] != wanted_type:
        return "/source_type", f"a {event_type} event comes from {wanted_type}, not {obj['source_type']}"
    record = sources[wanted_type].get(obj["source_id"])
    if record is None:
        return "/source_id", f"{wanted_type} {obj['source_id']!r} is not in the export"
    if wanted_type == "visits":
        owner = child_of_assessment.get(str(record.get("assessment_id")))
    else:
        owner = record.get("child_id")
    if owner != obj["child_id"]:
        return "/child_id", f"{wanted_type} {obj['source_id']!r} belongs to child {owner!r}, not {obj['child_id']!r}"
    day = source_date(event_type, record)
    if day is None:
        return "/type", f"{wanted_type} {obj['source_id']!r} holds no {event_type} event ({field_name} not set)"
    if day != obj["date"]:
        return (
            "/date",
            f"{event_type} dated {obj['date']} but {wanted_type} {obj['source_id']!r} has {field_name} {day}",
        )
    return None


def declared_capabilities(path: str | os.PathLike[str], limits: Limits | None = None) -> dict[str, bool]:
    """What an export judged alone declares: bulk_export, and the phase 1C capabilities whose files it holds
    (``audit.jsonl``: audit; ``chronology.jsonl``: chronology_export). An unreadable export declares bulk_export."""
    declared = {"bulk_export": True}
    try:
        members = open_export(path, limits).members
    except Exception:  # unreadable: the export checks report it
        return declared
    if "audit.jsonl" in members:
        declared["audit"] = True
    if "chronology.jsonl" in members:
        declared["chronology_export"] = True
    return declared
