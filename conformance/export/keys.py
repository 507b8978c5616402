"""Record IDs as 64-bit hashes: flat-memory uniqueness and compact cross-file indexes.

An ID is keyed by two independent 64-bit hashes, ``h1`` and ``h2``, computed together and
vectorised over a chunk of IDs (numpy): each is a chain of MurmurHash3's 64-bit finaliser
over the ID's UTF-8 bytes, eight at a time, started from its own 64-bit key and ended
with the byte length (see :func:`key_pair`). The keys come from ``hash()``, so they are
random per run (unless ``PYTHONHASHSEED`` fixes them) and shared by the worker
processes forked from one parent. The hashes are not cryptographic: keyed per run, they
cannot be precomputed into a file, and the stakes are bounded as follows.

* Uniqueness uses ``h1`` alone and never trusts it: each file's ``(h1, line)`` pairs are
  spilled to temporary files, partitioned by the top bits of ``h1``, and sorted one
  partition at a time (memory bounded by a partition, not by the export). Equal hashes
  are only candidates: their lines are read again and the real ID strings compared, so
  a hash collision can never produce a duplicate finding.
* Joins that carry data (a referral's child and its date of death, a visit's
  assessment...) compare the 128-bit pair ``(h1, h2)`` in tables sorted by it; distinct
  IDs sharing ``h1`` are told apart by ``h2``.
* Existence checks (a note's child, an allocation's practitioner) compare ``h1`` alone:
  a miss is exact, so a collision can only hide a dangling reference (probability about
  references x IDs / 2**64), never report one.

Tables are written to temporary files and mapped read-only by every process that needs
them, so workers share one copy.
"""

from __future__ import annotations

import ctypes
import functools
import heapq
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_not
from typing import Any

import numpy as np
import orjson

from conformance.export.lines import iter_batches

#: Bits of ``h1`` kept (tests narrow it to force collisions).
_H1_MASK = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


#: (h1, line) pairs buffered per key before they are spilled.
SPILL_ENTRIES = 1 << 16
#: Candidate lines confirmed per pass over a file (bounds the strings held at once).
CONFIRM_LINES = 200_000
#: Bytes of record file per duplicate-detection partition (a power of two of them).
PARTITION_BYTES = 16 * 1024 * 1024

PAIR = np.dtype([("h", "<i8"), ("line", "<i8")])


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc keeps it otherwise; no-op elsewhere)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S33 = np.uint64(33)
#: Keys of ``h1`` and ``h2`` (a column each): from ``hash()``, so random per run and shared
#: by forked workers.
_KEYS = np.array([[hash(f"ics-conformance export {name}") & 0xFFFF_FFFF_FFFF_FFFF] for name in ("h1", "h2")], np.uint64)


def _fmix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place (uint64 arithmetic wraps)."""
    h ^= h >> _S33
    h *= _M1
    h ^= h >> _S33
    h *= _M2
    h ^= h >> _S33
    return h


def _mix(words: np.ndarray, length: np.ndarray, count: np.ndarray | None, rows: int) -> np.ndarray:
    """The first ``rows`` hashes (h1, h2) of rows of little-endian 8-byte words (zero-padded
    UTF-8), ``length`` bytes each, as a (rows, n) uint64 array.

    Row ``i`` mixes its first ``count[i]`` words (None: all of them), so the value does not
    depend on how wide the matrix was padded. The length comes last: values that pad to
    the same words still differ.
    """
    h = np.repeat(_KEYS[:rows], len(words), axis=1)
    for j in range(words.shape[1]):
        if count is None:
            h ^= words[:, j]
            _fmix(h)
        else:
            h = np.where(j < count, _fmix(h ^ words[:, j]), h)
    h ^= length.astype(np.uint64) * _GOLDEN
    h = _fmix(h)
    h[0] &= _H1_MASK
    return h


def _words(matrix: np.ndarray, width: int) -> np.ndarray:
    """The first ``width`` bytes of each row of a uint8 matrix as zero-padded uint64 words (at least one)."""
    out = np.zeros((len(matrix), max(1, -(-width // 8)) * 8), np.uint8)
    have = min(width, matrix.shape[1])
    out[:, :have] = matrix[:, :have]
    return out.view("<u8")


def _hashes(values: list[str], rows: int) -> np.ndarray:
    """:func:`_mix` of each string, vectorised over the batch, as a (rows, n) int64 array.

    When every value has the same UTF-8 length (the usual case: fixed-width IDs) the
    values are joined with NUL separators and read as one matrix; otherwise each is
    encoded and padded. Both give the same value for the same string.
    """
    n = len(values)
    if not n:
        return np.zeros((rows, 0), np.int64)
    joined = "\x00".join(values).encode("utf-8", "surrogatepass")
    if (len(joined) + 1) % n == 0 and joined.count(0) == n - 1:
        width = (len(joined) + 1) // n - 1
        matrix = np.frombuffer(joined + b"\x00", np.uint8).reshape(n, width + 1)
        if not matrix[:, width].any():  # the n - 1 NULs are the separators: every value is `width` bytes
            return _mix(_words(matrix, width), np.full(n, width, np.int64), None, rows).view(np.int64)
    encoded = [v.encode("utf-8", "surrogatepass") for v in values]
    length = np.fromiter(map(len, encoded), np.int64, n)
    width = max(1, int(length.max()))
    matrix = np.array(encoded, dtype=f"S{width}").view(np.uint8).reshape(n, width)
    return _mix(_words(matrix, width), length, np.maximum(1, -(-length // 8)), rows).view(np.int64)


def keys(values: list[str]) -> np.ndarray:
    """``h1`` of each string, as int64."""
    return _hashes(values, 1)[0]


def key_pair(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(h1, h2)`` of each string, as int64 arrays, computed together."""
    h = _hashes(values, 2)
    return h[0], h[1]


