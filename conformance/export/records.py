"""Streaming scan of one JSON Lines file: parse, schema-validate, per-record rules.

Runs in a worker process (or in-process for small exports). Each line is parsed with
orjson, checked against the compiled jsonschema-rs validator of its record type
(``is_valid`` first, ``iter_errors`` only for records that fail, formats checked), and
passed to the rules of its type. The scan returns bounded findings, the file's bytes,
record count and sha256 (for the manifest), and a compact index (IDs and the few dates
the cross-record rules need) — never the records themselves.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from typing import Any

import jsonschema_rs
import orjson

from conformance._resources import spec_path
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
from stdnum.gb import nhs as _nhs
from stdnum.gb import upn as _upn

from conformance.identifiers import is_valid_nhs_number, is_valid_upn
from conformance.workingdays import due_date

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
#: Record types whose index the others need; scanned first.
INDEX_TYPES = ("children", "practitioners", "referrals", "assessments")
BLOCK = 4 * 1024 * 1024
_MISSING = object()


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema of record type (or ``manifest``) ``name``."""
    return json.loads(spec_path("schemas", "export", f"{name}.schema.json").read_text(encoding="utf-8"))


@cache
def validator(name: str) -> Any:
    """Return the compiled jsonschema-rs validator for ``name``, with format checking on."""
    return jsonschema_rs.Draft202012Validator(load_schema(name), validate_formats=True)


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
def _due(kind: str, start: str) -> str:
    return due_date(kind, date.fromisoformat(start)).isoformat()


@lru_cache(maxsize=1024)
def _la_code_ok(code: str) -> bool:
    body = code + "000000000"
    return is_valid_upn(_upn.calc_check_digit(body) + body)


def upn_ok(value: str) -> bool:
    """``is_valid_upn`` for a schema-valid (compact) UPN, without re-cleaning the string.

    Uses python-stdnum's own check-letter function; a negative answer is confirmed by
    :func:`conformance.identifiers.is_valid_upn` before it becomes a finding.
    """
    try:
        return value[-1] in _ALPHABET and _la_code_ok(value[1:4]) and _upn.calc_check_digit(value[1:]) == value[0]
    except Exception:  # noqa: BLE001 - fall back to the authority
        return is_valid_upn(value)


def nhs_ok(value: str) -> bool:
    """``is_valid_nhs_number`` for a schema-valid (10-digit) NHS number, via stdnum's checksum."""
    try:
        return _nhs.checksum(value) == 0
    except Exception:  # noqa: BLE001
        return is_valid_nhs_number(value)


_ALPHABET = frozenset("ABCDEFGHJKLMNPQRTUVWXYZ0123456789")


@dataclass
class FileScan:
    """What a scan of one file returns to the coordinator."""

    name: str
    record_type: str
    records: int = 0
    bytes: int = 0
    sha256: str = ""
    sink: FindingSink = field(default_factory=FindingSink)
    index: Any = None
    seen_ok: set[str] = field(default_factory=set)  # visits: completed assessments with a qualifying seen visit
    read_error: str | None = None
    duration: float = 0.0
    lines: int = 0  # physical lines read (to re-base line numbers of a part)
    ids: set[str] | None = None  # IDs seen, for a part of a file
    local_ids: set[str] | None = None


_CONTEXT: dict[str, Any] = {}


def set_context(context: dict[str, Any]) -> None:
    """Set the indexes inherited by worker processes forked afterwards (and used in-process)."""
    global _CONTEXT
    _CONTEXT = context


class _Range:
    """Bytes ``start``..``end`` of a seekable binary stream."""

    def __init__(self, stream: Any, start: int, end: int) -> None:
        stream.seek(start)
        self._stream = stream
        self._left = end - start

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(size)
        self._left -= len(data)
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


