"""Export format mappings: how a non-canonical export (CSV files) maps onto the canonical records.

A mapping is a YAML document (``specs/schemas/export-format.schema.json``) naming, per
canonical record type, the CSV file that holds it and, per canonical field, the column
it comes from: plain text, a date or date-time in a stated ``strftime`` format, or a code
read through a code list (native code -> canonical value; booleans are code lists too).
A field the format lacks is stated as a constant (``value: null``): nothing is defaulted
silently. :func:`load_format` validates the mapping against the schema and against the
canonical record schemas (every required field mapped, every code-list value one the
canonical field accepts) and raises :class:`~conformance.errors.UsageError` naming the
file and the path of the first problem.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conformance.errors import UsageError
from conformance.export.records import RECORD_TYPES, load_schema
from conformance.spec.resources import spec_path

#: Largest mapping file read.
MAX_MAPPING_BYTES = 1024 * 1024
#: Where ``--format NAME`` looks for published formats.
FORMATS_DIR = ("export-formats",)


class CellError(ValueError):
    """A cell that cannot be read as its canonical field (the message says why)."""


@dataclass(frozen=True)
class FieldSpec:
    """One canonical field: the column it is read from (None: a constant) and how."""

    name: str
    column: str | None
    kind: str = "string"  # string | date | datetime | constant
    format: str | None = None
    timezone: str | None = None
    codes: str | None = None
    value: Any = None


@dataclass(frozen=True)
class RecordFile:
    """The native file of one canonical record type."""

    record_type: str
    file: str
    fields: tuple[FieldSpec, ...]

    def column_of(self, name: str) -> str | None:
        """The native column canonical field ``name`` is read from (None: a constant or unknown)."""
        return next((f.column for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class ManifestSpec:
    """The format's control file: one row per record file (count, sha256, optionally bytes)."""

    file: str
    file_column: str
    count_column: str
    sha256_column: str
    bytes_column: str | None = None


@dataclass(frozen=True)
class ExportFormat:
    """A loaded, validated mapping."""

    name: str
    version: str
    source: str
    sha256: str
    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    manifest: ManifestSpec | None = None
    code_lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, RecordFile] = field(default_factory=dict)  # record type -> its file

    def describe(self) -> dict[str, str]:
        """What result.json and the report record of the mapping (``source``: a published format's
        name, else the mapping file's path)."""
        return {"name": self.name, "version": self.version, "source": self.source, "sha256": self.sha256}

    def converter(self, spec: FieldSpec) -> Callable[[str], Any] | None:
        """A function from a non-empty cell to the canonical value (raising CellError); None: the text as is."""
        if spec.codes is not None:
            table = self.code_lists[spec.codes]
            listed = ", ".join(repr(k) for k in list(table)[:8]) + (", ..." if len(table) > 8 else "")
            name = spec.codes

            def code(cell: str) -> Any:
                try:
                    return table[cell]
                except KeyError:
                    raise CellError(f"{cell!r} is not in code list {name} ({listed})") from None

            return code
        if spec.kind in ("date", "datetime"):
            return _time_converter(spec.kind, spec.format or "", spec.timezone)
        return None


# -- dates ----------------------------------------------------------------------------------
_FIXED = {"%d": ("d", 2), "%m": ("m", 2), "%Y": ("Y", 4), "%H": ("H", 2), "%M": ("M", 2), "%S": ("S", 2)}
_HUMAN = {"%d": "dd", "%m": "mm", "%Y": "yyyy", "%y": "yy", "%H": "HH", "%M": "MM", "%S": "SS", "%z": "+hhmm"}
_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
#: Distinct cells a date column remembers the reading of.
_CACHE = 1 << 16


def human(fmt: str) -> str:
    """``%d/%m/%Y`` -> ``dd/mm/yyyy`` (for messages)."""
    return re.sub(r"%.", lambda m: _HUMAN.get(m.group(0), m.group(0)), fmt)


