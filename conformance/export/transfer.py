"""Transfer packages (ICS-1C-XFER-001): one child's record in the bulk export format, with its own manifest.

:func:`validate_transfer` judges a package: the export rules of phase 1A
(:func:`~conformance.export.validate.validate_export` with ``kind="transfer"``), the
chronology rules of phase 1C when it holds a chronology, and the package rules below
(exactly one child, named by the manifest; every record that child's; exactly the
practitioners its records reference). Every finding is a finding against ICS-1C-XFER-001,
labelled with the rule it breaks. :func:`read_package` parses a (small) package into records.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from conformance.errors import InconclusiveError
from conformance.export.archive import Limits, member, open_export
from conformance.export.extensions import CHRON_COMPLETE, CHRON_LINKS, ExtensionReport, records, validate_extensions
from conformance.export.findings import EXPORT_REQUIREMENTS, Finding, FindingSink
from conformance.export.records import RECORD_TYPES
from conformance.export.validate import ExportReport, validate_export
from conformance.results.result import CheckResult
from conformance.results.verdicts import Verdict

XFER_VALID = "ICS-1C-XFER-001"
PACKAGE_RULE = "package"
#: A package is small (one child); a bigger one is refused unread.
MAX_PACKAGE_BYTES = 64 * 1024 * 1024
#: record type -> the fields naming the child a record belongs to (visits: through their assessment)
_CHILD_FIELD = {
    "aliases": "child_id",
    "allocations": "child_id",
    "referrals": "child_id",
    "case_notes": "child_id",
    "assessments": "child_id",
}
#: record type -> the fields naming a practitioner
PRACTITIONER_FIELDS = {"case_notes": ("author_id",), "allocations": ("practitioner_id",), "visits": ("recorded_by",)}


@dataclass
class Package:
    """A parsed transfer package: its manifest and its records by type."""

    manifest: dict[str, Any]
    records: dict[str, list[dict[str, Any]]]

    @property
    def child(self) -> dict[str, Any] | None:
        children = self.records.get("children") or []
        return children[0] if len(children) == 1 else None


def read_package(path: str | os.PathLike[str], limits: Limits | None = None) -> Package:
    """Parse a package (directory or zip) into its manifest and records (JSON objects only).

    Raises :class:`~conformance.errors.InconclusiveError` when it cannot be read at all.
    """
    limits = limits or Limits()
    source = open_export(path, limits)
    if sum(source.members.values()) > MAX_PACKAGE_BYTES:
        raise InconclusiveError(f"{path}: larger than a transfer package may be ({MAX_PACKAGE_BYTES} bytes)")
    manifest: dict[str, Any] = {}
    if "manifest.json" in source.members:
        with member(source.spec, "manifest.json") as stream:
            try:
                data = orjson.loads(stream.read(limits.max_manifest_bytes + 1))
            except orjson.JSONDecodeError:
                data = None
        manifest = data if isinstance(data, dict) else {}
    found: dict[str, list[dict[str, Any]]] = {}
    for record_type in (*RECORD_TYPES, "chronology"):
        name = f"{record_type}.jsonl"
        if name in source.members:
            found[record_type] = [obj for _, obj in records(source.spec, name, limits) if isinstance(obj, dict)]
        else:
            found[record_type] = []
    return Package(manifest, found)


@dataclass
class TransferReport:
    """The verdict on one package: XFER-001, and the export rules it was judged by."""

    path: str
    export: ExportReport | None
    extensions: ExtensionReport | None
    sink: FindingSink
    errors: list[str] = field(default_factory=list)

    def findings(self) -> list[Finding]:
        """Example findings against XFER-001, each message naming the rule it breaks."""
        return list(self.sink.examples.get(XFER_VALID, []))

    def count(self) -> int:
        return self.sink.counts.get(XFER_VALID, 0)

    def verdict(self) -> Verdict:
        if self.count():
            return Verdict.FAIL
        if self.errors:
            return Verdict.ERROR
        return Verdict.PASS

    @property
    def conformant(self) -> bool:
        return self.verdict() is Verdict.PASS

    def summary(self, limit: int = 5) -> str:
        """The count and the first findings, one line."""
        shown = "; ".join(str(f) for f in self.findings()[:limit])
        return f"{self.count()} finding(s): {shown}" if self.count() else "no findings"

    def checks(self, reproduce: str | None = None) -> list[CheckResult]:
        """XFER-001, then the export requirements judged on the package (an export-only result)."""
        verdict = self.verdict()
        examples = self.findings()
        out = [
            CheckResult(
                id=f"export::{XFER_VALID}",
                requirements=(XFER_VALID,),
                kind="export",
                verdict=verdict,
                failed_requirements=(XFER_VALID,) if verdict is Verdict.FAIL else (),
                message=self.summary() if verdict is Verdict.FAIL else ("; ".join(self.errors) or None),
                reproduce=reproduce,
                evidence=[{"kind": "finding", "count": self.count(), **f.to_json()} for f in examples],
            )
        ]
        if self.export is not None:
            out += self.export.checks()
        if self.extensions is not None:
            out += self.extensions.checks(reproduce)
        return out


def validate_transfer(
    path: str | os.PathLike[str],
    *,
    chronology_required: bool = False,
    max_examples: int = 20,
    limits: Limits | None = None,
) -> TransferReport:
    """Judge the transfer package at ``path`` against ICS-1C-XFER-001.

    ``chronology_required``: the sender declares chronology_export, so the package must
    hold ``chronology.jsonl``. A package that cannot be opened at all is one finding (not
    a zip or a directory, unreadable); a rule that crashes is an error (ERROR).
    """
    limits = limits or Limits()
    sink = FindingSink(max_examples)
    report = TransferReport(str(path), None, None, sink)
    try:
        source = open_export(path, limits)
    except InconclusiveError as exc:
        sink.add(XFER_VALID, str(path), None, "", f"[{PACKAGE_RULE}] {exc}")
        return report
    if sum(source.members.values()) > MAX_PACKAGE_BYTES:
        sink.add(XFER_VALID, str(path), None, "", f"[{PACKAGE_RULE}] larger than {MAX_PACKAGE_BYTES} bytes")
        return report
    try:
        report.export = validate_export(
            path, phase="1C", max_examples=max_examples, workers=1, limits=limits, kind="transfer"
        )
        report.extensions = validate_extensions(
            path, kind="transfer", requirements=(CHRON_COMPLETE, CHRON_LINKS), max_examples=max_examples, limits=limits
        )
    except InconclusiveError as exc:
        sink.add(XFER_VALID, str(path), None, "", f"[{PACKAGE_RULE}] {exc}")
        return report
    for rid in EXPORT_REQUIREMENTS:
        _carry(sink, rid, report.export.count(rid), report.export.examples(rid), report.export.error(rid), report)
    chronology = "chronology.jsonl" in report.extensions.present
    for rid in (CHRON_COMPLETE, CHRON_LINKS):
        if chronology:
            ext = report.extensions
            _carry(sink, rid, ext.count(rid), ext.examples(rid), ext.error(rid), report)
    if chronology_required and not chronology:
        sink.add(
            XFER_VALID,
            "chronology.jsonl",
            None,
            "",
            f"[{PACKAGE_RULE}] the sender declares chronology_export but the package holds no chronology.jsonl",
        )
    try:
        package = read_package(path, limits)
        for problem in package_problems(package):
            sink.add(XFER_VALID, problem.file, problem.line, problem.pointer, f"[{PACKAGE_RULE}] {problem.message}")
    except Exception as exc:  # a crashed rule is ERROR, never a pass
        report.errors.append(f"package rules crashed: {type(exc).__name__}: {exc}")
    return report


def _carry(
    sink: FindingSink, rid: str, count: int, examples: Iterable[Finding], error: str | None, report: TransferReport
) -> None:
    """Count ``rid``'s findings on the package as XFER-001 findings labelled with ``rid``."""
    shown = 0
    for finding in examples:
        sink.add(XFER_VALID, finding.file, finding.line, finding.pointer, f"[{rid}] {finding.message}")
        shown += 1
    sink.add_count(XFER_VALID, count - shown)
    if error:
        report.errors.append(f"{rid}: {error}")


