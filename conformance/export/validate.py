"""Coordinator: open the export, scan its files (in parallel), run cross-file rules,
check the manifest, and turn findings into per-requirement verdicts.

Memory stays flat whatever the export's size: the scans keep no record and no ID
string; IDs travel as hashes through temporary files (a ``tempfile`` directory, removed
at the end, which should be on disk rather than in RAM) and the cross-file tables are
compact numpy arrays (see :mod:`conformance.export.keys`)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import orjson

from conformance.errors import UsageError
from conformance.export import rules
from conformance.export.archive import Limits, SourceSpec, member, open_export
from conformance.export.extensions import EXTENSION_FILES, file_stats
from conformance.export.findings import (
    EXP_DATES,
    EXP_MANIFEST,
    EXP_PRESENT,
    EXP_REFS,
    EXP_TIMESCALES,
    EXP_UNIQUE,
    EXPORT_REQUIREMENTS,
    REC_LOCAL_ID,
    Finding,
    FindingSink,
)
from conformance.export.keys import close_tables, load_table, partition_bits, records_at, release_memory
from conformance.export.records import (
    RECORD_TYPES,
    FileScan,
    batch_validator,
    duplicates,
    hash_member,
    prepare_rules,
    scan_file,
    schema_errors,
    validator,
)
from conformance.results.result import CheckResult
from conformance.results.verdicts import Verdict

MANIFEST = "manifest.json"
PHASES = ("1A", "1B", "1C")
#: Below this many bytes the export is scanned in-process (worker start-up costs more).
PARALLEL_THRESHOLD = 8 * 1024 * 1024
#: Files larger than a part are scanned in parts of MIN_PART..MAX_PART bytes (directory
#: exports; a zip member, which cannot be seeked, is split in one part per worker).
MIN_PART = 4 * 1024 * 1024
MAX_PART = 64 * 1024 * 1024
PARTS_PER_WORKER = 16
#: Requirements of other areas judged in the export by the scan of an export requirement:
#: their verdict comes from the findings flagged ``also`` with their ID.
ALSO_JUDGED = {REC_LOCAL_ID: EXP_UNIQUE}


@dataclass
class FileStats:
    """What was read of one record file."""

    name: str
    record_type: str
    records: int
    bytes: int
    sha256: str
    seconds: float


@dataclass
class ExportReport:
    """The outcome of validating one export."""

    path: str
    phase: str
    sink: FindingSink
    files: list[FileStats] = field(default_factory=list)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    requirements: tuple[str, ...] = EXPORT_REQUIREMENTS
    #: requirements that could not be judged (a file they need is missing): why
    unjudged: dict[str, str] = field(default_factory=dict)
    #: the mapping of an adapted export (``--format``): name, version, source, sha256
    format: dict[str, str] | None = None

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def verdict(self, requirement: str) -> Verdict:
        """PASS, FAIL (findings), ERROR (a rule crashed or a file could not be read) or SKIPPED
        (not judged: a file the rule needs is missing; never PASS)."""
        if self.count(requirement):
            return Verdict.FAIL
        if ALSO_JUDGED.get(requirement, requirement) in self.sink.errors:
            return Verdict.ERROR
        if requirement in self.unjudged:
            return Verdict.SKIPPED
        return Verdict.PASS

    def count(self, requirement: str) -> int:
        if requirement in ALSO_JUDGED:
            return self.sink.also.get(requirement, 0)
        return self.sink.counts.get(requirement, 0)

    def examples(self, requirement: str) -> list[Finding]:
        if requirement in ALSO_JUDGED:  # the base requirement's examples that also breach this one
            return [f for f in self.sink.examples.get(ALSO_JUDGED[requirement], []) if f.pointer == "/local_id"]
        return list(self.sink.examples.get(requirement, []))

    def error(self, requirement: str) -> str | None:
        """Why ``requirement`` could not be judged (None: it was)."""
        return self.sink.errors.get(ALSO_JUDGED.get(requirement, requirement))

    @property
    def findings(self) -> list[Finding]:
        """The example findings of every requirement (bounded), in requirement order."""
        return [f for r in self.requirements for f in self.sink.examples.get(r, [])]

    @property
    def judged(self) -> tuple[str, ...]:
        """Every requirement this report gives a verdict on: the export ones, then :data:`ALSO_JUDGED`."""
        return (*self.requirements, *ALSO_JUDGED)

    @property
    def conformant(self) -> bool:
        return all(self.verdict(r) is Verdict.PASS for r in self.judged)

    def checks(self) -> list[CheckResult]:
        """One ``export`` CheckResult per requirement judged (export ones, then :data:`ALSO_JUDGED`)."""
        out = []
        share = max(self.seconds / max(len(self.judged), 1), 0.0)
        for rid in self.judged:
            verdict = self.verdict(rid)
            count = self.count(rid)
            examples = self.examples(rid)
            message: str | None
            if verdict is Verdict.FAIL:
                message = (
                    f"{count} finding{'s' if count != 1 else ''}; first: {examples[0]}"
                    if examples
                    else f"{count} findings"
                )
            elif verdict is Verdict.ERROR:
                message = self.error(rid)
            elif verdict is Verdict.SKIPPED:
                message = self.unjudged[rid]
            else:
                message = None
            out.append(
                CheckResult(
                    id=f"export::{rid}",
                    requirements=(rid,),
                    kind="export",
                    verdict=verdict,
                    failed_requirements=(rid,) if verdict is Verdict.FAIL else (),
                    message=message,
                    duration=round(share, 4),
                    reproduce=f"ics-conformance validate-export {self.path} --phase {self.phase}"
                    + (f" --format {self.format['source']}" if self.format else ""),
                    evidence=[{"kind": "finding", "count": count, **f.to_json()} for f in examples],
                )
            )
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (for ``result.json`` ``target.export`` and ``--json``)."""
        return {
            "path": self.path,
            **({"format": self.format} if self.format else {}),
            "records": self.records,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "files": [f.__dict__ for f in self.files],
            "requirements": {
                r: {
                    "verdict": self.verdict(r).value,
                    "count": self.count(r),
                    "examples": [f.to_json() for f in self.examples(r)],
                }
                for r in self.judged
            },
            "errors": list(self.errors),
        }