def _fast_pattern(fmt: str) -> re.Pattern[str] | None:
    """A regex for a format made only of fixed-width numeric fields and literals (None: use strptime)."""
    out, seen, k = [], set(), 0
    while k < len(fmt):
        if fmt[k] == "%":
            token = fmt[k : k + 2]
            if token not in _FIXED or token in seen:
                return None
            seen.add(token)
            group, width = _FIXED[token]
            out.append(f"(?P<{group}>[0-9]{{{width}}})")
            k += 2
        else:
            out.append(re.escape(fmt[k]))
            k += 1
    return re.compile("".join(out))


def _valid_day(y: int, m: int, d: int) -> bool:
    if not 1 <= m <= 12 or not 1 <= d <= _DAYS[m]:
        return False
    return not (m == 2 and d == 29 and (y % 4 or (y % 100 == 0 and y % 400)))


#: A day on which the zone's UTC offset changes (daylight saving): its times are converted one by one.
_CHANGES = -(1 << 40)


def _day_offset(zone: tzinfo, year: int, month: int, day: int) -> int:
    """The zone's UTC offset (seconds) all day long, or :data:`_CHANGES`."""
    offsets = {datetime(year, month, day, h, m, tzinfo=zone).utcoffset() for h, m in ((0, 0), (12, 0), (23, 59))}
    if len(offsets) != 1:
        return _CHANGES
    (offset,) = offsets
    return int(offset.total_seconds()) if offset is not None else 0


def _time_converter(kind: str, fmt: str, zone_name: str | None) -> Callable[[str], str]:
    wording = f"is not a {'date' if kind == 'date' else 'date-time'} in the form {human(fmt)}"
    zone: tzinfo = UTC if zone_name in (None, "UTC") else ZoneInfo(str(zone_name))
    pattern = _fast_pattern(fmt)
    if pattern is not None:
        match = pattern.fullmatch
        utc = zone is UTC
        seconds = "%S" in fmt
        seen: dict[str, str] = {}  # cell -> canonical (dates repeat: most cells are read once per distinct day)
        day_ok: dict[str, bool] = {}
        offsets: dict[str, int] = {}  # day -> the zone's UTC offset all that day in seconds (or _CHANGES)

        def fast(cell: str) -> str:
            done = seen.get(cell)
            if done is not None:
                return done
            m = match(cell)
            if m is None:
                raise CellError(f"{cell!r} {wording}")
            year, month, dom = m.group("Y", "m", "d")
            day = f"{year}-{month}-{dom}"
            ok = day_ok.get(day)
            if ok is None:
                ok = day_ok[day] = _valid_day(int(year), int(month), int(dom))
            if not ok:
                raise CellError(f"{cell!r} {wording} (no such day)")
            if kind == "date":
                if len(seen) < _CACHE:
                    seen[cell] = day
                return day
            hh, mm = m.group("H", "M")
            ss = m.group("S") if seconds else "00"
            if hh > "23" or mm > "59" or ss > "59":  # two digits each: text order is number order
                raise CellError(f"{cell!r} {wording} (no such time)")
            if utc:
                return f"{day}T{hh}:{mm}:{ss}Z"
            offset = offsets.get(day)
            if offset is None:
                offset = _day_offset(zone, int(year), int(month), int(dom))
                if len(offsets) < _CACHE:
                    offsets[day] = offset
            hour = int(hh) - offset // 3600
            if offset != _CHANGES and offset % 3600 == 0 and 0 <= hour <= 23:
                return f"{day}T{hour:02d}:{mm}:{ss}Z"
            local = datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss}").replace(tzinfo=zone)
            return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        return fast

    def slow(cell: str) -> str:
        try:
            moment = datetime.strptime(cell, fmt)
        except ValueError:
            raise CellError(f"{cell!r} {wording}") from None
        if kind == "date":
            return moment.date().isoformat()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return slow


# -- loading and validation -----------------------------------------------------------------
def _fail(source: str, path: str, message: str) -> UsageError:
    return UsageError(f"export format {source}: {path or '/'}: {message}")