def package_problems(package: Package) -> list[Finding]:
    """The package rules: one child, named by the manifest; every record its; exactly the practitioners referenced."""
    out: list[Finding] = []

    def add(file: str, line: int | None, pointer: str, message: str) -> None:
        out.append(Finding(XFER_VALID, file, line, pointer, message))

    children = package.records.get("children") or []
    source = package.manifest.get("source") if isinstance(package.manifest.get("source"), dict) else {}
    if len(children) != 1:
        add("children.jsonl", None, "", f"a transfer package holds exactly one child, this one holds {len(children)}")
    child_ids = {c.get("id") for c in children}
    if children and source and source.get("child_id") not in child_ids:
        add(
            "manifest.json",
            None,
            "/source/child_id",
            f"source.child_id {source.get('child_id')!r} is not the package's child",
        )
    if len(children) == 1 and source and "local_id" in source and source.get("local_id") != children[0].get("local_id"):
        add(
            "manifest.json",
            None,
            "/source/local_id",
            f"source.local_id {source.get('local_id')!r} differs from the child's local_id {children[0].get('local_id')!r}",
        )
    for record_type, field_name in _CHILD_FIELD.items():
        for n, record in enumerate(package.records.get(record_type) or [], 1):
            if record.get(field_name) not in child_ids:
                add(
                    f"{record_type}.jsonl",
                    n,
                    f"/{field_name}",
                    f"{field_name} {record.get(field_name)!r} is not the package's child",
                )
    assessments = {a.get("id") for a in package.records.get("assessments") or []}
    for n, visit in enumerate(package.records.get("visits") or [], 1):
        if visit.get("assessment_id") not in assessments:
            add("visits.jsonl", n, "/assessment_id", f"assessment {visit.get('assessment_id')!r} is not in the package")
    referenced = {
        record.get(f)
        for record_type, fields in PRACTITIONER_FIELDS.items()
        for record in package.records.get(record_type) or []
        for f in fields
    }
    for n, practitioner in enumerate(package.records.get("practitioners") or [], 1):
        if practitioner.get("id") not in referenced:
            add(
                "practitioners.jsonl",
                n,
                "/id",
                f"practitioner {practitioner.get('id')!r} is referenced by no record of the package",
            )
    return out
