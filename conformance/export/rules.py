"""Cross-file rules, run by the coordinator over the compact tables the scans wrote.

Tables hold IDs as ``(h1, h2)`` hash pairs with dates as ``yyyymmdd`` integers and
line numbers; joins are vectorised (``np.searchsorted``). A finding's message names
the real ID: the lines of the first ``max_examples`` findings are read again from the
file (the count covers all of them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.export.findings import EXP_DATES, EXP_REFS, EXP_TIMESCALES, FindingSink
from conformance.export.keys import KeyTable, iso, load_column

#: ``reader(file, sorted lines)`` -> ``{line: parsed record or None}``
Reader = Callable[[str, np.ndarray], dict[int, Any]]

_DTYPES = {
    "h1": np.int64, "h2": np.int64, "line": np.int64, "c1": np.int64, "c2": np.int64, "r1": np.int64, "r2": np.int64,
    "has_referral": np.bool_, "death": np.int32, "received": np.int32, "start": np.int32, "completed": np.int32,
}


@dataclass
class Finding:
    """A kind of finding of one cross-file rule: where, and how to word one of them."""

    requirement: str
    pointer: str
    lines: np.ndarray
    message: Callable[[int, Any], str]  # (index in ``lines``, record at that line) -> message
    order: int = 0  # among findings on the same line


class Tables:
    """The tables of the index files of one export (empty when a file is absent or unreadable)."""

    def __init__(self, work: str, parts: dict[str, int], offsets: dict[str, list[int]]) -> None:
        self._work = work
        self._parts = parts
        self._offsets = offsets

    def column(self, record_type: str, name: str) -> np.ndarray:
        file = f"{record_type}.jsonl"
        if file not in self._parts:
            return np.empty(0, _DTYPES[name])
        offsets = self._offsets[file] if name == "line" else None
        return load_column(os.path.join(self._work, file, "table"), name, _DTYPES[name], self._parts[file], offsets)

    def keyed(self, record_type: str, *names: str) -> tuple[KeyTable, np.ndarray]:
        """The table of ``record_type`` (last record of each ID) with ``names`` columns, and
        the row of the file's table each entry came from."""
        table, rows = KeyTable.build(self.column(record_type, "h1"), self.column(record_type, "h2"), self.column(record_type, "line"))
        for name in names:
            table.columns[name] = self.column(record_type, name)[rows]
        return table, rows


#: Table entries joined at once (bounds the temporaries of a join).
SLICE = 1 << 19


