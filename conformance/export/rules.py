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
        """The table of ``record_type`` (last record of each ID) and the row each entry came from."""
        h1, h2, line = (self.column(record_type, c) for c in ("h1", "h2", "line"))
        table, rows = KeyTable.build(h1, h2, line)
        del h1, h2
        table.columns["line"] = line[rows]
        for name in names:
            table.columns[name] = self.column(record_type, name)[rows]
        return table, rows


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
    valid = referrals["received"] > 0
    rows = children.find(c1, c2)
    found = rows >= 0
    death = np.where(found, children["death"][np.maximum(rows, 0)], 0) if len(children) else np.zeros(len(rows), np.int32)
    received = referrals["received"]
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
    keys: dict[str, np.ndarray],
    children: KeyTable,
    referrals: KeyTable,
    reader: Reader,
) -> np.ndarray:
    """Assessment -> child and referral exist (EXP-005); referral <= start,
    start on or before the child's death (EXP-006).

    ``keys`` holds the child (``c1``, ``c2``) and referral (``r1``, ``r2``, ``has_referral``)
    keys of each entry of ``assessments``. Returns the child's date of death per entry (0: none).
    """
    start = assessments["start"]
    valid = start > 0
    rows = children.find(keys["c1"], keys["c2"])
    found = rows >= 0
    death = np.where(found, children["death"][np.maximum(rows, 0)], 0).astype(np.int32) if len(children) else np.zeros(len(rows), np.int32)
    no_child = np.flatnonzero(valid & ~found)
    late = np.flatnonzero(valid & found & (death > 0) & (start > death))
    has = valid & keys["has_referral"]
    refs = referrals.find(keys["r1"], keys["r2"])
    ref_found = refs >= 0
    received = np.where(ref_found, referrals["received"][np.maximum(refs, 0)], 0) if len(referrals) else np.zeros(len(refs), np.int32)
    no_referral = np.flatnonzero(has & ~ref_found)
    early = np.flatnonzero(has & ref_found & (received > 0) & (start < received))
    line = assessments["line"]
    emit(sink, "assessments.jsonl", [
        Finding(EXP_REFS, "/child_id", line[no_child],
                lambda i, r: f"child_id {_field(r, 'child_id')!r} not found in children.jsonl", 0),
        Finding(EXP_DATES, "/start_date", line[late],
                lambda i, r: f"assessment started {iso(int(start[late[i]]))}, after the child's date of death {iso(int(death[late[i]]))}", 1),
        Finding(EXP_REFS, "/referral_id", line[no_referral],
                lambda i, r: f"referral_id {_field(r, 'referral_id')!r} not found in referrals.jsonl", 2),
        Finding(EXP_DATES, "/start_date", line[early],
                lambda i, r: f"assessment started {iso(int(start[early[i]]))}, before its referral was received ({iso(int(received[early[i]]))})", 3),
    ], reader)
    return np.where(valid, death, 0).astype(np.int32)


def check_seen(sink: FindingSink, assessments: KeyTable, seen: np.ndarray | None, reader: Reader) -> None:
    """Every completed assessment has a visit with the child seen between start and completion (EXP-008).

    ``seen``: entries of ``assessments`` that have such a visit.
    """
    start, completed = assessments["start"], assessments["completed"]
    ok = np.zeros(len(assessments), bool)
    if seen is not None and len(seen):
        ok[seen] = True
    unseen = np.flatnonzero((start > 0) & (completed > 0) & ~ok)
    emit(sink, "assessments.jsonl", [
        Finding(EXP_TIMESCALES, "/status", assessments["line"][unseen],
                lambda i, r: (f"assessment {_field(r, 'id')!r} completed on {iso(int(completed[unseen[i]]))} without a visit "
                              f"seeing the child between {iso(int(start[unseen[i]]))} and {iso(int(completed[unseen[i]]))}")),
    ], reader)
