"""Streaming scan of one JSON Lines file: parse, schema-validate, per-record rules.

Runs in a worker process (or in-process for small exports), over blocks of complete
lines (about 1 MiB), each in chunks of ``CHUNK`` lines. A chunk is parsed with orjson as
one JSON array and checked against the compiled jsonschema-rs validator of its record
type in one call (formats checked); when that cannot be proven to read each line as it
reads alone (see :meth:`_Scanner._whole`), or a record fails, the chunk is parsed line
by line, then checked record by record (``is_valid``, then ``iter_errors`` for the
records that fail). The rules of the type then run vectorised over the chunk. The scan
returns bounded findings and the file's bytes, record count and sha256 (for the
manifest); the IDs it saw (as hashes, for uniqueness) and the compact table rows the
cross-file rules need are written to temporary files (see :mod:`conformance.export.keys`)
— never the records.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from itertools import repeat
from operator import is_not, itemgetter
from typing import Any, BinaryIO

import jsonschema_rs
import numpy as np
import orjson
from stdnum.gb import nhs as _nhs
from stdnum.gb import upn as _upn

from conformance.domain.identifiers import is_valid_nhs_number, is_valid_upn
from conformance.domain.workingdays import TIMESCALES, _bank_holidays, due_date
from conformance.export.archive import Limits, SourceSpec, member
from conformance.export.findings import (
    EXP_DATES,
    EXP_IDENTIFIERS,
    EXP_REFS,
    EXP_SCHEMA,
    EXP_TIMESCALES,
    EXP_UNIQUE,
    REC_LOCAL_ID,
    FindingSink,
)
from conformance.export.keys import KeyLog, Rows, days, duplicate_lines, iso, key_pair, keys, open_table, release_memory
from conformance.export.lines import BLOCK, iter_blocks
from conformance.spec.resources import spec_path

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
#: Lines checked together: one parse, one batch validation, one vectorised call of the
#: rules (a 1 MiB block of the usual records is one chunk). A crashed rule loses its chunk.
CHUNK = 8192


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema of record type (or ``manifest``) ``name``."""
    return json.loads(spec_path("schemas", "export", f"{name}.schema.json").read_text(encoding="utf-8"))


@cache
def validator(name: str) -> Any:
    """Return the compiled jsonschema-rs validator for ``name``, with format checking on."""
    return jsonschema_rs.Draft202012Validator(load_schema(name), validate_formats=True)


@cache
def batch_validator(name: str) -> Any:
    """A validator of a JSON array of ``name`` records (one call checks a whole chunk)."""
    return jsonschema_rs.Draft202012Validator({"type": "array", "items": load_schema(name)}, validate_formats=True)


_SCALAR_TYPES = frozenset({"string", "boolean", "null"})


@cache
def flat_records(name: str) -> bool:
    """True when every record valid against schema ``name`` is an object whose values are
    strings, booleans or nulls (no nested object or array, no number): then the canonical
    (orjson) encoding of a record is its shortest one, which the block fast path relies on."""
    schema = load_schema(name)
    if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
        return False
    if "patternProperties" in schema or "unevaluatedProperties" in schema:
        return False

    def scalar(sub: Any) -> bool:
        if not isinstance(sub, dict):
            return False
        if "type" in sub:
            types = [sub["type"]] if isinstance(sub["type"], str) else sub["type"]
            return isinstance(types, list) and bool(types) and set(types) <= _SCALAR_TYPES
        values = sub.get("enum", [sub["const"]] if "const" in sub else None)
        return isinstance(values, list) and all(v is None or isinstance(v, (str, bool)) for v in values)

    return all(scalar(sub) for sub in schema.get("properties", {}).values())


def _pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def schema_errors(name: str, obj: Any) -> list[tuple[str, str]]:
    """Return ``(json pointer, message)`` for each schema error of ``obj``."""
    return [(_pointer(e.instance_path), e.message) for e in validator(name).iter_errors(obj)]


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


class _DuplicateKey(ValueError):
    pass


_SPACED_KEY = re.compile(rb'"[ \t\r\n]+:')


def _compact_keys_unique(line: bytes, obj: dict[str, Any]) -> bool:
    """Cheap proof that ``line`` holds no duplicate key (False: not proven, check slowly).

    The hot path first compares ``len(orjson.dumps(obj))`` with the line: a record of
    strings, booleans and nulls has no JSON encoding shorter than orjson's, and a
    duplicate key adds bytes, so equal lengths prove uniqueness. Otherwise, when no key
    is followed by whitespace before its colon, every key token reads ``"...":`` and a
    count of ``":`` equal to the number of keys proves it too.
    """
    return line.count(b'":') == len(obj) and _SPACED_KEY.search(line) is None