def _join(table: KeyTable, q1: np.ndarray, q2: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``(found, table[column] of the match or 0)`` for each key, a slice at a time."""
    found = np.zeros(len(q1), bool)
    value = np.zeros(len(q1), table[column].dtype if len(table) else np.int32)
    for a in range(0, len(q1), SLICE):
        rows = table.find(q1[a : a + SLICE], q2[a : a + SLICE])
        hit = rows >= 0
        found[a : a + SLICE] = hit
        if len(table):
            value[a : a + SLICE] = np.where(hit, table[column][np.maximum(rows, 0)], 0)
    return found, value


def emit(sink: FindingSink, file: str, kinds: list[Finding], reader: Reader) -> None:
    """Add ``kinds`` to ``sink`` in line order: the first ``max_examples`` of each requirement
    worded from their record (read again), the rest counted."""
    for requirement in dict.fromkeys(k.requirement for k in kinds):
        mine = [k for k in kinds if k.requirement == requirement and len(k.lines)]
        if not mine:
            continue
        line = np.concatenate([k.lines for k in mine])
        order = np.concatenate([np.full(len(k.lines), k.order) for k in mine])
        which = np.concatenate([np.full(len(k.lines), i) for i, k in enumerate(mine)])
        index = np.concatenate([np.arange(len(k.lines)) for k in mine])
        shown = np.lexsort((order, line))[: sink.max_examples]
        records = reader(file, np.unique(line[shown])) if len(shown) else {}
        for s in shown.tolist():
            kind = mine[int(which[s])]
            n = int(line[s])
            sink.add(requirement, file, n, kind.pointer, kind.message(int(index[s]), records.get(n)))
        sink.add_count(requirement, len(line) - len(shown))


def _field(record: Any, key: str) -> Any:
    return record.get(key) if isinstance(record, dict) else None


def check_referrals(sink: FindingSink, referrals: KeyTable, c1: np.ndarray, c2: np.ndarray, children: KeyTable,
                    reader: Reader) -> None:
    """Referral -> child exists (EXP-005); received on or before the child's death (EXP-006).

    ``referrals`` holds the last record of each referral ID; ``c1``/``c2`` its child keys.
    """
    received = referrals["received"]
    valid = received > 0
    found, death = _join(children, c1, c2, "death")
    missing = np.flatnonzero(valid & ~found)
    late = np.flatnonzero(valid & found & (death > 0) & (received > death))
    line = referrals["line"]
    emit(sink, "referrals.jsonl", [
        Finding(EXP_REFS, "/child_id", line[missing],
                lambda i, r: f"child_id {_field(r, 'child_id')!r} not found in children.jsonl"),
        Finding(EXP_DATES, "/received_on", line[late],
                lambda i, r: f"referral received {iso(int(received[late[i]]))}, after the child's date of death {iso(int(death[late[i]]))}"),
    ], reader)


def check_assessments(
    sink: FindingSink,
    assessments: KeyTable,
    keys: Callable[[str], np.ndarray],
    line_of: Callable[[np.ndarray], np.ndarray],
    children: KeyTable,
    referrals: dict[str, KeyTable],
    reader: Reader,
) -> np.ndarray:
    """Assessment -> child and referral exist (EXP-005); referral <= start,
    start on or before the child's death (EXP-006).

    ``keys(name)`` gives the child (``c1``, ``c2``) and referral (``r1``, ``r2``,
    ``has_referral``) keys of each entry of ``assessments``, loaded one at a time;
    ``line_of(entries)`` their lines. ``referrals["table"]`` is dropped once joined.
    Returns the child's date of death per entry (0: none).
    """
    start = assessments["start"]
    valid = start > 0
    has = valid & keys("has_referral")
    ref_found, received = _join(referrals.pop("table"), keys("r1"), keys("r2"), "received")
    no_referral = np.flatnonzero(has & ~ref_found)
    early = np.flatnonzero(has & ref_found & (received > 0) & (start < received))
    received = received[early]
    del has, ref_found
    found, death = _join(children, keys("c1"), keys("c2"), "death")
    no_child = np.flatnonzero(valid & ~found)
    late = np.flatnonzero(valid & found & (death > 0) & (start > death))
    del found
    emit(sink, "assessments.jsonl", [
        Finding(EXP_REFS, "/child_id", line_of(no_child),
                lambda i, r: f"child_id {_field(r, 'child_id')!r} not found in children.jsonl", 0),
        Finding(EXP_DATES, "/start_date", line_of(late),
                lambda i, r: f"assessment started {iso(int(start[late[i]]))}, after the child's date of death {iso(int(death[late[i]]))}", 1),
        Finding(EXP_REFS, "/referral_id", line_of(no_referral),
                lambda i, r: f"referral_id {_field(r, 'referral_id')!r} not found in referrals.jsonl", 2),
        Finding(EXP_DATES, "/start_date", line_of(early),
                lambda i, r: f"assessment started {iso(int(start[early[i]]))}, before its referral was received ({iso(int(received[i]))})", 3),
    ], reader)
    death[~valid] = 0
    return death


def check_seen(sink: FindingSink, assessments: KeyTable, line: np.ndarray, seen: np.ndarray | None, reader: Reader) -> None:
    """Every completed assessment has a visit with the child seen between start and completion (EXP-008).

    ``line``: the line of each entry of ``assessments``; ``seen``: a mask of the entries that have such a visit.
    """
    start, completed = assessments["start"], assessments["completed"]
    ok = seen if seen is not None else np.zeros(len(assessments), bool)
    unseen = np.flatnonzero((start > 0) & (completed > 0) & ~ok)
    emit(sink, "assessments.jsonl", [
        Finding(EXP_TIMESCALES, "/status", line[unseen],
                lambda i, r: (f"assessment {_field(r, 'id')!r} completed on {iso(int(completed[unseen[i]]))} without a visit "
                              f"seeing the child between {iso(int(start[unseen[i]]))} and {iso(int(completed[unseen[i]]))}")),
    ], reader)
