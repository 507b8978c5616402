"""Cross-file rules, run by the coordinator over the compact tables the scans wrote.

Tables hold IDs as ``(h1, h2)`` hash pairs with dates as ``yyyymmdd`` integers and
line numbers; joins are vectorised (``np.searchsorted``). A finding's message names
the real ID: the lines of the first ``max_examples`` findings are read again from the
file (the count covers all of them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.export.findings import EXP_DATES, EXP_REFS, EXP_TIMESCALES, FindingSink
from conformance.export.keys import KeyTable, iso, load_column, release_memory, repeats
from conformance.export.records import TABLES

#: ``reader(file, sorted lines)`` -> ``{line: parsed record or None}``
Reader = Callable[[str, np.ndarray], dict[int, Any]]


@dataclass
class Finding:
    """A kind of finding of one cross-file rule: where, and how to word one of them."""

    requirement: str
    pointer: str
    lines: np.ndarray
    message: Callable[[int, Any], str]  # (index in ``lines``, record at that line) -> message
    order: int = 0  # among findings on the same line


#: Table rows read and joined at once (bounds the temporaries of a join).
SLICE = 1 << 16


class Tables:
    """The tables the scans of the index files wrote (empty when a file is absent or unreadable).

    Rows are in file order; a repeated ID has several rows, of which the last counts.
    """

    def __init__(self, work: str, parts: dict[str, int], offsets: dict[str, list[int]]) -> None:
        self._work = work
        self._parts = parts
        self._offsets = offsets

    def _paths(self, record_type: str) -> list[tuple[str, int]]:
        """``(rows file, line offset)`` of each part of the file of ``record_type``."""
        file = f"{record_type}.jsonl"
        directory = os.path.join(self._work, file, "table")
        return [
            (os.path.join(directory, f"{part:05d}"), self._offsets[file][part])
            for part in range(self._parts.get(file, 0))
        ]

    def column(self, record_type: str, name: str) -> np.ndarray:
        dtype = TABLES[record_type]
        paths = self._paths(record_type)
        sizes = [os.path.getsize(path) // dtype.itemsize if os.path.exists(path) else 0 for path, _ in paths]
        out = np.empty(sum(sizes), dtype[name])
        row = 0
        for (path, offset), size in zip(paths, sizes):
            if size:
                out[row : row + size] = load_column(path, dtype, name)[:size]
                if name == "line":
                    out[row : row + size] += offset
                row += size
        return out

    def slices(
        self, record_type: str, names: tuple[str, ...], size: int | None = None
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``(first row, {name: values})`` over the rows in file order, ``size`` rows at a time."""
        dtype, row, size = TABLES[record_type], 0, size or SLICE
        for path, offset in self._paths(record_type):
            rows = os.path.getsize(path) // dtype.itemsize if os.path.exists(path) else 0
            for a in range(0, rows, size):
                block = np.fromfile(path, dtype, min(size, rows - a), offset=a * dtype.itemsize)
                out = {name: np.array(block[name]) for name in names}
                if "line" in out:
                    out["line"] += offset
                yield row, out
                row += len(block)

    def latest(self, record_type: str) -> np.ndarray | None:
        """Mask of the rows that count (the last of each ID); None: every row (no repeated ID)."""
        h1 = self.column(record_type, "h1")
        n = len(h1)
        ordered = np.sort(h1)
        repeated = repeats(ordered)
        del ordered
        if not len(repeated):
            return None
        rows = np.flatnonzero(np.isin(h1, repeated))  # only these need a closer look
        del h1
        h1, h2, line = (self.column(record_type, c)[rows] for c in ("h1", "h2", "line"))
        order = np.lexsort((line, h2, h1))
        h1, h2 = h1[order], h2[order]
        last = np.ones(len(order), bool)
        last[:-1] = (h1[1:] != h1[:-1]) | (h2[1:] != h2[:-1])
        kept = np.ones(n, bool)
        kept[rows] = False
        kept[rows[order[last]]] = True
        return kept

    def save_keyed(
        self,
        record_type: str,
        directory: str,
        names: tuple[str, ...] = (),
        kept: np.ndarray | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Write the rows that count, sorted by ``(h1, h2)``, with columns ``names`` (and the
        row-order arrays in ``extra``), one column at a time, as a table under ``directory``
        (see :func:`~conformance.export.keys.load_table`)."""
        os.makedirs(directory, exist_ok=True)
        index = np.flatnonzero(kept) if kept is not None else None
        pick = (lambda v: v[index]) if index is not None else (lambda v: v)
        h1 = pick(self.column(record_type, "h1"))
        order = np.argsort(h1)  # unstable is enough: ties are ordered again below
        ordered = h1[order]
        if (ordered[1:] == ordered[:-1]).any():  # IDs sharing h1: order them by h2 too (stable)
            order = np.lexsort((pick(self.column(record_type, "h2")), h1))
            ordered = h1[order]
        del h1
        np.save(os.path.join(directory, "h1.npy"), ordered)
        del ordered
        np.save(os.path.join(directory, "h2.npy"), pick(self.column(record_type, "h2"))[order])
        for name in names:
            np.save(os.path.join(directory, f"{name}.npy"), pick(self.column(record_type, name))[order])
        for name, values in (extra or {}).items():
            np.save(os.path.join(directory, f"{name}.npy"), pick(values)[order])
        del order
        release_memory()


def _join(table: KeyTable, q1: np.ndarray, q2: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``(found, table[column] of the match or 0)`` for each key."""
    rows = table.find(q1, q2)
    found = rows >= 0
    if not len(table):
        return found, np.zeros(len(q1), np.int32)
    return found, np.where(found, table[column][np.maximum(rows, 0)], 0)


class _Collected:
    """Finding rows gathered slice by slice: lines plus the values their messages need."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, mask: np.ndarray, **columns: np.ndarray) -> None:
        if mask.any():
            for name, values in columns.items():
                self.parts.setdefault(name, []).append(values[mask])

    def __getitem__(self, name: str) -> np.ndarray:
        parts = self.parts.get(name)
        return np.concatenate(parts) if parts else np.empty(0, np.int64)


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


def check_referrals(
    sink: FindingSink, tables: Tables, kept: np.ndarray | None, children: KeyTable, reader: Reader
) -> None:
    """Referral -> child exists (EXP-005); received on or before the child's death (EXP-006).

    Only the rows in ``kept`` (None: all) count: the last record of each referral ID.
    """
    missing, late = _Collected(), _Collected()
    for row, s in tables.slices("referrals", ("c1", "c2", "received", "line")):
        counts = s["received"] > 0  # 0: the record failed its schema
        if kept is not None:
            counts &= kept[row : row + len(counts)]
        found, death = _join(children, s["c1"], s["c2"], "death")
        missing.add(counts & ~found, line=s["line"])
        late.add(
            counts & found & (death > 0) & (s["received"] > death), line=s["line"], received=s["received"], death=death
        )
    received, death = late["received"], late["death"]
    emit(
        sink,
        "referrals.jsonl",
        [
            Finding(
                EXP_REFS,
                "/child_id",
                missing["line"],
                lambda i, r: f"child_id {_field(r, 'child_id')!r} not found in children.jsonl",
            ),
            Finding(
                EXP_DATES,
                "/received_on",
                late["line"],
                lambda i, r: (
                    f"referral received {iso(int(received[i]))}, after the child's date of death {iso(int(death[i]))}"
                ),
            ),
        ],
        reader,
    )


def check_assessments(
    sink: FindingSink, tables: Tables, kept: np.ndarray | None, children: KeyTable, referrals: KeyTable, reader: Reader
) -> np.ndarray:
    """Assessment -> child and referral exist (EXP-005); referral <= start,
    start on or before the child's death (EXP-006).

    Only the rows in ``kept`` (None: all) count. Returns, per row, the date of death of
    the assessment's child (0: none, or the assessment does not count).
    """
    no_child, late, no_referral, early = _Collected(), _Collected(), _Collected(), _Collected()
    deaths = []
    for row, s in tables.slices("assessments", ("c1", "c2", "r1", "r2", "has_referral", "start", "line")):
        start, line = s["start"], s["line"]
        counts = start > 0  # 0: the record failed its schema
        if kept is not None:
            counts &= kept[row : row + len(counts)]
        found, death = _join(children, s["c1"], s["c2"], "death")
        no_child.add(counts & ~found, line=line)
        late.add(counts & found & (death > 0) & (start > death), line=line, start=start, death=death)
        deaths.append(np.where(counts, death, 0).astype(np.int32))
        has = counts & s["has_referral"]
        found, received = _join(referrals, s["r1"], s["r2"], "received")
        no_referral.add(has & ~found, line=line)
        early.add(has & found & (received > 0) & (start < received), line=line, start=start, received=received)
    late_start, late_death, early_start, early_received = (
        late["start"],
        late["death"],
        early["start"],
        early["received"],
    )
    emit(
        sink,
        "assessments.jsonl",
        [
            Finding(
                EXP_REFS,
                "/child_id",
                no_child["line"],
                lambda i, r: f"child_id {_field(r, 'child_id')!r} not found in children.jsonl",
                0,
            ),
            Finding(
                EXP_DATES,
                "/start_date",
                late["line"],
                lambda i, r: (
                    f"assessment started {iso(int(late_start[i]))}, after the child's date of death {iso(int(late_death[i]))}"
                ),
                1,
            ),
            Finding(
                EXP_REFS,
                "/referral_id",
                no_referral["line"],
                lambda i, r: f"referral_id {_field(r, 'referral_id')!r} not found in referrals.jsonl",
                2,
            ),
            Finding(
                EXP_DATES,
                "/start_date",
                early["line"],
                lambda i, r: (
                    f"assessment started {iso(int(early_start[i]))}, before its referral was received ({iso(int(early_received[i]))})"
                ),
                3,
            ),
        ],
        reader,
    )
    return np.concatenate(deaths) if deaths else np.empty(0, np.int32)


def check_seen(
    sink: FindingSink,
    start: np.ndarray,
    completed: np.ndarray,
    line: np.ndarray,
    seen: np.ndarray | None,
    reader: Reader,
) -> None:
    """Every completed assessment has a visit with the child seen between start and completion (EXP-008).

    Columns of the assessments table: ``start``, ``completed`` and ``line`` of each entry;
    ``seen``: a mask of the entries that have such a visit.
    """
    mask = (start > 0) & (completed > 0)
    if seen is not None:
        mask &= ~seen
    unseen = np.flatnonzero(mask)
    emit(
        sink,
        "assessments.jsonl",
        [
            Finding(
                EXP_TIMESCALES,
                "/status",
                line[unseen],
                lambda i, r: (
                    f"assessment {_field(r, 'id')!r} completed on {iso(int(completed[unseen[i]]))} without a visit "
                    f"seeing the child between {iso(int(start[unseen[i]]))} and {iso(int(completed[unseen[i]]))}"
                ),
            ),
        ],
        reader,
    )