def duplicate_key(line: bytes) -> str | None:
    """Return a key that occurs twice in one object of ``line`` (None if none)."""
    try:
        json.loads(line, object_pairs_hook=_reject_duplicates)
    except _DuplicateKey as exc:
        return str(exc.args[0])
    except ValueError:
        return None
    return None


@lru_cache(maxsize=65536)
def _due(kind: str, start: str) -> str | None:
    """The due date, or None when it falls after 9999-12-31 (no ISO date can state it: not judged)."""
    try:
        return due_date(kind, date.fromisoformat(start)).isoformat()
    except OverflowError:
        return None


#: Years whose due dates are computed with numpy's business-day calendar (others one by one).
_CALENDAR_YEARS = (1900, 2200)


@lru_cache(maxsize=64)
def _calendar(first: int, last: int) -> np.busdaycalendar:
    """Monday to Friday less the England and Wales bank holidays of years ``first..last``."""
    days = sorted(set().union(*(_bank_holidays(y) for y in range(first, last + 1))))
    return np.busdaycalendar(holidays=np.array(days, dtype="datetime64[D]"))


def _dates(yyyymmdd: np.ndarray) -> np.ndarray:
    """int ``yyyymmdd`` of valid dates as ``datetime64[D]``, by arithmetic (Hinnant's days from civil)."""
    value = yyyymmdd.astype(np.int64)
    month, day = value // 100 % 100, value % 100
    year = value // 10_000 - (month <= 2)
    era = year // 400
    of_era = year - era * 400
    of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    return (era * 146_097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year - 719_468).view("datetime64[D]")


def due_days(kinds: Sequence[str], starts: np.ndarray) -> np.ndarray | None:
    """:func:`conformance.domain.workingdays.due_date` of each assessment, vectorised over
    int ``yyyymmdd`` start dates (valid dates), as ``datetime64[D]``.

    None when a start falls outside the years of numpy's calendar (the caller then
    computes the due dates one by one).
    """
    if not len(starts):
        return np.zeros(0, "datetime64[D]")
    years = starts // 10_000
    first, last = int(years.min()), int(years.max()) + 1  # a due date may fall in the next year
    if first < _CALENDAR_YEARS[0] or last > _CALENDAR_YEARS[1]:
        return None
    offset = np.fromiter(map(TIMESCALES.__getitem__, kinds), np.int64, len(kinds))
    # the N-th working day after S: from S, or the working day before it when S is not one
    return np.busday_offset(_dates(starts), offset, roll="backward", busdaycal=_calendar(first, last))


@lru_cache(maxsize=1024)
def _la_code_ok(code: str) -> bool:
    body = code + "000000000"
    return is_valid_upn(_upn.calc_check_digit(body) + body)


def upn_ok(value: str) -> bool:
    """``is_valid_upn`` for a schema-valid (compact) UPN, without re-cleaning the string.

    Uses python-stdnum's own check-letter function; a negative answer is confirmed by
    :func:`conformance.domain.identifiers.is_valid_upn` before it becomes a finding.
    """
    try:
        return value[-1] in _ALPHABET and _la_code_ok(value[1:4]) and _upn.calc_check_digit(value[1:]) == value[0]
    except Exception:
        return is_valid_upn(value)


def nhs_ok(value: str) -> bool:
    """``is_valid_nhs_number`` for a schema-valid (10-digit) NHS number, via stdnum's checksum."""
    try:
        return _nhs.checksum(value) == 0
    except Exception:
        return is_valid_nhs_number(value)


_UPN_ALPHABET = "ABCDEFGHJKLMNPQRTUVWXYZ0123456789"
_ALPHABET = frozenset(_UPN_ALPHABET)
_UPN_INDEX = np.full(128, -1, np.int64)
_UPN_INDEX[[ord(c) for c in _UPN_ALPHABET]] = np.arange(len(_UPN_ALPHABET))
_UPN_CODES = np.array([ord(c) for c in _UPN_ALPHABET], np.uint32)


@cache
def _la_codes() -> np.ndarray:
    return np.array([_la_code_ok(f"{k:03d}") for k in range(1000)])


def prepare_rules() -> None:
    """Compute the rules' lookup tables now (before workers are forked, which then share them)."""
    _la_codes()


def _codepoints(values: list[str], width: int) -> np.ndarray:
    """``values`` as an (n, width + 1) array of code points, 0-padded (a last column not 0: too long)."""
    return np.array(values, dtype=f"U{width + 1}").view(np.uint32).reshape(len(values), width + 1)


