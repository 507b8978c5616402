"""Reconciliation of an export with the records the harness created through the API
(ICS-1A-EXP-009): each must appear in the export with the same identifiers, names,
aliases, allocations, assessments and seen visits.

Only the harness's own records are judged (open world: the export may hold others).
The export is streamed again; memory is bounded by the size of ``ExpectedRecords``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from conformance.domain.identifiers import compact_nhs_number, compact_upn
from conformance.export.archive import Limits, member, open_export
from conformance.export.findings import EXP_RECONCILE, Finding, FindingSink
from conformance.export.lines import iter_batches

#: Fields compared per record type (only those present in the expected record).
COMPARED: dict[str, tuple[str, ...]] = {
    "children": (
        "local_id",
        "given_name",
        "family_name",
        "date_of_birth",
        "expected_date_of_birth",
        "gender",
        "date_of_death",
        "upn",
        "nhs_number",
    ),
    "aliases": ("child_id", "given_name", "family_name", "type"),
    "allocations": ("child_id", "practitioner_id", "start_date", "end_date"),
    "assessments": ("child_id", "referral_id", "type", "start_date", "due_date", "status", "completed_on"),
    "visits": ("assessment_id", "visit_date", "child_seen", "seen_alone"),
}
_LABEL = {
    "children": "child",
    "aliases": "alias",
    "allocations": "allocation",
    "assessments": "assessment",
    "visits": "seen visit",
}


@dataclass
class ExpectedRecords:
    """What the harness created through the API, as the API returned it.

    Each item is a mapping with at least ``id``; other keys are compared when listed
    in :data:`COMPARED` (e.g. a child's ``local_id``, names, ``upn``, ``nhs_number``).
    ``seen_visits`` are visits recorded with ``child_seen`` true.
    """

    children: Sequence[Mapping[str, Any]] = ()
    aliases: Sequence[Mapping[str, Any]] = ()
    allocations: Sequence[Mapping[str, Any]] = ()
    assessments: Sequence[Mapping[str, Any]] = ()
    seen_visits: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    def by_type(self) -> dict[str, Sequence[Mapping[str, Any]]]:
        return {
            "children": self.children,
            "aliases": self.aliases,
            "allocations": self.allocations,
            "assessments": self.assessments,
            "visits": [dict(v, child_seen=True) for v in self.seen_visits],
        }


def _same(key: str, expected: Any, actual: Any) -> bool:
    if key == "upn" and isinstance(expected, str) and isinstance(actual, str):
        return compact_upn(expected) == compact_upn(actual)
    if key == "nhs_number" and isinstance(expected, str) and isinstance(actual, str):
        return compact_nhs_number(expected) == compact_nhs_number(actual)
    return expected == actual


def reconcile(
    report_or_path: Any,
    expected: ExpectedRecords,
    *,
    max_examples: int | None = None,
    limits: Limits | None = None,
) -> list[Finding]:
    """Return ICS-1A-EXP-009 findings: expected records missing from the export or different.

    ``report_or_path`` is an :class:`~conformance.export.ExportReport` or the export's path.
    All findings are returned unless ``max_examples`` bounds them per requirement.
    """
    path = getattr(report_or_path, "path", report_or_path)
    limits = limits or Limits()
    source = open_export(os.fspath(path), limits)
    sink = FindingSink(max_examples if max_examples is not None else 10**9)
    for record_type, items in expected.by_type().items():
        wanted = {str(item["id"]): item for item in items}
        if not wanted:
            continue
        name = f"{record_type}.jsonl"
        label = _LABEL[record_type]
        found: set[str] = set()
        if name in source.members:
            with member(source.spec, name) as stream:
                for first, lines, _final in iter_batches(stream, _NullHash(), limits.max_line_bytes, [0]):
                    for offset, line in enumerate(lines):
                        if not line or b'"id"' not in line:
                            continue
                        try:
                            record = orjson.loads(line)
                        except orjson.JSONDecodeError:
                            continue
                        rid = record.get("id") if isinstance(record, dict) else None
                        if not isinstance(rid, str) or rid not in wanted or rid in found:
                            continue
                        found.add(rid)
                        item = wanted[rid]
                        for key in COMPARED[record_type]:
                            if key in item and not _same(key, item[key], record.get(key, _ABSENT)):
                                shown = "absent" if key not in record else repr(record[key])
                                sink.add(
                                    EXP_RECONCILE,
                                    name,
                                    first + offset,
                                    "/" + key,
                                    f"{label} {rid!r}: {key} is {shown} in the export but {item[key]!r} through the API",
                                )
        for rid in wanted:
            if rid not in found:
                sink.add(
                    EXP_RECONCILE, name, None, "", f"{label} {rid!r} created through the API is missing from the export"
                )
    return [f for f in sink.examples.get(EXP_RECONCILE, [])]


_ABSENT = object()


class _NullHash:
    def update(self, _data: bytes) -> None:
        return None
