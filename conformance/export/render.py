"""A canonical export written out in a mapped format (the inverse of a mapping).

Used to build the adapted-format fixtures and benchmarks from the synthetic canonical
export: ``render_native(canonical_dir, fmt, out_dir)`` streams each JSON Lines file into
the format's CSV file (columns in mapping order, dates and codes in native form) and
writes the control file. Constant fields are not written (the format has no column).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from conformance.export.mapping import ExportFormat, FieldSpec
from conformance.export.records import RECORD_TYPES


def _writer(fmt: ExportFormat, spec: FieldSpec) -> Callable[[Any], str]:
    """Canonical value -> native cell."""
    if spec.codes is not None:
        inverse: dict[Any, str] = {}
        for native, value in fmt.code_lists[spec.codes].items():
            inverse.setdefault(value, native)
        return lambda v: "" if v is None else inverse[v]
    if spec.kind == "date":
        pattern = spec.format or "%Y-%m-%d"
        return lambda v: "" if v is None else date.fromisoformat(v).strftime(pattern)
    if spec.kind == "datetime":
        pattern = spec.format or "%Y-%m-%dT%H:%M:%S%z"
        zone = UTC if spec.timezone in (None, "UTC") else ZoneInfo(str(spec.timezone))
        return lambda v: (
            "" if v is None else datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(zone).strftime(pattern)
        )
    return lambda v: "" if v is None else str(v)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def render_native(canonical: Path, fmt: ExportFormat, out: Path) -> Path:
    """Write the canonical export at ``canonical`` (a directory) into ``out`` in format ``fmt``."""
    out.mkdir(parents=True, exist_ok=True)
    control: list[tuple[str, int]] = []
    for record_type in RECORD_TYPES:
        rf = fmt.files[record_type]
        columns = [(s.column, s.name, _writer(fmt, s)) for s in rf.fields if s.column is not None]
        count = 0
        with (
            open(canonical / f"{record_type}.jsonl", "rb") as source,
            open(out / rf.file, "w", encoding=fmt.encoding, newline="") as target,
        ):
            writer = csv.writer(target, delimiter=fmt.delimiter, quotechar=fmt.quote, lineterminator="\n")
            writer.writerow([c for c, _, _ in columns])
            for line in source:
                record = orjson.loads(line)
                writer.writerow([convert(record.get(name)) for _, name, convert in columns])
                count += 1
        control.append((rf.file, count))
    if fmt.manifest is not None:
        write_control(out, fmt, dict(control))
    return out


def write_control(out: Path, fmt: ExportFormat, counts: dict[str, int]) -> None:
    """(Re)write the control file of the native export at ``out`` from its files as they are."""
    m = fmt.manifest
    assert m is not None
    header = [m.file_column, m.count_column, *([m.bytes_column] if m.bytes_column else []), m.sha256_column]
    with open(out / m.file, "w", encoding=fmt.encoding, newline="") as fh:
        writer = csv.writer(fh, delimiter=fmt.delimiter, quotechar=fmt.quote, lineterminator="\n")
        writer.writerow(header)
        for name, count in counts.items():
            size = (out / name).stat().st_size
            writer.writerow([name, count, *([size] if m.bytes_column else []), sha256_file(out / name)])