def upns_ok(values: list[str]) -> np.ndarray:
    """:func:`upn_ok` vectorised: True only for compact UPNs that ``is_valid_upn`` accepts."""
    if not values:
        return np.zeros(0, bool)
    a = _codepoints(values, 13)
    ok = (a[:, 13] == 0) & (a < 128).all(axis=1)
    digits = a[:, 1:12].astype(np.int64) - 48
    ok &= ((digits >= 0) & (digits <= 9)).all(axis=1)
    index = _UPN_INDEX[np.minimum(a[:, :13], 127)]
    ok &= (index[:, 12] >= 0) & (index[:, 0] >= 0)
    la = np.where(ok, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2], 0)
    ok &= _la_codes()[la]
    check = (np.maximum(index[:, 1:13], 0) * np.arange(2, 14)).sum(axis=1) % 23
    return ok & (a[:, 0] == _UPN_CODES[check])


def nhs_numbers_ok(values: list[str]) -> np.ndarray:
    """:func:`nhs_ok` vectorised: True only for 10-digit numbers passing the modulus 11 check."""
    if not values:
        return np.zeros(0, bool)
    a = _codepoints(values, 10)
    digits = a[:, :10].astype(np.int64) - 48
    ok = (a[:, 10] == 0) & ((digits >= 0) & (digits <= 9)).all(axis=1)
    return ok & ((digits * np.arange(10, 0, -1)).sum(axis=1) % 11 == 0)


@dataclass
class FileScan:
    """What a scan of one file (or of one part of it) returns to the coordinator."""

    name: str
    record_type: str
    records: int = 0
    bytes: int = 0
    sha256: str = ""
    sink: FindingSink = field(default_factory=FindingSink)
    seen: Any = None  # visits: bitmap (np.packbits) of the assessments with a qualifying seen visit
    read_error: str | None = None
    duration: float = 0.0
    lines: int = 0  # physical lines read (to re-base line numbers of a part)
    offsets: list[int] = field(default_factory=lambda: [0])  # first line - 1 of each part
    logs: dict[str, list[Any]] = field(default_factory=dict)  # key -> KeyLog.segments of each part


class _Part:
    """The lines of a binary stream that start at a byte offset in ``[start, end)``.

    ``end`` None reads to the end. An unseekable stream (a zip member) is read up to
    ``start`` and discarded; with ``hasher`` those skipped bytes are hashed too.
    """

    def __init__(self, stream: Any, start: int, end: int | None, *, seekable: bool, hasher: Any = None) -> None:
        self._stream = stream
        self._end = end
        self._pos = 0  # offset of the next byte read() returns
        self._pending = b""
        self._done = False
        if start <= 0:
            return
        target = start - 1
        if seekable and hasher is None:
            stream.seek(target)
            self._pos = target
        while self._pos < target:
            block = stream.read(min(BLOCK, target - self._pos))
            if not block:
                break
            if hasher is not None:
                hasher.update(block)
            self._pos += len(block)
        while True:  # the line in progress at start - 1 belongs to the previous part
            block = stream.read(BLOCK)
            if not block:
                self._done = True
                break
            cut = block.find(b"\n")
            head = block if cut < 0 else block[: cut + 1]
            if hasher is not None:
                hasher.update(head)
            self._pos += len(head)
            if cut >= 0:
                self._pending = block[cut + 1 :]
                break
        self.skipped = self._pos
        if end is not None and self._pos >= end:
            self._done = True

    skipped = 0

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        if self._pending:
            data, self._pending = self._pending, b""
        else:
            data = self._stream.read(size)
        if not data:
            self._done = True
            return b""
        begin = self._pos
        self._pos += len(data)
        if self._end is not None and self._pos >= self._end:
            cut = data.find(b"\n", max(self._end - 1 - begin, 0))
            if cut >= 0:
                self._done = True
                return data[: cut + 1]
        return data


def hash_member(spec: SourceSpec, name: str) -> tuple[int, str]:
    """Return ``(bytes, sha256)`` of a member (for files scanned in parts)."""
    hasher = hashlib.sha256()
    size = 0
    with member(spec, name) as stream:
        while block := stream.read(BLOCK):
            hasher.update(block)
            size += len(block)
    return size, hasher.hexdigest()


