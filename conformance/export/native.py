"""Adapted exports: CSV files streamed into canonical records, judged by the same rules.

:func:`validate_native` reads the export (directory or zip) through an
:class:`~conformance.export.mapping.ExportFormat`: each CSV file is streamed, row by row,
into a canonical JSON Lines file in a temporary directory (never held in memory), with
a line map (canonical line -> native CSV line) written beside it; then
:func:`~conformance.export.validate.validate_export` runs unchanged over the canonical
files, and every finding is translated back: the native file, the CSV line where the
record starts, the column (header name and 1-based index), native file names in messages.

What only the native file can show is judged here, before conversion:

* a row that is not CSV (bad quoting, a field over the line limit), a blank line or a
  row with more or fewer cells than the header: ICS-1A-EXP-003, the row is not read
  (as an unparseable JSON line is not);
* a cell that is not text in the format's encoding, a date not in the stated format, a
  code not in its code list: ICS-1A-EXP-003 naming the column; the record keeps its ID
  (so one bad cell does not cascade into missing references) but none of its data;
* the control file (the format's manifest): every record file listed once with its row
  count and sha256 (and bytes), no file missing or unexpected: ICS-1A-EXP-002.

Text that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) is
data like any other: no ICS requirement forbids it, so it is not a finding; the harness
only ever shows it quoted and escaped.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from conformance.errors import UsageError
from conformance.export.archive import Limits, SourceSpec, member, open_export
from conformance.export.findings import EXP_MANIFEST, EXP_PRESENT, EXP_SCHEMA, Finding, FindingSink
from conformance.export.mapping import CellError, ExportFormat, RecordFile
from conformance.export.records import RECORD_TYPES, schema_errors

#: Rows converted and written at a time.
ROWS = 4096
#: Columns a header may have (a hostile header of millions of columns is refused, not indexed).
MAX_COLUMNS = 4096
if TYPE_CHECKING:
    from conformance.export.validate import ExportReport

_SURROGATE = re.compile("[\udc80-\udcff]")


class _Overlong(Exception):
    pass


class _Tap(io.RawIOBase):
    """A binary stream that hashes and counts what is read, refuses a line over the limit and
    notes whether any byte is not text in the encoding (``dirty``)."""

    def __init__(self, stream: Any, encoding: str, max_line: int) -> None:
        self._stream = stream
        self.hasher = hashlib.sha256()
        self.bytes = 0
        self.max_line = max_line
        self.run = 0  # bytes since the last newline
        self.dirty = False
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(min(len(buffer), 1 << 20))
        n = len(data)
        buffer[:n] = data
        if not n:
            return 0
        self.hasher.update(data)
        self.bytes += n
        first, last = data.find(b"\n"), data.rfind(b"\n")
        if first < 0:
            self.run += n
        else:
            if self.run + first > self.max_line:
                raise _Overlong
            self.run = n - last - 1
        if self.run > self.max_line:
            raise _Overlong
        if not self.dirty:
            try:
                self._decoder.decode(data)
            except UnicodeDecodeError:
                self.dirty = True
        return n


@dataclass
class NativeScan:
    """What the conversion of one native file found and wrote."""

    name: str
    record_type: str
    records: int = 0  # data rows (the header and blank lines aside)
    bytes: int = 0
    sha256: str = ""
    seconds: float = 0.0
    sink: FindingSink = field(default_factory=FindingSink)
    columns: dict[str, int] = field(default_factory=dict)  # header name -> 1-based index
    stub_errors: int = 0  # EXP-003 findings the canonical scan will make of the rows written as bare IDs
    written: int = 0
    canonical_bytes: int = 0
    canonical_sha256: str = ""
    unusable: str | None = None  # why the file's data could not be read (header, encoding, line limit)


def _column_error(cell: str, encoding: str) -> str:
    raw = cell.encode("utf-8", "surrogateescape")
    bad = next((ch for ch in cell if "\udc80" <= ch <= "\udcff"), "\udc80")
    return f"not {encoding} text (byte 0x{ord(bad) - 0xDC00:02X}); value {raw!r}"


def convert_file(
    spec: SourceSpec, fmt: ExportFormat, record_type: str, out_dir: str, max_examples: int, limits: Limits
) -> NativeScan:
    """Stream the native file of ``record_type`` into ``out_dir/canonical/<type>.jsonl`` and its line map
    (native start line of each record, int64; negative: written as its ID alone) into ``out_dir/lines/<type>``."""
    began = time.perf_counter()
    rf = fmt.files[record_type]
    scan = NativeScan(rf.file, record_type, sink=FindingSink(max_examples))
    out_path = os.path.join(out_dir, "canonical", f"{record_type}.jsonl")
    canonical = hashlib.sha256()
    csv.field_size_limit(limits.max_line_bytes)
    with (
        member(spec, rf.file) as raw,
        open(out_path, "wb") as out,
        open(os.path.join(out_dir, "lines", record_type), "wb") as line_map,
    ):
        tap = _Tap(raw, _codec(fmt.encoding), limits.max_line_bytes)
        text = io.TextIOWrapper(
            io.BufferedReader(tap, 1 << 20), encoding=_codec(fmt.encoding), errors="surrogateescape", newline=""
        )
        reader = csv.reader(text, delimiter=fmt.delimiter, quotechar=fmt.quote, strict=True)
        try:
            for lines, records in _convert(reader, tap, rf, fmt, scan):
                if records:
                    data = b"".join(records)
                    out.write(data)
                    canonical.update(data)
                    scan.canonical_bytes += len(data)
                    np.asarray(lines, np.int64).tofile(line_map)
                    scan.written += len(records)
        except _Overlong:
            line = reader.line_num + 1
            scan.sink.add(
                EXP_SCHEMA,
                rf.file,
                None,
                "",
                f"line {line} or a line near it is longer than the {limits.max_line_bytes} byte limit; "
                "the rest of the file is not read",
            )
            scan.unusable = f"{rf.file} could not be read to the end (a line over the length limit)"
        # the rest of the file is hashed too (the control file's sha256 covers every byte)
        while block := raw.read(1 << 20):
            tap.hasher.update(block)
            tap.bytes += len(block)
    scan.bytes, scan.sha256 = tap.bytes, tap.hasher.hexdigest()
    scan.canonical_sha256 = canonical.hexdigest()
    scan.seconds = time.perf_counter() - began
    return scan


def _codec(encoding: str) -> str:
    """A UTF-8 file may start with a byte-order mark."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _convert(
    reader: Any, tap: _Tap, rf: RecordFile, fmt: ExportFormat, scan: NativeScan
) -> Iterator[tuple[list[int], list[bytes]]]:
    """Yield ``(native start lines, canonical JSON lines)`` batches; findings go to ``scan.sink``."""
    add, name, enc = scan.sink.add, rf.file, fmt.encoding
    header = _header(reader, rf, fmt, scan)
    if header is None:
        return
    width, plan, missing = header
    plain = [(n, i) for n, i, convert, _ in plan if i >= 0 and convert is None]
    converted = [(n, i, convert) for n, i, convert, _ in plan if i >= 0 and convert is not None]
    constants = {n: value for n, i, _, value in plan if i < 0}
    mapped = [i for _, i, _, _ in plan if i >= 0]
    dumps = orjson.dumps
    lines: list[int] = []
    records: list[bytes] = []
    previous = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            start, previous = previous + 1, reader.line_num
            scan.records += 1
            add(EXP_SCHEMA, name, start, "", f"not a CSV row ({exc}); not read")
            continue
        start, previous = previous + 1, reader.line_num
        if not row:
            add(EXP_SCHEMA, name, start, "", "blank line (CSV needs one record per row)")
            continue
        scan.records += 1
        if len(row) != width:
            add(EXP_SCHEMA, name, start, "", f"row has {len(row)} cells, the header {width}; not read")
            continue
        record: dict[str, Any] = {n: row[i] or None for n, i in plain}
        if constants:
            record.update(constants)
        failed: list[tuple[str, int, str]] | None = None
        undecodable = {i for i in mapped if _SURROGATE.search(row[i])} if tap.dirty else None
        if undecodable:
            failed = [(n, i, _column_error(row[i], enc)) for n, i, _, _ in plan if i in undecodable]
        for field_name, index, convert in converted:
            cell = row[index]
            if not cell:
                record[field_name] = None
            elif undecodable and index in undecodable:
                continue
            else:
                try:
                    record[field_name] = convert(cell)
                except CellError as exc:
                    failed = (failed or []) + [(field_name, index, str(exc))]
        if failed or missing:
            for field_name, index, message in sorted(failed or (), key=lambda f: f[1]):
                column = rf.column_of(field_name) or ""
                add(
                    EXP_SCHEMA,
                    name,
                    start,
                    "/" + field_name,
                    f"{column} {message}",
                    column=column,
                    column_index=index + 1,
                )
            identifier = record.get("id")
            keep = type(identifier) is str and not any(f[0] == "id" for f in failed or ())
            record = {"id": identifier} if keep else {}  # an ID that is not text is not kept
            scan.stub_errors += len(schema_errors(rf.record_type, record))
            lines.append(-start)
        else:
            lines.append(start)
        records.append(dumps(record) + b"\n")
        if len(records) >= ROWS:
            yield lines, records
            lines, records = [], []
    if records:
        yield lines, records


