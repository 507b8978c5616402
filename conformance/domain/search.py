"""The search oracle: which of the children the harness created a name search must return.

The harness's own statement of what ``GET /children`` must return (design.md §4,
catalogue ICS-1B-SRCH-001..010). Name matching is :func:`conformance.domain.names.name_matches`,
given and family names being matched against the same name record (the current name or
one alias). It knows nothing of records the harness did not create: results are always
restricted to known IDs before they are compared (open world).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from conformance.domain.names import name_matches, normalise

__all__ = [
    "KnownChild",
    "NameRecord",
    "SearchOracle",
    "cross_record_matches",
    "is_whole",
    "oracle_matches",
    "raw_equivalent",
    "record_matches",
]

_RAW_PARTS = re.compile(r"[\s\-]+")


@dataclass(frozen=True)
class NameRecord:
    """One name of a child: its current name, or an alias / previous / known-as name."""

    given: str
    family: str
    kind: str = "current"


@dataclass
class KnownChild:
    """What the oracle knows of one child the harness created."""

    id: str
    names: list[NameRecord] = field(default_factory=list)


def record_matches(record: NameRecord, given: str | None, family: str | None) -> bool:
    """Both given terms match this one name record (an absent term matches anything)."""
    return (given is None or name_matches(given, record.given)) and (
        family is None or name_matches(family, record.family)
    )


def oracle_matches(child: KnownChild, given: str | None, family: str | None) -> bool:
    """True when the name criteria select ``child`` (design.md §4: the same record)."""
    return any(record_matches(r, given, family) for r in child.names)


def cross_record_matches(child: KnownChild, given: str | None, family: str | None) -> bool:
    """True when each term matches *some* name of the child, not necessarily the same one."""
    return (given is None or any(name_matches(given, r.given) for r in child.names)) and (
        family is None or any(name_matches(family, r.family) for r in child.names)
    )


@dataclass
class SearchOracle:
    """The children one check (or one state machine example) created, by ID."""

    children: dict[str, KnownChild] = field(default_factory=dict)

    def add_child(self, cid: str, given: str, family: str) -> KnownChild:
        child = KnownChild(cid, [NameRecord(given, family)])
        self.children[cid] = child
        return child

    def add_alias(self, cid: str, given: str, family: str, kind: str) -> None:
        self.children[cid].names.append(NameRecord(given, family, kind))

    def expected(self, given: str | None, family: str | None) -> set[str]:
        """IDs of the known children the name criteria must return."""
        return {cid for cid, c in self.children.items() if oracle_matches(c, given, family)}

    def restrict(self, ids: Iterable[str]) -> set[str]:
        """The returned IDs that belong to known children (everything else is ignored)."""
        return {i for i in ids if i in self.children}


def raw_equivalent(term: str, value: str) -> str | None:
    """The shortest prefix of ``value`` (or of one of its raw parts) that normalises to the
    same key as ``term``: the same search with no case, accent or apostrophe folding needed.

    None when ``term`` does not match ``value`` at all.
    """
    key = normalise(term)
    if not key:
        return None
    for candidate in (value, *(p for p in _RAW_PARTS.split(value) if p)):
        for i in range(1, len(candidate) + 1):
            if normalise(candidate[:i]) == key:
                return candidate[:i]
    return None


def is_whole(term: str, value: str) -> bool:
    """True when ``term`` is the whole of ``value`` after normalising (not a partial term)."""
    return normalise(term) == normalise(value)