#: Table rows written by the scans of the index files, read by :mod:`conformance.export.rules`.
#: ``received`` / ``start`` 0: the record failed its schema (an ID without data).
TABLES: dict[str, np.dtype] = {
    "children": np.dtype([("h1", "<i8"), ("h2", "<i8"), ("line", "<i8"), ("death", "<i4")]),
    "practitioners": np.dtype([("h1", "<i8"), ("h2", "<i8"), ("line", "<i8")]),
    "referrals": np.dtype(
        [("h1", "<i8"), ("h2", "<i8"), ("line", "<i8"), ("c1", "<i8"), ("c2", "<i8"), ("received", "<i4")]
    ),
    "assessments": np.dtype(
        [
            ("h1", "<i8"),
            ("h2", "<i8"),
            ("line", "<i8"),
            ("c1", "<i8"),
            ("c2", "<i8"),
            ("r1", "<i8"),
            ("r2", "<i8"),
            ("has_referral", "?"),
            ("start", "<i4"),
            ("completed", "<i4"),
        ]
    ),
}
_ID = itemgetter("id")
_NO_KEYS = np.zeros(0, np.int64)


def _fields(objs: list[dict[str, Any]], *names: str) -> list[list[Any]]:
    """The values of ``names`` in each record, one list per field."""
    return [list(map(itemgetter(name), objs)) for name in names]