def _non_string_keys(value: Any, path: str = "") -> tuple[str, Any] | None:
    """The first mapping key that is not a string (YAML reads Y/N-like words, numbers and dates as such)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return path, key
            found = _non_string_keys(item, f"{path}/{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _non_string_keys(item, f"{path}/{i}")
            if found:
                return found
    return None


@cache
def _schema_validator() -> Any:
    import json

    import jsonschema

    schema = json.loads(spec_path("schemas", "export-format.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def resolve(name_or_file: str) -> Path:
    """The mapping file of ``--format``: a path to a YAML file, or the name of a published format."""
    candidate = Path(name_or_file)
    if candidate.suffix.lower() in (".yaml", ".yml", ".json") or "/" in name_or_file or candidate.is_file():
        if not candidate.is_file():
            raise UsageError(f"--format {name_or_file}: no such mapping file")
        return candidate
    directory = spec_path(*FORMATS_DIR)
    published = directory / f"{name_or_file}.yaml"
    if re.fullmatch(r"[a-z0-9][a-z0-9-]*", name_or_file) and published.is_file():
        return published
    known = sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []
    raise UsageError(
        f"--format {name_or_file}: unknown export format (published: {', '.join(known) or 'none'}; or give a mapping file)"
    )


def load_format(name_or_file: str) -> ExportFormat:
    """Load and validate the mapping ``--format`` names (see the module docstring)."""
    from jsonschema.exceptions import best_match

    from conformance.certificate.documents import DocumentError, load_yaml

    path = resolve(name_or_file)
    source = path.stem if path.parent == spec_path(*FORMATS_DIR) else str(path)
    try:
        raw = path.read_bytes()[: MAX_MAPPING_BYTES + 1]
    except OSError as exc:
        raise UsageError(f"export format {source}: unreadable: {exc.strerror or exc}") from None
    if len(raw) > MAX_MAPPING_BYTES:
        raise _fail(source, "", f"over {MAX_MAPPING_BYTES} bytes; not a mapping")
    try:
        doc = load_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _fail(source, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except DocumentError as exc:
        raise _fail(source, "", str(exc)) from None
    if not isinstance(doc, dict):
        raise _fail(source, "", f"expected a mapping (YAML object), got {type(doc).__name__}")
    bad_key = _non_string_keys(doc)
    if bad_key is not None:
        where, key = bad_key
        raise _fail(source, where, f"key {key!r} is not text: YAML reads it as {type(key).__name__}; quote it")
    error = best_match(_schema_validator().iter_errors(doc))
    if error is not None:
        where = "".join(f"/{p}" for p in error.absolute_path)
        raise _fail(source, where, error.message)
    return _compile(doc, source, hashlib.sha256(raw).hexdigest())


def _compile(doc: dict[str, Any], source: str, sha256: str) -> ExportFormat:
    encoding = doc.get("encoding", "utf-8")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise _fail(source, "/encoding", f"unknown text encoding {encoding!r}") from None
    csv_options = doc.get("csv", {})
    delimiter, quote = csv_options.get("delimiter", ","), csv_options.get("quote", '"')
    if delimiter == quote or delimiter in "\r\n" or quote in "\r\n":
        raise _fail(source, "/csv", "delimiter and quote must differ and not be line breaks")
    code_lists: dict[str, dict[str, Any]] = doc.get("code_lists", {})
    files: dict[str, RecordFile] = {}
    names: dict[str, str] = {}
    for record_type in RECORD_TYPES:
        entry = doc["record_types"][record_type]
        base = f"/record_types/{record_type}"
        if entry["file"] in names:
            raise _fail(source, base + "/file", f"{entry['file']} is already the file of {names[entry['file']]}")
        names[entry["file"]] = record_type
        schema = load_schema(record_type)
        properties = schema.get("properties", {})
        fields = []
        for name, spec in entry["fields"].items():
            where = f"{base}/fields/{name}"
            if name not in properties:
                raise _fail(
                    source, where, f"{record_type} has no canonical field {name!r} (one of {', '.join(properties)})"
                )
            fields.append(_field(source, where, name, spec, properties[name], code_lists))
        missing = [f for f in schema.get("required", []) if f not in entry["fields"]]
        if missing:
            raise _fail(
                source,
                base + "/fields",
                f"canonical field{'s' if len(missing) > 1 else ''} {', '.join(missing)} not mapped "
                "(state a constant, e.g. value: null, when the format has no such column)",
            )
        files[record_type] = RecordFile(record_type, entry["file"], tuple(fields))
    manifest = None
    if "manifest" in doc:
        m = doc["manifest"]
        if m["file"] in names:
            raise _fail(source, "/manifest/file", f"{m['file']} is already the file of {names[m['file']]}")
        c = m["columns"]
        manifest = ManifestSpec(m["file"], c["file"], c["count"], c["sha256"], c.get("bytes"))
    return ExportFormat(
        name=doc["format"],
        version=doc["version"],
        source=source,
        sha256=sha256,
        encoding=encoding,
        delimiter=delimiter,
        quote=quote,
        manifest=manifest,
        code_lists=code_lists,
        files=files,
    )


def _accepts(prop: dict[str, Any], value: Any) -> bool:
    """Whether a canonical property's type/enum admit ``value`` (formats and patterns aside)."""
    if "enum" in prop:
        return value in prop["enum"]
    types = prop.get("type", [])
    types = [types] if isinstance(types, str) else types
    kind = {str: "string", bool: "boolean", type(None): "null"}.get(type(value))
    return not types or kind in types