def _fork() -> Any:
    """The fork start method (None where there is none): workers must share this process's
    ``hash()`` key, since the ID hashes they compute are compared with each other."""
    import multiprocessing

    return multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None


def _warm_up() -> None:
    """Compile validators and load bank holidays once, before workers are forked."""
    from datetime import date

    from conformance.domain.workingdays import due_date

    for t in (*RECORD_TYPES, "manifest"):
        validator(t)
    for t in RECORD_TYPES:
        batch_validator(t)
    due_date("core", date(2008, 1, 1))
    prepare_rules()


def _combine(parts: list[FileScan], digest: tuple[int, str] | None) -> FileScan:
    """Merge the scans of the parts of one file: re-based line numbers, the whole file's digest."""
    whole = FileScan(parts[0].name, parts[0].record_type, sink=FindingSink(parts[0].sink.max_examples))
    whole.bytes, whole.sha256 = digest if digest is not None else (parts[-1].bytes, parts[-1].sha256)
    whole.offsets = []
    offset = 0
    seen = None
    for part in parts:
        whole.offsets.append(offset)
        for rid, examples in part.sink.examples.items():
            part.sink.examples[rid] = [replace(f, line=f.line + offset) if f.line is not None else f for f in examples]
        whole.sink.merge(part.sink)
        whole.records += part.records
        whole.duration += part.duration
        whole.read_error = whole.read_error or part.read_error
        if part.seen is not None:
            seen = part.seen if seen is None else seen | part.seen
        for key, segments in part.logs.items():
            whole.logs.setdefault(key, []).extend(segments)
        offset += part.lines
    whole.lines = offset
    whole.seen = seen
    return whole