class _Scanner:
    """Checks the lines of one file block by block: parse, schema, rules of its record type.

    A block is cut into chunks of ``CHUNK`` lines; a chunk whose lines all parse alone as
    canonical, schema-valid records goes through one parse, one batch validation, one
    canonical-length proof and vectorised rules (:meth:`_whole`); any other chunk is
    checked by :meth:`chunk`, line by line when it fails.
    """

    def __init__(
        self,
        name: str,
        record_type: str,
        sink: FindingSink,
        context: dict[str, str],
        directory: str,
        part: int,
        bits: int,
        limits: Limits,
    ) -> None:
        self.name = name
        self.type = record_type
        self.sink = sink
        self.limits = limits
        self.records = 0
        self.is_valid = validator(record_type).is_valid
        self.batch_valid = batch_validator(record_type).is_valid
        self.flat = flat_records(record_type)
        self.ids = KeyLog(os.path.join(directory, "id", f"{part:05d}"), bits)
        self.local_ids = KeyLog(os.path.join(directory, "local_id", f"{part:05d}"), bits)
        dtype = TABLES.get(record_type)
        self.table = Rows(os.path.join(directory, "table", f"{part:05d}"), dtype) if dtype is not None else None
        self.children, self.practitioners, self.assessments = (
            open_table(context[t]) if t in context else None for t in ("children", "practitioners", "assessments")
        )
        self.seen = np.zeros(len(self.assessments) if self.assessments is not None else 0, bool)
        self.rule: Callable[[list[dict[str, Any]], np.ndarray, np.ndarray, np.ndarray], None] = getattr(
            self, "_" + record_type
        )
        self.rule_requirements = {
            "children": (EXP_UNIQUE, EXP_IDENTIFIERS),
            "practitioners": (EXP_UNIQUE,),
            "referrals": (EXP_UNIQUE,),
            "assessments": (EXP_UNIQUE, EXP_TIMESCALES),
            "visits": (EXP_UNIQUE, EXP_REFS, EXP_DATES),
            "case_notes": (EXP_UNIQUE, EXP_REFS),
            "allocations": (EXP_UNIQUE, EXP_REFS),
            "aliases": (EXP_UNIQUE, EXP_REFS),
        }[record_type]

    def finish(self) -> None:
        self.ids.flush()
        self.local_ids.flush()
        if self.table is not None:
            self.table.close()

    # -- parsing and schema -----------------------------------------------------------------
    def block(self, data: bytes, first: int) -> int:
        """Check the complete lines in ``data`` (numbered from ``first``) chunk by chunk, as
        :meth:`chunk` does (``CHUNK`` lines at a time: the same chunks, so a crashed rule
        loses the same lines); return their count."""
        codes = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(codes == 0x0A)  # data ends with a newline: one per line
        starts = np.empty(len(ends), np.int64)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        body: memoryview | None = None
        for i in range(0, len(ends), CHUNK):
            j = min(i + CHUNK, len(ends))
            begin, end = int(starts[i]), int(ends[j - 1]) + 1
            if self.flat and (codes[starts[i:j]] == 0x7B).all():
                if body is None:  # one copy of the block for all its chunks
                    body = memoryview(data.replace(b"\n", b",\n"))
                # each of the i newlines before ``begin`` (the j up to ``end``) gained a byte
                if self._whole(body[begin + i : end + j], end - begin, first + i):
                    continue
            lines = data[begin:end].split(b"\n")
            lines.pop()  # the empty piece after the last newline
            self.chunk(lines, first + i, False)
        return len(ends)

    def _whole(self, body: memoryview, size: int, first: int) -> bool:
        """The fast path of a chunk of complete lines that all start with ``{``: True when
        it checked them (False: nothing done, check them with :meth:`chunk`).

        ``body`` is the chunk's ``size`` bytes with each newline turned into a ``,\\n``
        separator. The chunk is parsed as one JSON array (``body`` and a last element
        ``0``) and taken as its records only when that is provably what parsing each line
        alone gives: the array has one element per line, every element is a schema-valid
        record of a type whose records are flat (:func:`flat_records`), and the array's
        canonical encoding is exactly as long as the text less the added newlines. Then
        the text is canonical (no whitespace, no duplicate key, no value parsed and
        overwritten), so its only structural ``{`` are the records' own, one at the start
        of each line (a raw newline cannot be inside a string): record i is line i.
        """
        n = len(body) - size  # each newline gained a byte
        try:  # a last element 0 after the last separator: no copy to drop it
            objs = orjson.loads(b"".join((b"[", body, b"0]")))
        except orjson.JSONDecodeError:
            return False
        if (
            len(objs) != n + 1
            or objs.pop() != 0
            or not self.batch_valid(objs)
            or len(orjson.dumps(objs)) != size + 1  # 2 + (n - 1) commas + the lines less newlines
        ):
            return False
        self.records += n
        self._valid(objs, np.arange(first, first + n, dtype=np.int64))
        return True

    def chunk(self, lines: Sequence[bytes | None], first: int, final: bool) -> None:
        """Check ``lines`` (numbered from ``first``); ``final``: the last may be truncated."""
        self.records += len(lines)
        try:
            objs = list(map(orjson.loads, lines))  # type: ignore[arg-type]  # a None (overlong) line raises TypeError: handled below
        except (orjson.JSONDecodeError, TypeError):
            objs = None
        if objs is not None and self.batch_valid(objs):
            if len(orjson.dumps(objs)) != sum(map(len, lines)) + len(lines) + 1:  # type: ignore[arg-type]  # every line parsed: none is None
                for k, (line, obj) in enumerate(zip(lines, objs)):
                    self._keys_unique(line, obj, first + k)  # type: ignore[arg-type]  # every line parsed: none is None
            self._valid(objs, np.arange(first, first + len(lines), dtype=np.int64))
            return
        valid: list[dict[str, Any]] = []
        where: list[int] = []
        invalid: list[dict[str, Any]] = []
        invalid_where: list[int] = []
        add, name = self.sink.add, self.name
        for n, line in enumerate(lines, first):
            if line is None:
                add(EXP_SCHEMA, name, n, "", f"line longer than the {self.limits.max_line_bytes} byte limit; not read")
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if not line.strip():
                    add(EXP_SCHEMA, name, n, "", "blank line (JSON Lines needs one record per line)")
                    continue
                text = str(exc)
                if final:
                    add(EXP_SCHEMA, name, n, "", f"truncated last line (no final newline, not valid JSON: {text})")
                elif "UTF-8" in text or "utf-8" in text:
                    add(EXP_SCHEMA, name, n, "", f"invalid UTF-8: {text}")
                else:
                    add(EXP_SCHEMA, name, n, "", f"not valid JSON: {text}")
                continue
            if type(obj) is not dict:
                add(
                    EXP_SCHEMA,
                    name,
                    n,
                    "",
                    f"record is a JSON {type(obj).__name__.replace('list', 'array')}, expected an object",
                )
                continue
            self._keys_unique(line, obj, n)
            if self.is_valid(obj):
                valid.append(obj)
                where.append(n)
            else:
                for pointer, message in schema_errors(self.type, obj):
                    add(EXP_SCHEMA, name, n, pointer, message)
                if type(obj.get("id")) is str:  # keep its ID so one schema error does not cascade
                    invalid.append(obj)
                    invalid_where.append(n)
        if valid:
            self._valid(valid, np.array(where, np.int64))
        if invalid:
            self._invalid(invalid, np.array(invalid_where, np.int64))

    def _keys_unique(self, line: bytes, obj: dict[str, Any], n: int) -> None:
        if len(orjson.dumps(obj)) != len(line) and not _compact_keys_unique(line, obj):
            key = duplicate_key(line)
            if key is not None:
                self.sink.add(EXP_SCHEMA, self.name, n, "/" + key, f"duplicate key {key!r} in one object")

    def _id_keys(self, objs: list[dict[str, Any]], lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(h1, h2)`` of the records' IDs (``h2`` only for a type with a table), ``h1`` logged."""
        ids = list(map(_ID, objs))
        h, h2 = key_pair(ids) if self.table is not None else (keys(ids), _NO_KEYS)
        self.ids.add(h, lines)
        return h, h2

    def _valid(self, objs: list[dict[str, Any]], lines: np.ndarray) -> None:
        h, h2 = self._id_keys(objs, lines)
        try:
            self.rule(objs, h, h2, lines)
        except Exception as exc:  # a crashed rule is ERROR, never a pass
            for requirement in self.rule_requirements:
                self.sink.crashed(requirement, f"{self.name}:{int(lines[0])}", exc)

    def _invalid(self, objs: list[dict[str, Any]], lines: np.ndarray) -> None:
        h, h2 = self._id_keys(objs, lines)
        if self.table is not None:
            self.table.add(h1=h, h2=h2, line=lines)

    def _emit(self, findings: list[tuple[int, int, str, str, str]]) -> None:
        """Add a chunk's rule findings in line order."""
        add = self.sink.add
        for line, _order, requirement, pointer, message in sorted(findings):
            add(requirement, self.name, line, pointer, message)

    def _missing(
        self,
        table: Any,
        values: list[str],
        key: str,
        target: str,
        lines: np.ndarray,
        order: int,
        out: list[tuple[int, int, str, str, str]],
        *,
        exact: bool = True,
    ) -> np.ndarray:
        """Rows of ``values`` in ``table`` (-1: absent, reported; no table: every one absent).

        ``exact=False`` matches on ``h1`` alone (enough to prove existence; a present key
        gets 0, not its row): a hash collision can then only hide a missing reference,
        never report one.
        """
        if table is None:
            rows = np.full(len(values), -1, np.int64)
        elif exact:
            rows = table.find_ids(values)
        else:
            rows = np.where(table.absent(keys(values)), -1, 0)  # existence only: no row is used
        for k in np.flatnonzero(rows < 0).tolist():
            out.append((int(lines[k]), order, EXP_REFS, "/" + key, f"{key} {values[k]!r} not found in {target}.jsonl"))
        return rows

    # -- one rule per record type (records schema-valid), vectorised over a chunk --------------
    def _children(self, objs: list[dict[str, Any]], h: np.ndarray, h2: np.ndarray, lines: np.ndarray) -> None:
        local, upn, nhs, death = _fields(objs, "local_id", "upn", "nhs_number", "date_of_death")
        has_local = np.fromiter(map(is_not, local, repeat(None)), bool, len(local))
        if has_local.all():
            self.local_ids.add(keys(local), lines)
        elif has_local.any():
            self.local_ids.add(keys([x for x in local if x is not None]), lines[has_local])
        out: list[tuple[int, int, str, str, str]] = []
        for order, values, fast, slow, pointer, wording in (
            (0, upn, upns_ok, is_valid_upn, "/upn", "UPN {!r} has an invalid check letter or LA code"),
            (1, nhs, nhs_numbers_ok, is_valid_nhs_number, "/nhs_number", "NHS number {!r} fails the modulus 11 check"),
        ):
            present = np.flatnonzero(np.fromiter(map(is_not, values, repeat(None)), bool, len(values)))
            ok = fast([values[k] for k in present.tolist()]) if len(present) < len(values) else fast(values)
            for k in present[~ok].tolist():  # a negative is confirmed by the authority
                if not slow(values[k]):
                    out.append((int(lines[k]), order, EXP_IDENTIFIERS, pointer, wording.format(values[k])))
        self._emit(out)
        self.table.add(h1=h, h2=h2, line=lines, death=days(death))  # type: ignore[union-attr]  # the scanner of a keyed type has its table

    def _practitioners(self, objs: list[dict[str, Any]], h: np.ndarray, h2: np.ndarray, lines: np.ndarray) -> None:
        self.table.add(h1=h, h2=h2, line=lines)  # type: ignore[union-attr]  # the scanner of a keyed type has its table

    def _referrals(self, objs: list[dict[str, Any]], h: np.ndarray, h2: np.ndarray, lines: np.ndarray) -> None:
        child, received = _fields(objs, "child_id", "received_on")
        c1, c2 = key_pair(child)
        self.table.add(h1=h, h2=h2, line=lines, c1=c1, c2=c2, received=days(received))  # type: ignore[union-attr]  # the scanner of a keyed type has its table

    def _assessments(self, objs: list[dict[str, Any]], h: np.ndarray, h2: np.ndarray, lines: np.ndarray) -> None:
        child, referral, kind, start, due, completed = _fields(
            objs, "child_id", "referral_id", "type", "start_date", "due_date", "completed_on"
        )
        start_days = days(start)
        # the table rows first: a rule of this chunk that crashes must not make its
        # assessments look missing to the visits and the cross-file rules
        has_referral = np.fromiter(map(is_not, referral, repeat(None)), bool, len(referral))
        refs = referral if has_referral.all() else [r if r is not None else "" for r in referral]
        (c1, c2), (r1, r2) = key_pair(child), key_pair(refs)
        self.table.add(  # type: ignore[union-attr]  # the scanner of a keyed type has its table
            h1=h,
            h2=h2,
            line=lines,
            c1=c1,
            c2=c2,
            r1=r1,
            r2=r2,
            has_referral=has_referral,
            start=start_days,
            completed=days(completed),
        )
        computed = due_days(kind, start_days)
        if computed is not None:
            wrong = np.flatnonzero(computed != _dates(days(due))).tolist()
            expected = dict(zip(wrong, computed[wrong].astype(str).tolist()))
        else:  # a start outside numpy's calendar years: one by one, as strings
            every = list(map(_due, kind, start))
            wrong = [k for k in range(len(due)) if every[k] is not None and due[k] != every[k]]
            expected = {k: str(every[k]) for k in wrong}
        self._emit(
            [
                (
                    int(lines[k]),
                    0,
                    EXP_TIMESCALES,
                    "/due_date",
                    f"due date {due[k]} should be {expected[k]} ({kind[k]} assessment started {start[k]}, working days)",
                )
                for k in wrong
            ]
        )

    def _visits(self, objs: list[dict[str, Any]], h: np.ndarray, h2: np.ndarray, lines: np.ndarray) -> None:
        aid, visit_date, child_seen = _fields(objs, "assessment_id", "visit_date", "child_seen")
        table = self.assessments
        if table is None:
            raise RuntimeError("visits scanned before the assessments table was loaded (a harness bug)")
        out: list[tuple[int, int, str, str, str]] = []
        rows = self._missing(table, aid, "assessment_id", "assessments", lines, 0, out)
        hit = rows >= 0
        if hit.any():
            rows = np.where(hit, rows, 0)
            start, completed, death = table["start"][rows], table["completed"][rows], table["death"][rows]
            day = days(visit_date)
            checked = hit & np.fromiter(child_seen, bool, len(child_seen)) & (start > 0)
            before = checked & (day < start)
            after = checked & (death > 0) & (day > death)
            for k in np.flatnonzero(before).tolist():
                out.append(
                    (
                        int(lines[k]),
                        1,
                        EXP_DATES,
                        "/visit_date",
                        f"child seen on {visit_date[k]}, before the assessment started ({iso(int(start[k]))})",
                    )
                )
            for k in np.flatnonzero(after).tolist():
                out.append(
                    (
                        int(lines[k]),
                        2,
                        EXP_DATES,
                        "/visit_date",
                        f"child seen on {visit_date[k]}, after their date of death {iso(int(death[k]))}",
                    )
                )
            ok = checked & (completed > 0) & (start <= day) & (day <= completed)
            if ok.any():
                self.seen[rows[ok]] = True
        self._emit(out)

    def _case_notes(self, objs: list[dict[str, Any]], h: np.ndarray, h2: np.ndarray, lines: np.ndarray) -> None:
        child, author = _fields(objs, "child_id", "author_id")
        out: list[tuple[int, int, str, str, str]] = []
        self._missing(self.children, child, "child_id", "children", lines, 0, out, exact=False)
        self._missing(self.practitioners, author, "author_id", "practitioners", lines, 1, out, exact=False)
        self._emit(out)

    def _allocations(self, objs: list[dict[str, Any]], h: np.ndarray, h2: np.ndarray, lines: np.ndarray) -> None:
        child, practitioner = _fields(objs, "child_id", "practitioner_id")
        out: list[tuple[int, int, str, str, str]] = []
        self._missing(self.children, child, "child_id", "children", lines, 0, out, exact=False)
        self._missing(self.practitioners, practitioner, "practitioner_id", "practitioners", lines, 1, out, exact=False)
        self._emit(out)

    def _aliases(self, objs: list[dict[str, Any]], h: np.ndarray, h2: np.ndarray, lines: np.ndarray) -> None:
        (child,) = _fields(objs, "child_id")
        out: list[tuple[int, int, str, str, str]] = []
        self._missing(self.children, child, "child_id", "children", lines, 0, out, exact=False)
        self._emit(out)


def scan_file(
    spec: SourceSpec,
    name: str,
    record_type: str,
    *,
    work: str,
    max_examples: int = 20,
    limits: Limits | None = None,
    context: dict[str, str] | None = None,
    byte_range: tuple[int, int | None] | None = None,
    part: int = 0,
    bits: int = 0,
    hash_all: bool = True,
) -> FileScan:
    """Scan file ``name`` of the export as records of ``record_type``.

    IDs (and, for index types, table rows) are written under ``work/name``. ``context``
    names the directories of the tables of other files it needs (see
    :func:`~conformance.export.keys.save_table`); a table missing from it is taken as
    empty (every reference to it is missing). With ``byte_range`` only
    the lines starting in that byte range are read, as part number ``part``; line
    numbers are then relative to the part. ``hash_all``: hash (and count) the whole file
    even when reading a part of it.
    """
    began = time.perf_counter()
    limits = limits or Limits()
    sink = FindingSink(max_examples)
    result = FileScan(name, record_type, sink=sink)
    scanner = _Scanner(name, record_type, sink, context or {}, os.path.join(work, name), part, bits, limits)
    hasher: Any = hashlib.sha256() if hash_all else _NoHash()
    counter = [0]
    last = 0
    skipped = 0
    collecting = gc.isenabled()
    gc.disable()  # records hold no cycles: no need to walk each chunk's dicts again and again
    try:
        with member(spec, name) as raw:
            stream: BinaryIO | _Part = raw
            if byte_range is not None:
                window = _Part(
                    raw,
                    byte_range[0],
                    byte_range[1],
                    seekable=spec.kind == "directory",
                    hasher=hasher if hash_all else None,
                )
                skipped = window.skipped if hash_all else 0
                stream = window
            blocks = iter_blocks(stream, hasher, limits.max_line_bytes, counter)
            for block, lines, final in blocks:
                if block is not None:
                    last += scanner.block(block, last + 1)
                else:
                    for i in range(0, len(lines), CHUNK):
                        scanner.chunk(lines[i : i + CHUNK], last + 1 + i, final)
                    last += len(lines)
                del block, lines
                _trim_now_and_then()
    except OSError as exc:
        result.read_error = f"{name}: read failed: {exc}"
    except Exception as exc:  # zlib / zip CRC errors and the like
        result.read_error = f"{name}: read failed: {type(exc).__name__}: {exc}"
    finally:
        scanner.finish()
        if collecting:
            gc.enable()
    result.records = scanner.records
    result.bytes = skipped + counter[0]
    result.sha256 = hasher.hexdigest() if hash_all else ""
    result.lines = last
    result.logs = {"id": [scanner.ids.segments], "local_id": [scanner.local_ids.segments]}
    if record_type == "visits":
        result.seen = np.packbits(scanner.seen)
    result.duration = time.perf_counter() - began
    return result


#: Blocks read by this process since it last handed freed memory back (see :func:`_trim_now_and_then`).
_untrimmed = [0]


def _trim_now_and_then(every: int = 64) -> None:
    """Hand freed heap memory back every ``every`` blocks this process reads, across the
    scans it runs: not after each scan (a part of a file is a few blocks, and memory
    handed back is faulted in again by the next part)."""
    _untrimmed[0] += 1
    if _untrimmed[0] >= every:
        _untrimmed[0] = 0
        release_memory()


class _NoHash:
    def update(self, _data: bytes) -> None:
        return None

    def hexdigest(self) -> str:
        return ""


def duplicates(
    spec: SourceSpec,
    name: str,
    record_type: str,
    *,
    work: str,
    offsets: list[int],
    logs: dict[str, list[Any]],
    max_examples: int = 20,
    limits: Limits | None = None,
) -> FindingSink:
    """EXP-004 findings of file ``name``: every repeat of a record ID (and, for children,
    of a local child ID, also counted under REC-008), from the IDs its scan logged."""
    limits = limits or Limits()
    sink = FindingSink(max_examples)
    found: list[tuple[int, int, str, str, str | None]] = []
    rest: list[tuple[int, str | None]] = []
    for order, (key, what, also) in enumerate(
        (("id", f"duplicate {record_type} id", None), ("local_id", "duplicate local child ID", REC_LOCAL_ID))
    ):
        if not any(logs.get(key, ())):
            continue
        count, examples = duplicate_lines(
            os.path.join(work, name, key),
            offsets,
            logs[key],
            key,
            lambda: member(spec, name),
            limits.max_line_bytes,
            max_examples,
        )
        found += [(line, order, "/" + key, f"{what} {value!r}", also) for line, value in examples]
        rest.append((count - len(examples), also))
    found.sort()
    for line, _order, pointer, message, also in found[:max_examples]:
        sink.add(EXP_UNIQUE, name, line, pointer, message, also=also)
    for _line, _order, _pointer, _message, also in found[max_examples:]:
        sink.add_count(EXP_UNIQUE, 1, also=also)
    for count, also in rest:  # counted after the examples, which must come first
        sink.add_count(EXP_UNIQUE, count, also=also)
    return sink