def _field(
    source: str, where: str, name: str, spec: Any, prop: dict[str, Any], code_lists: dict[str, dict[str, Any]]
) -> FieldSpec:
    if isinstance(spec, str):
        spec = {"column": spec}
    if "value" in spec:
        if not _accepts(prop, spec["value"]):
            raise _fail(source, where + "/value", f"{spec['value']!r} is not a value canonical field {name} accepts")
        return FieldSpec(name, None, "constant", value=spec["value"])
    kind = spec.get("type", "string")
    fmt, zone, codes = spec.get("format"), spec.get("timezone"), spec.get("codes")
    if kind in ("date", "datetime"):
        if codes is not None:
            raise _fail(source, where + "/codes", "a date column has a format, not a code list")
        if fmt is None:
            raise _fail(source, where, f"a {kind} column needs a format (e.g. %d/%m/%Y)")
        needed = ("%Y", "%m", "%d") + (("%H", "%M") if kind == "datetime" else ())
        lacking = [t for t in needed if t not in fmt and not (t == "%Y" and "%y" in fmt)]
        if lacking:
            raise _fail(source, where + "/format", f"{fmt!r} lacks {', '.join(lacking)}")
        if kind == "datetime" and "%z" not in fmt and zone is None:
            raise _fail(source, where, "a date-time format without %z needs a timezone (e.g. Europe/London or UTC)")
        if zone is not None:
            try:
                ZoneInfo(zone) if zone != "UTC" else None
            except (ZoneInfoNotFoundError, ValueError):
                raise _fail(source, where + "/timezone", f"unknown time zone {zone!r}") from None
        try:
            probe = datetime(2008, 2, 29, 13, 5, 9, tzinfo=UTC).strftime(fmt)
            _time_converter(kind, fmt, zone)(probe)
        except (ValueError, CellError) as exc:
            raise _fail(source, where + "/format", f"{fmt!r} does not read back what it writes ({exc})") from None
        wanted = "date" if kind == "date" else "date-time"
        if prop.get("format") != wanted:
            raise _fail(source, where + "/type", f"canonical field {name} is not a {wanted}")
    elif fmt is not None or zone is not None:
        raise _fail(source, where, "format and timezone apply to date and datetime columns only")
    if codes is not None:
        if codes not in code_lists:
            raise _fail(
                source, where + "/codes", f"no code list {codes!r} (defined: {', '.join(code_lists) or 'none'})"
            )
        for native, value in code_lists[codes].items():
            if not _accepts(prop, value):
                raise _fail(
                    source,
                    f"/code_lists/{codes}/{native}",
                    f"maps to {value!r}, which canonical field {name} does not accept"
                    + (f" (one of {', '.join(map(repr, prop['enum']))})" if "enum" in prop else ""),
                )
    elif kind == "string" and "string" not in _types(prop):
        raise _fail(source, where, f"canonical field {name} is not text: read it through a code list (codes: ...)")
    return FieldSpec(name, spec["column"], kind, fmt, zone, codes)


def _types(prop: dict[str, Any]) -> list[str]:
    if "enum" in prop:
        return ["string"] if any(isinstance(v, str) for v in prop["enum"]) else []
    types = prop.get("type", [])
    return [types] if isinstance(types, str) else list(types)