class _Inline(Executor):
    """Runs tasks immediately in this process (small exports, ``workers=1``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def _read_manifest(
    spec: SourceSpec, size: int, limits: Limits, sink: FindingSink, schema: str = "manifest"
) -> tuple[dict[str, Any] | None, bytes]:
    if size > limits.max_manifest_bytes:
        sink.add(
            EXP_MANIFEST,
            MANIFEST,
            None,
            "",
            f"manifest is {size} bytes, over the {limits.max_manifest_bytes} byte limit; not read",
        )
        return None, b""
    with member(spec, MANIFEST) as stream:
        raw = stream.read(limits.max_manifest_bytes + 1)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        sink.add(EXP_MANIFEST, MANIFEST, None, "", f"manifest is not valid JSON: {exc}")
        return None, raw
    if not validator(schema).is_valid(data):
        for pointer, message in schema_errors(schema, data):
            sink.add(EXP_MANIFEST, MANIFEST, None, pointer, message)
        return (data if isinstance(data, dict) and isinstance(data.get("files"), list) else None), raw
    return data, raw


def _entry_line(raw: bytes, path: str) -> int | None:
    """1-based line of ``"path": "<path>"`` in the manifest text (None if not found)."""
    needle = orjson.dumps(path)
    at = raw.find(needle)
    return raw.count(b"\n", 0, at) + 1 if at >= 0 else None


def _manifest_rules(
    manifest: dict[str, Any] | None, raw: bytes, present: set[str], scans: dict[str, FileScan], sink: FindingSink
) -> None:
    if manifest is None:
        return
    listed: dict[str, int] = {}
    for i, entry in enumerate(manifest.get("files", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        path = entry["path"]
        pointer = f"/files/{i}"
        line = _entry_line(raw, path)
        if path in listed:
            sink.add(EXP_MANIFEST, MANIFEST, line, pointer + "/path", f"{path} listed twice")
            continue
        listed[path] = i
        rtype = entry.get("record_type")
        if isinstance(rtype, str) and path != f"{rtype}.jsonl":
            sink.add(EXP_MANIFEST, MANIFEST, line, pointer + "/record_type", f"{path} listed as record type {rtype!r}")
        scan = scans.get(path)
        if path not in present:
            sink.add(EXP_MANIFEST, MANIFEST, line, pointer + "/path", f"{path} is listed but missing from the export")
            continue
        if scan is None or scan.read_error:
            continue
        if entry.get("count") != scan.records:
            sink.add(
                EXP_MANIFEST,
                MANIFEST,
                line,
                pointer + "/count",
                f"{path}: count {entry.get('count')} but the file holds {scan.records} records",
            )
        if entry.get("bytes") != scan.bytes:
            sink.add(
                EXP_MANIFEST,
                MANIFEST,
                line,
                pointer + "/bytes",
                f"{path}: bytes {entry.get('bytes')} but the file has {scan.bytes} bytes",
            )
        if entry.get("sha256") != scan.sha256:
            sink.add(
                EXP_MANIFEST,
                MANIFEST,
                line,
                pointer + "/sha256",
                f"{path}: sha256 {str(entry.get('sha256'))[:16]}… but the file hashes to {scan.sha256[:16]}…",
            )
    for name in sorted(present - set(listed) - {MANIFEST}):
        sink.add(EXP_MANIFEST, name, None, "", "file in the export but not listed in the manifest")


def validate_export(
    path: str | os.PathLike[str],
    *,
    phase: str = "1B",
    max_examples: int = 20,
    workers: int = 2,
    limits: Limits | None = None,
    kind: str = "bulk",
) -> ExportReport:
    """Validate the export at ``path`` (directory or zip) against ICS-1A-EXP-001..008.

    ``kind`` ``"transfer"`` reads a transfer package (phase 1C): the same files and rules,
    its manifest checked against ``transfer-manifest.schema.json``. The phase 1C files
    (``audit.jsonl`` and ``chronology.jsonl`` in a bulk export, ``chronology.jsonl`` in a
    package) are not unexpected: their manifest entries are checked here, their content by
    :mod:`conformance.export.extensions`.

    Raises :class:`~conformance.errors.UsageError` for a bad argument or missing path and
    :class:`~conformance.errors.InconclusiveError` for an archive that cannot be read.
    """
    if phase not in PHASES:
        raise UsageError(f"unknown phase {phase!r}; expected one of {', '.join(PHASES)}")
    if max_examples < 0:
        raise UsageError("--max-examples must be >= 0")
    if kind not in EXTENSION_FILES:
        raise UsageError(f"unknown export kind {kind!r}; expected one of {', '.join(EXTENSION_FILES)}")
    extensions = EXTENSION_FILES[kind]
    began = time.perf_counter()
    limits = limits or Limits()
    source = open_export(path, limits)
    sink = FindingSink(max_examples)
    report = ExportReport(str(path), phase, sink)
    for problem in source.problems:
        sink.add(EXP_MANIFEST, problem.name, None, "", problem.message)

    expected = {f"{t}.jsonl": t for t in RECORD_TYPES}
    present = set(source.members)
    if MANIFEST not in present:
        sink.add(EXP_PRESENT, MANIFEST, None, "", "manifest.json missing from the export")
    for fname in expected:
        if fname not in present:
            sink.add(
                EXP_PRESENT, fname, None, "", f"{fname} missing from the export (one file per record type is required)"
            )
    for name in sorted(present - set(expected) - set(extensions) - {MANIFEST}):
        sink.add(EXP_MANIFEST, name, None, "", "unexpected file in the export (not a record type file)")

    manifest, raw_manifest = None, b""
    if MANIFEST in present:
        try:
            schema = "transfer-manifest" if kind == "transfer" else "manifest"
            manifest, raw_manifest = _read_manifest(source.spec, source.members[MANIFEST], limits, sink, schema)
        except Exception as exc:
            sink.crashed(EXP_MANIFEST, MANIFEST, exc)

    total = sum(source.members.get(f, 0) for f in expected)
    parallel = workers > 1 and total >= PARALLEL_THRESHOLD and _fork() is not None
    _warm_up()
    with tempfile.TemporaryDirectory(prefix="ics-export-") as work:
        executor: Executor = ProcessPoolExecutor(max_workers=workers, mp_context=_fork()) if parallel else _Inline()
        try:
            scans = _Pipeline(source, executor, work, total, workers, parallel, max_examples, limits, report).run()
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            close_tables()
    for name in sorted(set(extensions) & present):
        try:
            records, size, digest = file_stats(source.spec, name, limits)
        except Exception as exc:
            sink.crashed(EXP_MANIFEST, name, exc)
            continue
        scans[name] = FileScan(name, extensions[name], records=records, bytes=size, sha256=digest)
        report.files.append(FileStats(name, extensions[name], records, size, digest, 0.0))
    try:
        _manifest_rules(manifest, raw_manifest, present - {p.name for p in source.problems}, scans, sink)
    except Exception as exc:
        sink.crashed(EXP_MANIFEST, MANIFEST, exc)
    report.unjudged = _unjudged(manifest is not None, present)
    report.seconds = time.perf_counter() - began
    return report


#: The record files each cross-file requirement needs before it can be judged at all.
_NEEDS: dict[str, tuple[str, ...]] = {
    "ICS-1A-EXP-005": ("children.jsonl", "practitioners.jsonl", "assessments.jsonl"),
    "ICS-1A-EXP-006": ("children.jsonl", "referrals.jsonl", "assessments.jsonl", "visits.jsonl"),
    "ICS-1A-EXP-007": ("children.jsonl",),
    "ICS-1A-EXP-008": ("assessments.jsonl", "visits.jsonl"),
    REC_LOCAL_ID: ("children.jsonl",),
}


def _unjudged(has_manifest: bool, present: set[str]) -> dict[str, str]:
    """Requirements that could not be judged: a rule over files that are not there is not a PASS."""
    out: dict[str, str] = {}
    if not has_manifest:
        out[EXP_MANIFEST] = "not judged: without a readable manifest.json counts and sha256 cannot be compared"
    records = sorted(f"{t}.jsonl" for t in RECORD_TYPES if f"{t}.jsonl" in present)
    if not records:
        for rid in ("ICS-1A-EXP-003", "ICS-1A-EXP-004", *_NEEDS):
            out[rid] = "not judged: the export holds no record file"
        return out
    for rid, needed in _NEEDS.items():
        missing = [f for f in needed if f not in present]
        if missing:
            out[rid] = f"not judged: {', '.join(missing)} missing from the export"
    return out


class _Pipeline:
    """Scans the record files on one pool, each as soon as the tables it needs exist.

    Children and practitioners are scanned first, referrals and assessments right behind
    them; once the first two are read their tables are written and notes, allocations and
    aliases follow; once referrals and assessments are read the coordinator runs their
    cross-file rules (while the workers go on) and visits follow. Tables reach the
    workers as files they map read-only.
    """

    def __init__(
        self,
        source: Any,
        executor: Executor,
        work: str,
        total: int,
        workers: int,
        parallel: bool,
        max_examples: int,
        limits: Limits,
        report: ExportReport,
    ) -> None:
        self.source, self.spec, self.executor, self.work = source, source.spec, executor, work
        self.workers, self.parallel, self.limits, self.report = workers, parallel, limits, report
        self.part_size = max(MIN_PART, min(MAX_PART, total // max(1, workers * PARTS_PER_WORKER)))
        self.kwargs: dict[str, Any] = {"max_examples": max_examples, "limits": limits, "work": work}
        self.expected = {f"{t}.jsonl": t for t in RECORD_TYPES}
        self.scans: dict[str, FileScan] = {}
        self.jobs: dict[str, tuple[list[Future[Any]], Future[Any] | None]] = {}
        self.dedupes: dict[str, Future[Any]] = {}
        self.cross = FindingSink(max_examples)

    def reader(self, file: str, lines: Any) -> dict[int, Any]:
        return dict(records_at(lambda: member(self.spec, file), lines, self.limits.max_line_bytes))

    def scan(self, names: Sequence[str], context: dict[str, str] | None = None) -> None:
        """Submit the scans of ``names`` (largest first; large files in parts)."""
        spec, members = self.spec, self.source.members
        for n in sorted((n for n in names if n in members), key=lambda n: -members[n]):
            size, bits = members[n], partition_bits(members[n])
            kwargs: dict[str, Any] = {**self.kwargs, "context": context or {}, "bits": bits}
            if self.parallel and size > self.part_size:
                directory = spec.kind == "directory"
                count = -(-size // self.part_size) if directory else 1
                count = -(-count // self.workers) * self.workers  # the last parts end together
                bounds: list[int | None] = [size * k // count for k in range(count)] + [None]
                digest = self.executor.submit(hash_member, spec, n) if directory else None
                parts = [
                    self.executor.submit(
                        scan_file,
                        spec,
                        n,
                        self.expected[n],
                        byte_range=(cast(int, a), b),  # only the last bound is None
                        part=k,
                        hash_all=not directory and b is None,
                        **kwargs,
                    )
                    for k, (a, b) in enumerate(zip(bounds, bounds[1:]))
                ]
                self.jobs[n] = (parts, digest)
            else:
                self.jobs[n] = ([self.executor.submit(scan_file, spec, n, self.expected[n], **kwargs)], None)

    def collect(self, names: Sequence[str]) -> None:
        """Wait for the scans of ``names``; then find their duplicate IDs (on the pool)."""
        for n in names:
            if n not in self.jobs:
                continue
            futures, digest = self.jobs.pop(n)
            try:
                parts = [f.result() for f in futures]
                self.scans[n] = parts[0] if len(parts) == 1 else _combine(parts, digest.result() if digest else None)
            except Exception as exc:
                for rid in EXPORT_REQUIREMENTS[1:]:
                    self.report.sink.crashed(rid, n, exc)
                self.report.errors.append(f"{n}: scan crashed: {type(exc).__name__}: {exc}")
                continue
            if not self.scans[n].read_error:
                self.dedupes[n] = self.executor.submit(
                    duplicates,
                    self.spec,
                    n,
                    self.expected[n],
                    offsets=self.scans[n].offsets,
                    logs=self.scans[n].logs,
                    **self.kwargs,
                )

    def tables(self) -> rules.Tables:
        readable = {n: s for n, s in self.scans.items() if not s.read_error}
        return rules.Tables(
            self.work, {n: len(s.offsets) for n, s in readable.items()}, {n: s.offsets for n, s in readable.items()}
        )

    def table(self, name: str, *args: Any) -> dict[str, str]:
        """Write the table ``name`` for the rules and the workers: ``{name: its directory}``."""
        directory = os.path.join(self.work, "tables", name)
        self.tables().save_keyed(name, directory, *args)
        return {name: directory}

    def run(self) -> dict[str, FileScan]:
        file = lambda t: f"{t}.jsonl"  # noqa: E731  (a one-line naming helper, read inline)
        self.scan([file("children"), file("practitioners")])
        self.scan([file("referrals"), file("assessments")])
        self.collect([file("children"), file("practitioners")])
        context: dict[str, str] = {}
        try:
            context.update(self.table("children", ("death",), self.tables().latest("children")))
            context.update(self.table("practitioners"))
        except Exception as exc:
            for rid in (EXP_REFS, EXP_DATES, EXP_TIMESCALES):
                self.cross.crashed(rid, "index", exc)
            context.clear()
        self.scan([file(t) for t in ("case_notes", "allocations", "aliases")], context)
        self.collect([file("referrals"), file("assessments")])
        context = self.assessment_rules(context.get("children"))
        release_memory()
        self.scan([file("visits")], context)
        self.collect(list(self.jobs))
        for n, future in self.dedupes.items():
            try:
                self.scans[n].sink.merge(future.result())
            except Exception as exc:
                self.scans[n].sink.crashed(EXP_UNIQUE, n, exc)
        self.finish(context.get("assessments"))
        return self.scans

    def assessment_rules(self, children: str | None) -> dict[str, str]:
        """Referral and assessment rules (EXP-005/006); returns the context of the visits (the
        assessments table, each with its child's date of death)."""
        if children is None:
            return {}
        cross, tables = self.cross, self.tables()
        try:
            kept = tables.latest("referrals")
            try:
                rules.check_referrals(cross, tables, kept, load_table(children), self.reader)
            except Exception as exc:
                cross.crashed(EXP_REFS, "referrals", exc)
                cross.crashed(EXP_DATES, "referrals", exc)
            release_memory()
            referrals = self.table("referrals", ("received",), kept)["referrals"]
            kept = tables.latest("assessments")
            try:
                death = rules.check_assessments(
                    cross, tables, kept, load_table(children), load_table(referrals), self.reader
                )
            except Exception as exc:
                cross.crashed(EXP_REFS, "assessments", exc)
                cross.crashed(EXP_DATES, "assessments", exc)
                death = np.zeros(len(tables.column("assessments", "start")), np.int32)
            release_memory()
            return self.table("assessments", ("start", "completed", "line"), kept, {"death": death})
        except Exception as exc:
            for rid in (EXP_REFS, EXP_DATES, EXP_TIMESCALES):
                cross.crashed(rid, "index", exc)
            return {}

    def finish(self, assessments: str | None) -> None:
        """Merge the findings in file order, then the cross-file ones, then EXP-008's completions."""
        report, sink, scans = self.report, self.report.sink, self.scans
        unreadable = {n for n, s in scans.items() if s.read_error}
        for n in sorted(unreadable):
            report.errors.append(scans[n].read_error or n)
            for rid in EXPORT_REQUIREMENTS[1:]:
                sink.crashed(rid, n, OSError(scans[n].read_error))
        for n in sorted(scans):
            sink.merge(scans[n].sink)
            s = scans[n]
            report.files.append(FileStats(n, s.record_type, s.records, s.bytes, s.sha256, round(s.duration, 3)))
        sink.merge(self.cross)
        if assessments is None:
            return
        try:
            start, completed, line = (
                np.load(os.path.join(assessments, f"{c}.npy")) for c in ("start", "completed", "line")
            )
            if "visits.jsonl" in scans and "visits.jsonl" not in unreadable:
                packed = scans["visits.jsonl"].seen
                seen = np.unpackbits(packed, count=len(start)).astype(bool) if packed is not None else None
                rules.check_seen(sink, start, completed, line, seen, self.reader)
            elif "assessments.jsonl" in scans:
                rules.check_seen(
                    sink, start, completed, line, None, self.reader
                )  # no visits at all: every completion is unseen
        except Exception as exc:
            sink.crashed(EXP_TIMESCALES, "visits", exc)