def _header(
    reader: Any, rf: RecordFile, fmt: ExportFormat, scan: NativeScan
) -> tuple[int, list[tuple[str, int, Any, Any]], bool] | None:
    """Read the header row: ``(width, plan, columns missing)`` (None: no header at all)."""
    name = rf.file
    try:
        header = next(reader)
    except StopIteration:
        scan.sink.add(EXP_SCHEMA, name, None, "", "empty file: no header row")
        scan.unusable = f"{name} has no header row"
        return None
    except csv.Error as exc:
        scan.sink.add(EXP_SCHEMA, name, 1, "", f"header is not a CSV row ({exc})")
        scan.unusable = f"{name} has no readable header row"
        return None
    if len(header) > MAX_COLUMNS:
        scan.sink.add(EXP_SCHEMA, name, 1, "", f"header has {len(header)} columns, over the limit of {MAX_COLUMNS}")
        scan.unusable = f"{name} has {len(header)} columns"
        return None
    scan.columns = {}
    repeated = []
    for k, column in enumerate(header, 1):
        if column in scan.columns:
            repeated.append(column)
        scan.columns.setdefault(column, k)
    wanted = [f.column for f in rf.fields if f.column is not None]
    absent = [c for c in wanted if c not in scan.columns]
    ambiguous = sorted(set(repeated) & set(wanted))
    if absent or ambiguous:
        problems = []
        if absent:
            problems.append(f"lacks column{'s' if len(absent) > 1 else ''} {', '.join(map(repr, absent))}")
        if ambiguous:
            problems.append(f"repeats column{'s' if len(ambiguous) > 1 else ''} {', '.join(map(repr, ambiguous))}")
        scan.sink.add(
            EXP_SCHEMA,
            name,
            1,
            "",
            f"header {' and '.join(problems)} (format {fmt.name}); the rows' data cannot be read",
        )
        scan.unusable = f"{name}: header {' and '.join(problems)}"
    plan: list[tuple[str, int, Any, Any]] = []
    for spec in rf.fields:
        index = scan.columns[spec.column] - 1 if spec.column in scan.columns else -1
        if spec.column is None:
            plan.append((spec.name, -1, None, spec.value))
        elif index < 0:
            plan.append((spec.name, -1, None, None))
        else:
            plan.append((spec.name, index, fmt.converter(spec), None))
    return len(header), plan, bool(absent or ambiguous)


