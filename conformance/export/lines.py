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
    newline (its last line may be truncated). Bytes read are hashed and counted. The
    batches are :func:`iter_blocks`' blocks, split into lines.
    """
    lineno = 1
    for block, lines, final in iter_blocks(stream, hasher, max_line, counter):
        if block is not None:
            lines = block.split(b"\n")  # type: ignore[assignment]  # bytes pieces: a list[bytes | None] too
            lines.pop()  # the empty piece after the last newline
        yield lineno, lines, final
        lineno += len(lines)


def iter_blocks(
    stream: Any, hasher: Any, max_line: int, counter: list[int]
) -> Iterator[tuple[bytes | None, list[bytes | None], bool]]:
    """Yield ``(block, lines, final)`` from a binary stream, hashing and counting the bytes read.

    A run of complete lines none of which is over ``max_line`` comes as ``block``: their
    bytes, each line ending with its newline (``lines`` empty), for the caller to split
    only if it must. Anything else comes as ``lines`` (``block`` None): a batch ending
    with a line over ``max_line`` (None, skipped without being held in memory), or the
    last line when the file does not end with a newline (``final``).
    """
    pending = b""
    skipping = False
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
        cut = block.rfind(b"\n")
        if cut < 0:
            complete, pending = b"", pending + block
        elif cut == len(block) - 1:
            complete, pending = (pending + block if pending else block), b""
        else:  # one copy of the complete lines (no concatenation, then slice)
            complete, pending = b"".join((pending, memoryview(block)[: cut + 1])), block[cut + 1 :]
        if len(pending) > max_line:
            lines: list[bytes | None] = [*complete.split(b"\n")]
            lines[-1] = None  # the empty piece after the last newline: the overlong line instead
            pending = b""
            skipping = True
            yield None, lines, False
        elif complete:
            yield complete, [], False
    if pending:
        yield None, [pending], True