def line_starts(spec: SourceSpec, name: str, size: int, parts: int) -> list[int]:
    """Split a directory file into about ``parts`` byte ranges that start at line starts."""
    bounds = [0]
    with member(spec, name) as stream:
        for k in range(1, parts):
            target = max(size * k // parts, bounds[-1])
            stream.seek(target)
            pos = target
            while True:
                block = stream.read(1 << 16)
                if not block:
                    pos = size
                    break
                cut = block.find(b"\n")
                if cut >= 0:
                    pos += cut + 1
                    break
                pos += len(block)
            if bounds[-1] < pos < size:
                bounds.append(pos)
    bounds.append(size)
    return bounds


def locate_duplicates(spec: SourceSpec, name: str, key: str, values: set[str], limits: Limits) -> list[tuple[int, str]]:
    """Return ``(line, value)`` of every repeat occurrence of ``values`` under ``key``."""
    seen: set[str] = set()
    out: list[tuple[int, str]] = []
    with member(spec, name) as stream:
        for first, lines, _final in iter_batches(stream, hashlib.sha256(), limits.max_line_bytes, [0]):
            for offset, line in enumerate(lines):
                if not line:
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                value = obj.get(key) if isinstance(obj, dict) else None
                if value in values:
                    if value in seen:
                        out.append((first + offset, value))
                    seen.add(value)
    return out


def iter_batches(stream: Any, hasher: Any, max_line: int, counter: list[int]) -> Iterator[tuple[int, list[bytes | None], bool]]:
    """Yield ``(first line number, lines, final)`` from a binary stream.

    A line over ``max_line`` bytes is yielded as ``None`` and skipped without being held
    in memory. ``final`` is True for the last batch when the file does not end with a
    newline (its last line may be truncated). Bytes read are hashed and counted.
    """
    pending = b""
    skipping = False
    lineno = 1
    while True:
        block = stream.read(BLOCK)
        if not block:
            break
        hasher.update(block)
        counter[0] += len(block)
        if skipping:
            cut = block.find(b"\n")
            if cut < 0:
                continue
            block = block[cut + 1 :]
            skipping = False
        data = pending + block if pending else block
        lines: list[bytes | None] = data.split(b"\n")  # type: ignore[assignment]
        pending = lines.pop()  # type: ignore[assignment]
        if len(pending) > max_line:
            lines.append(None)
            pending = b""
            skipping = True
        if lines:
            yield lineno, lines, False
            lineno += len(lines)
    if pending:
        yield lineno, [pending], True


class _Scanner:
    """Applies the schema and per-record rules of one record type."""

    def __init__(self, name: str, record_type: str, sink: FindingSink, context: dict[str, Any]) -> None:
        self.name = name
        self.type = record_type
        self.sink = sink
        self.ids: set[str] = set()
        self.children: dict[str, str | None] = context.get("children", {})
        self.practitioners: set[str] = context.get("practitioners", set())
        self.assessments: dict[str, Any] = context.get("assessments", {})
        self.local_ids: set[str] = set()
        self.index: Any = {}
        self.seen_ok: set[str] = set()
        self.dates: dict[str, str] = {}
        self.rule: Callable[[dict[str, Any], int], None] = getattr(self, "_" + record_type)
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
        if record_type == "practitioners":
            self.index = self.ids

    # -- helpers -------------------------------------------------------------------------
    def _d(self, value: str | None) -> str | None:
        """Intern a date string so an index holds one copy of each distinct date."""
        if value is None:
            return None
        return self.dates.setdefault(value, value)

    def _unique(self, obj: dict[str, Any], lineno: int) -> str | None:
        rid = obj.get("id")
        if type(rid) is not str:
            return None
        if rid in self.ids:
            self.sink.add(EXP_UNIQUE, self.name, lineno, "/id", f"duplicate {self.type} id {rid!r}")
        else:
            self.ids.add(rid)
        return rid

    def _ref(self, obj: dict[str, Any], lineno: int, key: str, known: Any, target: str) -> None:
        value = obj[key]
        if value not in known:
            self.sink.add(EXP_REFS, self.name, lineno, "/" + key, f"{key} {value!r} not found in {target}.jsonl")

    # -- invalid records: keep their id so one schema error does not cascade --------------
    def invalid(self, obj: dict[str, Any], lineno: int) -> None:
        rid = self._unique(obj, lineno)
        if rid is not None and self.type in ("children", "referrals", "assessments"):
            self.index[rid] = None

    # -- one rule method per record type (records already schema-valid) ----------------------
    def _children(self, o: dict[str, Any], n: int) -> None:
        rid = self._unique(o, n)
        sink, name = self.sink, self.name
        local = o["local_id"]
        if local is not None:
            if local in self.local_ids:
                sink.add(EXP_UNIQUE, name, n, "/local_id", f"duplicate local child ID {local!r}", also=REC_LOCAL_ID)
            else:
                self.local_ids.add(local)
        upn = o["upn"]
        if upn is not None and not upn_ok(upn) and not is_valid_upn(upn):
            sink.add(EXP_IDENTIFIERS, name, n, "/upn", f"UPN {upn!r} has an invalid check letter or LA code")
        nhs = o["nhs_number"]
        if nhs is not None and not nhs_ok(nhs) and not is_valid_nhs_number(nhs):
            sink.add(EXP_IDENTIFIERS, name, n, "/nhs_number", f"NHS number {nhs!r} fails the modulus 11 check")
        if rid is not None:
            self.index[rid] = self._d(o["date_of_death"])

    def _practitioners(self, o: dict[str, Any], n: int) -> None:
        self._unique(o, n)

    def _referrals(self, o: dict[str, Any], n: int) -> None:
        rid = self._unique(o, n)
        if rid is not None:
            self.index[rid] = (o["child_id"], self._d(o["received_on"]), n)

    def _assessments(self, o: dict[str, Any], n: int) -> None:
        rid = self._unique(o, n)
        start, completed = o["start_date"], o["completed_on"]
        expected = _due(o["type"], start)
        if o["due_date"] != expected:
            self.sink.add(
                EXP_TIMESCALES, self.name, n, "/due_date",
                f"due date {o['due_date']} should be {expected} ({o['type']} assessment started {start}, working days)",
            )
        if rid is not None:
            self.index[rid] = (o["child_id"], o["referral_id"], self._d(start), self._d(completed), n)

    def _visits(self, o: dict[str, Any], n: int) -> None:
        self._unique(o, n)
        aid = o["assessment_id"]
        assessment = self.assessments.get(aid, _MISSING)
        if assessment is _MISSING:
            self.sink.add(EXP_REFS, self.name, n, "/assessment_id", f"assessment_id {aid!r} not found in assessments.jsonl")
        elif assessment is not None and o["child_seen"]:
            child_id, start, completed = assessment
            day = o["visit_date"]
            if day < start:
                self.sink.add(EXP_DATES, self.name, n, "/visit_date", f"child seen on {day}, before the assessment started ({start})")
            death = self.children.get(child_id)
            if death is not None and day > death:
                self.sink.add(EXP_DATES, self.name, n, "/visit_date", f"child seen on {day}, after their date of death {death}")
            if completed is not None and start <= day <= completed:
                self.seen_ok.add(aid)

    def _case_notes(self, o: dict[str, Any], n: int) -> None:
        self._unique(o, n)
        self._ref(o, n, "child_id", self.children, "children")
        self._ref(o, n, "author_id", self.practitioners, "practitioners")

    def _allocations(self, o: dict[str, Any], n: int) -> None:
        self._unique(o, n)
        self._ref(o, n, "child_id", self.children, "children")
        self._ref(o, n, "practitioner_id", self.practitioners, "practitioners")

    def _aliases(self, o: dict[str, Any], n: int) -> None:
        self._unique(o, n)
        self._ref(o, n, "child_id", self.children, "children")


def scan_file(
    spec: SourceSpec,
    name: str,
    record_type: str,
    *,
    max_examples: int = 20,
    limits: Limits | None = None,
    context: dict[str, Any] | None = None,
    byte_range: tuple[int, int] | None = None,
) -> FileScan:
    """Scan file ``name`` of the export as records of ``record_type``.

    ``context`` holds the indexes of other files (None: the process-wide one set with
    :func:`set_context` before worker processes were forked). With ``byte_range`` only
    that part of a directory file is read (it starts at a line start); line numbers are
    then relative to it and the result carries its IDs for cross-part uniqueness.
    """
    import time

    began = time.perf_counter()
    limits = limits or Limits()
    sink = FindingSink(max_examples)
    result = FileScan(name, record_type, sink=sink)
    scanner = _Scanner(name, record_type, sink, _CONTEXT if context is None else context)
    check = validator(record_type)
    is_valid = check.is_valid
    loads = orjson.loads
    dumps = orjson.dumps
    decode_error = orjson.JSONDecodeError
    add = sink.add
    rule = scanner.rule
    records = 0
    hasher = hashlib.sha256()
    counter = [0]
    n_lines = [0]
    try:
        with member(spec, name) as raw:
            stream = raw if byte_range is None else _Range(raw, *byte_range)
            for first, lines, final in iter_batches(stream, hasher, limits.max_line_bytes, counter):
                n = first - 1
                n_lines[0] = first - 1 + len(lines)
                for line in lines:
                    n += 1
                    if line is None:
                        records += 1
                        add(EXP_SCHEMA, name, n, "", f"line longer than the {limits.max_line_bytes} byte limit; not read")
                        continue
                    try:
                        obj = loads(line)
                    except decode_error as exc:
                        records += 1
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
                    records += 1
                    if type(obj) is not dict:
                        add(EXP_SCHEMA, name, n, "", f"record is a JSON {type(obj).__name__.replace('list', 'array')}, expected an object")
                        continue
                    if len(dumps(obj)) != len(line) and not _compact_keys_unique(line, obj):
                        key = duplicate_key(line)
                        if key is not None:
                            add(EXP_SCHEMA, name, n, "/" + key, f"duplicate key {key!r} in one object")
                    if is_valid(obj):
                        try:
                            rule(obj, n)
                        except Exception as exc:  # a crashed rule is ERROR, never a pass
                            for requirement in scanner.rule_requirements:
                                sink.crashed(requirement, f"{name}:{n}", exc)
                    else:
                        for pointer, message in schema_errors(record_type, obj):
                            add(EXP_SCHEMA, name, n, pointer, message)
                        scanner.invalid(obj, n)
    except OSError as exc:
        result.read_error = f"{name}: read failed: {exc}"
    except Exception as exc:  # zlib / zip CRC errors and the like
        result.read_error = f"{name}: read failed: {type(exc).__name__}: {exc}"
    result.records = records
    result.bytes = counter[0]
    result.sha256 = hasher.hexdigest()
    result.index = scanner.index if record_type in ("children", "practitioners", "referrals", "assessments") else None
    result.seen_ok = scanner.seen_ok
    result.lines = n_lines[0]
    if byte_range is not None:
        result.ids = scanner.ids
        result.local_ids = scanner.local_ids
    result.duration = time.perf_counter() - began
    return result