# -- the control file -----------------------------------------------------------------------
def check_control(
    spec: SourceSpec,
    fmt: ExportFormat,
    scans: dict[str, NativeScan],
    present: set[str],
    sink: FindingSink,
    limits: Limits,
) -> bool:
    """EXP-002 against the format's control file; False when it could not be read at all."""
    m = fmt.manifest
    assert m is not None
    by_file = {fmt.files[t].file: t for t in RECORD_TYPES}
    try:
        with member(spec, m.file) as raw:
            data = raw.read(limits.max_manifest_bytes + 1)
    except OSError as exc:
        sink.add(EXP_MANIFEST, m.file, None, "", f"control file unreadable: {exc}")
        return False
    if len(data) > limits.max_manifest_bytes:
        sink.add(
            EXP_MANIFEST, m.file, None, "", f"control file over the {limits.max_manifest_bytes} byte limit; not read"
        )
        return False
    try:
        text = data.decode(_codec(fmt.encoding))
    except UnicodeDecodeError as exc:
        sink.add(EXP_MANIFEST, m.file, None, "", f"control file is not {fmt.encoding} text ({exc.reason})")
        return False
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter, quotechar=fmt.quote, strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        sink.add(EXP_MANIFEST, m.file, reader.line_num, "", f"control file is not CSV ({exc})")
        return False
    if not rows:
        sink.add(EXP_MANIFEST, m.file, None, "", "control file is empty (no header row)")
        return False
    header = {c: k for k, c in reversed(list(enumerate(rows[0])))}
    wanted = [c for c in (m.file_column, m.count_column, m.sha256_column, m.bytes_column) if c is not None]
    absent = [c for c in wanted if c not in header]
    if absent:
        sink.add(EXP_MANIFEST, m.file, 1, "", f"control file header lacks {', '.join(map(repr, absent))}")
        return False
    listed: set[str] = set()
    for line, row in enumerate(rows[1:], 2):
        if not row:
            continue

        def at(column: str, message: str, line: int = line) -> None:
            sink.add(EXP_MANIFEST, m.file, line, "", message, column=column, column_index=header[column] + 1)

        if len(row) != len(rows[0]):
            sink.add(EXP_MANIFEST, m.file, line, "", f"row has {len(row)} cells, the header {len(rows[0])}")
            continue
        path = row[header[m.file_column]]
        if path in listed:
            at(m.file_column, f"{path!r} listed twice")
            continue
        listed.add(path)
        if path not in by_file:
            at(m.file_column, f"{path!r} is not a record file of format {fmt.name}")
            continue
        if path not in present:
            at(m.file_column, f"{path} is listed but missing from the export")
            continue
        scan = scans.get(by_file[path])
        if scan is None:
            continue
        for column, actual, what in (
            (m.count_column, scan.records, "rows"),
            (m.bytes_column, scan.bytes, "bytes"),
        ):
            if column is None:
                continue
            cell = row[header[column]].strip()
            if not cell.isdigit() or int(cell) != actual:
                at(column, f"{path}: {column} {cell!r} but the file holds {actual} {what}")
        digest = row[header[m.sha256_column]].strip().lower()
        if digest != scan.sha256:
            at(m.sha256_column, f"{path}: sha256 {digest[:16]!r}… but the file hashes to {scan.sha256[:16]}…")
    for path in sorted(set(by_file) & present - listed):
        sink.add(EXP_MANIFEST, path, None, "", f"file in the export but not listed in {m.file}")
    return True