def partition_bits(size: int) -> int:
    """How many top bits of ``h1`` partition the IDs of a file of ``size`` bytes."""
    parts = max(1, -(-size // PARTITION_BYTES))
    return (parts - 1).bit_length()


class KeyLog:
    """Collects ``(h1, line)`` of one key of one part of a file, spilled to one file.

    Each spill is written sorted by partition (the top ``bits`` of ``h1``); ``segments``
    lists ``(partition, first entry, entries)`` of every run written. Lines are relative
    to the part.
    """

    def __init__(self, path: str, bits: int) -> None:
        self.path = path
        self.bits = bits
        self.segments: list[tuple[int, int, int]] = []
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self._size = 0
        self._written = 0

    def add(self, hashes: np.ndarray, lines: np.ndarray) -> None:
        if not len(hashes):
            return
        self._chunks.append((hashes, lines))
        self._size += len(hashes)
        if self._size >= SPILL_ENTRIES:
            self.flush()

    def flush(self) -> None:
        if not self._chunks:
            return
        pairs = np.empty(self._size, PAIR)
        pairs["h"] = np.concatenate([h for h, _ in self._chunks])
        pairs["line"] = np.concatenate([line for _, line in self._chunks])
        self._chunks, self._size = [], 0
        if self.bits:
            top = pairs["h"].view(np.uint64) >> np.uint64(64 - self.bits)
            top = top.astype(np.uint8 if self.bits <= 8 else np.uint16 if self.bits <= 16 else np.int64)
            pairs = pairs[np.argsort(top, kind="stable")]  # a radix sort for small integer types
            bounds = np.zeros((1 << self.bits) + 1, np.int64)
            np.cumsum(np.bincount(top, minlength=1 << self.bits), out=bounds[1:])
        else:
            bounds = np.array([0, len(pairs)])
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "ab") as fh:
            pairs.tofile(fh)
        for p in np.flatnonzero(bounds[1:] > bounds[:-1]).tolist():
            self.segments.append((p, self._written + int(bounds[p]), int(bounds[p + 1] - bounds[p])))
        self._written += len(pairs)


class Rows:
    """Appends table rows (a structured dtype) of one part of a file to one file."""

    def __init__(self, path: str, dtype: np.dtype) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.dtype = dtype
        self._file = open(path, "ab")

    def add(self, **columns: np.ndarray) -> None:
        rows = np.zeros(len(columns["h1"]), self.dtype)
        for name, values in columns.items():
            rows[name] = values
        rows.tofile(self._file)

    def close(self) -> None:
        self._file.close()


def load_column(path: str, dtype: np.dtype, name: str, rows: int = 1 << 16) -> np.ndarray:
    """Column ``name`` of the rows in the file at ``path``, read ``rows`` rows at a time."""
    total = os.path.getsize(path) // dtype.itemsize if os.path.exists(path) else 0
    out = np.empty(total, dtype[name])
    if not total:
        return out
    with open(path, "rb") as fh:
        for a in range(0, total, rows):
            block = np.fromfile(fh, dtype, min(rows, total - a))
            out[a : a + len(block)] = block[name]
    return out


@dataclass
class KeyTable:
    """IDs sorted by ``(h1, h2)``, one entry per ID, with columns (see ``rules.Tables.save_keyed``)."""

    h1: np.ndarray
    h2: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.h1)

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column]

    def find(self, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """Row of each ``(q1, q2)`` key (-1: absent), vectorised over the batch."""
        n = len(self.h1)
        if n == 0:
            return np.full(len(q1), -1, np.int64)
        pos = self._search(q1)
        hit1 = self.h1[pos] == q1
        rows = np.where(hit1 & (self.h2[pos] == q2), pos, -1)
        for i in np.flatnonzero(hit1 & (rows < 0)):  # distinct IDs sharing h1: walk the run
            j = int(pos[i])
            while j < n and self.h1[j] == q1[i]:
                if self.h2[j] == q2[i]:
                    rows[i] = j
                    break
                j += 1
        return rows

    def has(self, q1: np.ndarray) -> np.ndarray:
        """A row with the same ``h1`` as each key (-1: none), vectorised over the batch."""
        if len(self.h1) == 0:
            return np.full(len(q1), -1, np.int64)
        pos = self._search(q1)
        return np.where(self.h1[pos] == q1, pos, -1)

    def absent(self, q1: np.ndarray) -> np.ndarray:
        """True for each key no row has as its ``h1`` (:meth:`has` < 0), vectorised over the batch."""
        if len(self.h1) == 0:
            return np.ones(len(q1), bool)
        if len(q1) >= 64:  # all present (the usual case) is proven from the sorted keys alone
            ordered = np.sort(q1)
            pos = np.minimum(np.searchsorted(self.h1, ordered), len(self.h1) - 1)
            if (self.h1[pos] == ordered).all():
                return np.zeros(len(q1), bool)
        return self.has(q1) < 0

    def _search(self, q1: np.ndarray) -> np.ndarray:
        """Insertion points of ``q1`` in ``h1`` (clipped to the last entry)."""
        if len(q1) < 64:
            pos = np.searchsorted(self.h1, q1)
        else:  # searched faster in key order (cache-friendly), small tables too
            order = np.argsort(q1)
            pos = np.empty(len(q1), np.int64)
            pos[order] = np.searchsorted(self.h1, q1[order])
        return np.minimum(pos, len(self.h1) - 1)

    def find_ids(self, values: list[str]) -> np.ndarray:
        """:meth:`find` for ID strings."""
        return self.find(*key_pair(values))


_OPENED: dict[str, KeyTable] = {}


def load_table(directory: str) -> KeyTable:
    """The table saved under ``directory`` (``h1.npy``, ``h2.npy`` and columns), mapped read-only."""
    arrays = {}
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        values = np.load(path, mmap_mode="r") if os.path.getsize(path) > 4096 else np.load(path)
        arrays[entry[: -len(".npy")]] = values.view(np.ndarray)  # plain arrays over the mapping: no memmap overhead
    h1, h2 = arrays.pop("h1"), arrays.pop("h2")
    return KeyTable(h1, h2, arrays)


def open_table(directory: str) -> KeyTable:
    """:func:`load_table`, once per process (until :func:`close_tables`)."""
    if directory not in _OPENED:
        _OPENED[directory] = load_table(directory)
    return _OPENED[directory]


def close_tables() -> None:
    """Forget the tables :func:`open_table` mapped (their files are about to be deleted)."""
    _OPENED.clear()


def records_at(stream_factory: Callable[[], Any], lines: np.ndarray, max_line: int) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, parsed record)`` for the sorted 1-based ``lines`` of a JSON Lines stream.

    Only those lines are parsed; unparseable ones yield ``None``.
    """
    if not len(lines):
        return
    i = 0
    with stream_factory() as stream:
        for first, batch, _final in iter_batches(stream, _NoHash(), max_line, [0]):
            end = first + len(batch)
            j = int(np.searchsorted(lines, end, side="left"))
            for line in lines[i:j].tolist():
                raw = batch[line - first]
                try:
                    yield line, (orjson.loads(raw) if raw is not None else None)
                except orjson.JSONDecodeError:
                    yield line, None
            i = j
            if i >= len(lines):
                return


class _NoHash:
    def update(self, _data: bytes) -> None:
        return None


def duplicate_lines(
    directory: str,
    offsets: list[int],
    logs: list[list[tuple[int, int, int]]],
    key: str,
    stream_factory: Callable[[], Any],
    max_line: int,
    keep: int,
) -> tuple[int, list[tuple[int, str]]]:
    """Repeat occurrences of ``key`` logged under ``directory``: their count and the first ``keep``.

    ``offsets`` and ``logs`` give, per part, its line offset and its :attr:`KeyLog.segments`.

    Returns ``(count, [(line, value), ...])`` with the examples in line order. Every
    candidate (equal ``h1``) is confirmed by comparing the ID strings read back from
    the file.
    """
    count = 0
    best: list[tuple[int, str]] = []  # max-heap by line (negated), the `keep` smallest
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    pending_size = 0

    def confirm() -> None:
        nonlocal count, pending, pending_size
        if not pending:
            return
        h = np.concatenate([p[0] for p in pending])
        line = np.concatenate([p[1] for p in pending])
        pending, pending_size = [], 0
        wanted = np.unique(line)
        values: dict[int, Any] = {}
        for n, obj in records_at(stream_factory, wanted, max_line):
            values[n] = obj.get(key) if isinstance(obj, dict) else None
        order = np.lexsort((line, h))
        h, line = h[order], line[order]
        starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
        for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(h)]):
            seen: set[Any] = set()
            for n in line[a:b].tolist():
                value = str(values.get(n))
                if value in seen:
                    count += 1
                    if len(best) < keep:
                        heapq.heappush(best, (-n, value))
                    elif keep and -best[0][0] > n:
                        heapq.heapreplace(best, (-n, value))
                else:
                    seen.add(value)

    by_partition: dict[int, list[tuple[str, int, int, int]]] = {}
    for part, (offset, segments) in enumerate(zip(offsets, logs)):
        for partition, first, entries in segments:
            by_partition.setdefault(partition, []).append(
                (os.path.join(directory, f"{part:05d}"), first, entries, offset)
            )
    for partition in sorted(by_partition):
        arrays = []
        for path, first, entries, offset in by_partition[partition]:
            pairs = np.fromfile(path, PAIR, entries, offset=first * PAIR.itemsize)
            pairs["line"] += offset
            arrays.append(pairs)
        pairs = np.concatenate(arrays)
        del arrays
        h = np.sort(pairs["h"])
        repeated = repeats(h)
        del h
        if not len(repeated):
            continue
        candidates = pairs[np.isin(pairs["h"], repeated)]
        pending.append((candidates["h"].copy(), candidates["line"].copy()))
        pending_size += len(candidates)
        if pending_size >= CONFIRM_LINES:
            confirm()
    confirm()
    return count, sorted(((-n, v) for n, v in best))


def repeats(ordered: np.ndarray) -> np.ndarray:
    """The values occurring more than once in the sorted array ``ordered``, each once
    (``np.unique`` without it: that imports ``numpy.ma`` on first use, ~10 ms a process)."""
    again = ordered[1:][ordered[1:] == ordered[:-1]]
    return again[np.r_[True, again[1:] != again[:-1]]] if len(again) else again


def iso(day: int) -> str:
    """``yyyymmdd`` back to ``yyyy-mm-dd``."""
    return f"{day // 10000:04d}-{day // 100 % 100:02d}-{day % 100:02d}"


def _yyyymmdd(codes: np.ndarray) -> np.ndarray:
    """Rows of ten ``yyyy-mm-dd`` character codes (any integer dtype) as int32 ``yyyymmdd``."""
    digits = codes.astype(np.int32) - 48
    return (
        (((digits[:, 0] * 10 + digits[:, 1]) * 10 + digits[:, 2]) * 10 + digits[:, 3]) * 10_000
        + (digits[:, 5] * 10 + digits[:, 6]) * 100
        + digits[:, 8] * 10
        + digits[:, 9]
    ).astype(np.int32)


def days(values: list[str | None]) -> np.ndarray:
    """Schema-valid ``yyyy-mm-dd`` strings (or None -> 0) as int32 ``yyyymmdd``.

    The values are joined into one ASCII buffer and read as a (n, 10) matrix; a batch
    holding None, or not of that shape, is converted value by value instead.
    """
    n = len(values)
    try:
        joined = "".join(values).encode("ascii")  # type: ignore[arg-type]  # a None raises TypeError: handled below
    except (TypeError, UnicodeEncodeError):
        joined = b""
    if n and len(joined) == 10 * n:
        codes = np.frombuffer(joined, np.uint8).reshape(n, 10)
        if (codes[:, 4] == 45).all() and (codes[:, 7] == 45).all():
            return _yyyymmdd(codes)
    present = np.fromiter(map(is_not, values, repeat(None)), bool, n)
    if n and not present.all():  # the dates alone, then 0 where None
        out = np.zeros(n, np.int32)
        out[present] = days(list(compress(values, present)))
        return out
    text = np.array(values, dtype="U10")
    return _yyyymmdd(text.view(np.uint32).reshape(-1, 10))
