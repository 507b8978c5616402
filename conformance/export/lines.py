"""JSON Lines read in batches of raw lines, hashed and counted as they are read.

Shared by the record scan, the table lookups and the reconciliation; it knows nothing of
record types.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Bytes read from a stream at a time.
BLOCK = 1024 * 1024


def iter_batches(
    stream: Any, hasher: Any, max_line: int, counter: list[int]
) -> Iterator[tuple[int, list[bytes | None], bool]]:
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
        lines: list[bytes | None] = data.split(b"\n")
        pending = lines.pop()  # type: ignore[assignment]  # split() gives bytes; None only appended after
        if len(pending) > max_line:
            lines.append(None)
            pending = b""
            skipping = True
        if lines:
            yield lineno, lines, False
            lineno += len(lines)
    if pending:
        yield lineno, [pending], True