# -- the whole run ---------------------------------------------------------------------------
def _rename(text: str, names: dict[str, str]) -> str:
    return _CANONICAL_NAMES.sub(lambda m: names.get(m.group(0), m.group(0)), text)


_CANONICAL_NAMES = re.compile("|".join(re.escape(f"{t}.jsonl") for t in RECORD_TYPES))


def validate_native(
    path: str | os.PathLike[str],
    fmt: ExportFormat,
    *,
    phase: str = "1B",
    max_examples: int = 20,
    workers: int = 2,
    limits: Limits | None = None,
) -> ExportReport:
    """Validate the export at ``path`` written in format ``fmt`` (see the module docstring).

    Returns an :class:`~conformance.export.validate.ExportReport` whose findings name the
    native files, lines and columns.
    """
    from conformance.export.validate import (
        _NEEDS,
        PARALLEL_THRESHOLD,
        ExportReport,
        FileStats,
        _fork,
        _Inline,
        validate_export,
    )

    if phase == "1C":
        raise UsageError("--format: adapted exports are judged for phases 1A and 1B (1C files are JSON Lines only)")
    began = time.perf_counter()
    limits = limits or Limits()
    source = open_export(path, limits)
    native = FindingSink(max_examples)
    for problem in source.problems:
        native.add(EXP_MANIFEST, problem.name, None, "", problem.message)
    present = set(source.members)
    by_type = {t: fmt.files[t].file for t in RECORD_TYPES}
    control = fmt.manifest.file if fmt.manifest else None
    for name in sorted(present - set(by_type.values()) - {control}):
        native.add(EXP_MANIFEST, name, None, "", f"unexpected file in the export (not a file of format {fmt.name})")
    if control is not None and control not in present:
        native.add(EXP_PRESENT, control, None, "", f"{control} (the control file) missing from the export")
    todo = [t for t in RECORD_TYPES if by_type[t] in present]
    total = sum(source.members[by_type[t]] for t in todo)
    scans: dict[str, NativeScan] = {}
    unreadable: dict[str, NativeScan] = {}
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ics-export-native-") as work:
        canonical = os.path.join(work, "canonical")
        os.makedirs(canonical)
        os.makedirs(os.path.join(work, "lines"))
        parallel = workers > 1 and total >= PARALLEL_THRESHOLD and _fork() is not None
        from concurrent.futures import Executor, ProcessPoolExecutor

        executor: Executor = ProcessPoolExecutor(max_workers=workers, mp_context=_fork()) if parallel else _Inline()
        try:
            ordered = sorted(todo, key=lambda t: -source.members[by_type[t]])
            futures = {
                t: executor.submit(convert_file, source.spec, fmt, t, work, max_examples, limits) for t in ordered
            }
            for t, future in futures.items():
                try:
                    scans[t] = future.result()
                except OSError as exc:
                    errors.append(f"{by_type[t]}: read failed: {exc}")
                except Exception as exc:  # zlib / zip CRC errors and the like
                    errors.append(f"{by_type[t]}: read failed: {type(exc).__name__}: {exc}")
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        for t in todo:
            if t not in scans:  # unreadable: judged as an empty file, its requirements ERROR (below)
                open(os.path.join(canonical, f"{t}.jsonl"), "wb").close()
                open(os.path.join(work, "lines", t), "wb").close()
                scans_empty = NativeScan(by_type[t], t)
                scans_empty.canonical_sha256 = hashlib.sha256().hexdigest()
                unreadable[t] = scans_empty
        _write_manifest(canonical, fmt, {**scans, **unreadable})
        stub_errors = sum(s.stub_errors for s in scans.values())
        report = validate_export(
            canonical, phase=phase, max_examples=max_examples + min(stub_errors, 10 * max_examples), workers=workers
        )
        sink = _translate(report, fmt, scans, work, max_examples, stub_errors)
    control_read = False
    if fmt.manifest is not None and control in present:
        try:
            control_read = check_control(source.spec, fmt, scans, present, native, limits)
        except Exception as exc:
            native.crashed(EXP_MANIFEST, control or "", exc)
            control_read = True
    for scan in scans.values():
        native.merge(scan.sink)
    _merge_sorted(sink, native, [by_type[t] for t in RECORD_TYPES])
    out = ExportReport(str(path), phase, sink, errors=[*errors, *(_rename(e, by_type) for e in report.errors)])
    out.format = fmt.describe()
    for t in RECORD_TYPES:
        if t in scans:
            s = scans[t]
            out.files.append(FileStats(s.name, t, s.records, s.bytes, s.sha256, round(s.seconds, 3)))
    out.unjudged = {r: _rename(why, by_type) for r, why in report.unjudged.items() if r != EXP_MANIFEST}
    if fmt.manifest is None:
        out.unjudged[EXP_MANIFEST] = (
            f"not judged: format {fmt.name} has no control file (no counts or sha256 to compare)"
        )
    elif not control_read:
        out.unjudged[EXP_MANIFEST] = f"not judged: without a readable {control} counts and sha256 cannot be compared"
    for t, scan in scans.items():
        if scan.unusable:  # its data were not read: what the rules over it found would be side effects
            for rid, needed in _NEEDS.items():
                if f"{t}.jsonl" in needed:
                    out.unjudged.setdefault(rid, f"not judged: {scan.unusable}")
                    sink.counts.pop(rid, None)
                    sink.examples.pop(rid, None)
                    sink.also.pop(rid, None)
    for t in todo:
        if t not in scans:
            for rid in (r for r in out.requirements[2:] if r not in out.unjudged):
                sink.crashed(rid, by_type[t], OSError(f"{by_type[t]} could not be read"))
    out.seconds = time.perf_counter() - began
    return out


