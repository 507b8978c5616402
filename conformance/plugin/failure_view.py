"""What ``pytest`` shows for a failing conformance check: the requirement, not the harness.

A supplier running ``pytest --ics-target ...`` does not own the checks' source. For a
check that FAILs, pytest's traceback (the harness's code, and Hypothesis' advice to
decorate a test function) is replaced by: the requirement broken, what was observed,
the minimal steps that showed it (Hypothesis' shrunk example, or the HTTP exchanges of
the check) and the command re-running the check. ``--tb=long`` or ``--tb=native``
keeps pytest's full traceback, for the harness's own developers; an ERROR (a crash,
an unreachable target) always keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = ["FULL_TRACEBACK_STYLES", "failure_text"]

#: ``--tb`` styles that keep pytest's own traceback.
FULL_TRACEBACK_STYLES = frozenset({"long", "native"})
_STATEMENT_CHARS = 400
_STEPS = 20
_HINT = re.compile(r"(You can reproduce|@reproduce_failure|reproduce_failure\()")
_STEPS_HEADER = re.compile(r"^(Failing test case|Falsifying example|Falsifying explicit example)")


def _steps_from_notes(notes: Sequence[str]) -> list[str]:
    """Hypothesis' minimal example (its notes), without its advice to edit the test function."""
    out: list[str] = []
    for note in notes:
        for line in str(note).splitlines():
            if _HINT.search(line) or not line.strip():
                continue
            out.append(line.rstrip())
    return out


def _steps_from_evidence(evidence: Sequence[dict[str, Any]]) -> list[str]:
    """The check's HTTP exchanges, one line each (method, path, status)."""
    out = []
    for entry in evidence:
        request, response = entry.get("request") or {}, entry.get("response") or {}
        if not isinstance(request, dict):
            continue
        parts = urlsplit(str(request.get("url", "")))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        status = response.get("status") if isinstance(response, dict) else None
        outcome = f"-> {status}" if status is not None else f"-> {entry.get('error') or 'no response'}"
        out.append(f"{request.get('method', '?')} {path} {outcome}")
    if len(out) > _STEPS:
        out = [*out[: _STEPS // 2], f"... ({len(out) - _STEPS} more exchanges)", *out[-_STEPS // 2 :]]
    return out


def failure_text(
    *,
    nodeid: str,
    requirements: Sequence[tuple[str, str, str, str]],
    observed: str,
    notes: Sequence[str],
    evidence: Sequence[dict[str, Any]],
    rerun: str,
) -> str:
    """The text pytest shows for a FAILed check.

    ``requirements``: ``(id, level, title, statement)`` of each requirement the failure
    blames; ``observed``: the failure's message; ``notes``: the exception's notes
    (Hypothesis' example); ``evidence``: the check's HTTP exchanges; ``rerun``: the command.
    """
    lines = [f"ICS conformance check FAILED: {nodeid}"]
    for rid, level, title, statement in requirements:
        text = " ".join(statement.split())
        if len(text) > _STATEMENT_CHARS:
            text = text[: _STATEMENT_CHARS - 1] + "…"
        lines += [f"requirement: {rid} ({level}) {title}", f"  {text}"]
    lines += ["observed:", *(f"  {line}" for line in observed.strip().splitlines())]
    steps = _steps_from_notes(notes)
    if steps:
        lines += ["minimal steps (shrunk by Hypothesis):", *(f"  {s}" for s in steps)]
    else:
        exchanges = _steps_from_evidence(evidence)
        if exchanges:
            lines += ["steps (the check's requests to the system, in order):", *(f"  {s}" for s in exchanges)]
    lines += [
        "rerun this check:",
        f"  {rerun}",
        "(the harness's own traceback: add --tb=long)",
    ]
    return "\n".join(lines)
