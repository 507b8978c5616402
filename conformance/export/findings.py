"""Findings and their bounded aggregation per requirement.

A finding names the requirement it breaks, the file, the 1-based line (None for
whole-file findings), the JSON pointer inside the record ("" for the whole record)
and a plain message. Aggregation keeps a count per requirement and only the first
``max_examples`` findings, so a systematic fault in a million records stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGE = 300


@dataclass(frozen=True)
class Finding:
    """One breach of an export requirement."""

    requirement: str
    file: str
    line: int | None
    pointer: str
    message: str
    #: the native column (CSV header name) of a finding in an adapted export, and its 1-based index
    column: str | None = None
    column_index: int | None = None

    @property
    def location(self) -> str:
        """``file:line`` (or just ``file``) as printed by the CLI; in an adapted export
        ``file:line [column name, column index]``."""
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        if self.column is None:
            return where
        index = f", column {self.column_index}" if self.column_index is not None else ""
        return f"{where} [{self.column}{index}]"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requirement": self.requirement,
            "file": self.file,
            "line": self.line,
            "pointer": self.pointer,
            "message": self.message,
        }
        if self.column is not None:
            out["column"] = self.column
            out["column_index"] = self.column_index
        return out

    def __str__(self) -> str:
        pointer = f" {self.pointer}" if self.pointer else ""
        return f"{self.location}{pointer} {self.message}"


@dataclass
class FindingSink:
    """Collects findings: a count per requirement plus the first ``max_examples`` of each.

    Also records rules that crashed (``errors``): a crashed rule is reported as ERROR,
    never as a pass.
    """

    max_examples: int = 20
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[Finding]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: findings that also breach another requirement, counted under that one's ID
    also: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        requirement: str,
        file: str,
        line: int | None,
        pointer: str,
        message: str,
        *,
        also: str | None = None,
        column: str | None = None,
        column_index: int | None = None,
    ) -> None:
        """Record one finding (kept as an example only while under the limit).

        ``also`` names a second requirement the same finding breaches (counted only, so
        its verdict can be given separately; the finding is listed once).
        """
        if also is not None:
            self.also[also] = self.also.get(also, 0) + 1
        count = self.counts.get(requirement, 0)
        self.counts[requirement] = count + 1
        if count < self.max_examples:
            if len(message) > MAX_MESSAGE:
                message = message[: MAX_MESSAGE - 1] + "…"
            self.examples.setdefault(requirement, []).append(
                Finding(requirement, file, line, pointer, message, column, column_index)
            )

    def add_count(self, requirement: str, n: int, *, also: str | None = None) -> None:
        """Count ``n`` more findings of ``requirement`` (beyond the examples already added)."""
        if n <= 0:
            return
        self.counts[requirement] = self.counts.get(requirement, 0) + n
        if also is not None:
            self.also[also] = self.also.get(also, 0) + n

    def crashed(self, requirement: str, where: str, exc: BaseException) -> None:
        """Record that the rule behind ``requirement`` crashed (first crash kept)."""
        self.errors.setdefault(requirement, f"rule crashed on {where}: {type(exc).__name__}: {exc}"[:MAX_MESSAGE])

    def merge(self, other: FindingSink) -> None:
        """Add another sink's counts, examples (up to the limit) and errors into this one."""
        for requirement, count in other.counts.items():
            self.counts[requirement] = self.counts.get(requirement, 0) + count
            kept = self.examples.setdefault(requirement, [])
            room = self.max_examples - len(kept)
            if room > 0:
                kept.extend(other.examples.get(requirement, [])[:room])
        for requirement, message in other.errors.items():
            self.errors.setdefault(requirement, message)
        for requirement, count in other.also.items():
            self.also[requirement] = self.also.get(requirement, 0) + count


EXP_PRESENT = "ICS-1A-EXP-001"
EXP_MANIFEST = "ICS-1A-EXP-002"
EXP_SCHEMA = "ICS-1A-EXP-003"
EXP_UNIQUE = "ICS-1A-EXP-004"
EXP_REFS = "ICS-1A-EXP-005"
EXP_DATES = "ICS-1A-EXP-006"
EXP_IDENTIFIERS = "ICS-1A-EXP-007"
EXP_TIMESCALES = "ICS-1A-EXP-008"
EXP_RECONCILE = "ICS-1A-EXP-009"
#: Local child IDs unique (records area; judged in the export by the EXP-004 scan too)
REC_LOCAL_ID = "ICS-1A-REC-008"

#: The requirements a file export alone can judge, in report order.
EXPORT_REQUIREMENTS = (
    EXP_PRESENT,
    EXP_MANIFEST,
    EXP_SCHEMA,
    EXP_UNIQUE,
    EXP_REFS,
    EXP_DATES,
    EXP_IDENTIFIERS,
    EXP_TIMESCALES,
)