def _write_manifest(work: str, fmt: ExportFormat, scans: dict[str, NativeScan]) -> None:
    """The canonical manifest of the converted files (its own checks are replaced by the control file's)."""
    files = [
        {
            "path": f"{t}.jsonl",
            "record_type": t,
            "count": s.written,
            "bytes": s.canonical_bytes,
            "sha256": s.canonical_sha256,
        }
        for t, s in scans.items()
    ]
    manifest = {
        "spec_version": "adapted",
        "generated_at": "1970-01-01T00:00:00Z",
        "producer": {"supplier": "ics-conformance", "product": f"export format {fmt.name}", "version": fmt.version},
        "files": files,
    }
    with open(os.path.join(work, "manifest.json"), "wb") as fh:
        fh.write(orjson.dumps(manifest))


def _native_line(work: str, record_type: str, line: int) -> int:
    """The native start line of canonical line ``line`` (negative: the record was written as its ID alone)."""
    path = os.path.join(work, "lines", record_type)
    value = np.fromfile(path, np.int64, 1, offset=(line - 1) * 8)
    return int(value[0]) if len(value) else 0


def _translate(
    report: Any, fmt: ExportFormat, scans: dict[str, NativeScan], work: str, max_examples: int, stub_errors: int
) -> FindingSink:
    """The canonical run's findings, in native terms (EXP-002 comes from the control file instead)."""
    by_file = {f"{t}.jsonl": t for t in RECORD_TYPES}
    names = {f"{t}.jsonl": fmt.files[t].file for t in RECORD_TYPES}
    source: FindingSink = report.sink
    sink = FindingSink(max_examples)
    for requirement, count in source.counts.items():
        if requirement == EXP_MANIFEST:
            if count:  # the harness wrote that manifest: a mismatch is its own bug
                sink.crashed(EXP_MANIFEST, "adapter", RuntimeError(f"canonical manifest mismatch: {source.examples}"))
            continue
        kept = []
        for f in source.examples.get(requirement, []):
            record_type = by_file.get(f.file)
            if record_type is None or f.line is None:
                kept.append(replace(f, file=names.get(f.file, f.file), message=_rename(f.message, names)))
                continue
            line = _native_line(work, record_type, f.line)
            if line < 0 and requirement == EXP_SCHEMA:
                continue  # a row already reported cell by cell, written as its ID alone
            rf = fmt.files[record_type]
            field_name = f.pointer.split("/")[1] if f.pointer.startswith("/") else ""
            column = rf.column_of(field_name) if field_name else None
            index = scans[record_type].columns.get(column) if column else None
            kept.append(
                replace(
                    f,
                    file=rf.file,
                    line=abs(line) or None,
                    message=_rename(f.message, names),
                    column=column,
                    column_index=index,
                )
            )
        sink.counts[requirement] = count - (stub_errors if requirement == EXP_SCHEMA else 0)
        sink.examples[requirement] = kept[:max_examples]
        if sink.counts[requirement] <= 0:
            del sink.counts[requirement]
    sink.also = dict(source.also)
    for requirement, message in source.errors.items():
        sink.errors.setdefault(requirement, _rename(message, names))
    return sink


def _merge_sorted(sink: FindingSink, native: FindingSink, order: list[str]) -> None:
    """Merge ``native`` into ``sink``; each requirement's examples in file (format order) then line order."""
    rank = {name: k for k, name in enumerate(order)}

    def key(f: Finding) -> tuple[int, int, int]:
        return (rank.get(f.file, len(rank)), f.line or 0, f.column_index or 0)

    for requirement, count in native.counts.items():
        sink.counts[requirement] = sink.counts.get(requirement, 0) + count
        both = sorted([*sink.examples.get(requirement, []), *native.examples.get(requirement, [])], key=key)
        sink.examples[requirement] = both[: sink.max_examples]
    for requirement, message in native.errors.items():
        sink.errors.setdefault(requirement, message)
