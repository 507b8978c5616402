"""Stateful model-based check of name search (ICS-1B-SRCH-001/002/003/010), property kind.

A Hypothesis ``RuleBasedStateMachine`` creates children with hostile-but-legal names
(ASCII letters and letters that NFKD decomposes, hyphens, spaces, straight and curly
apostrophes), adds aliases, previous and known-as names, and searches with terms derived
from them (upper/lower case, accents stripped or decomposed, apostrophes swapped,
prefixes of the whole name or of a part, infixes) and with random terms. After every
search the target's answer, restricted to the children this example created, is compared
with :class:`~conformance.checking.search_oracle.SearchOracle` (:func:`conformance.domain.names.name_matches`,
given and family matched against the same name record).

Every child of one example shares a random date of birth and a random postcode, and every
search carries both criteria written exactly as stored: other records (other examples,
other runs, the target's own data) rarely share them, and a fault that ignores one of
them leaves the other to scope the search. Results are filtered by ID anyway.

A mismatch is attributed precisely, with follow-up searches when needed: a child missed
by a folded term but found by the same term written exactly as stored -> SRCH-001 (case,
accent, apostrophe); missed by a raw partial term but found by the whole name -> SRCH-002;
missed by an alias's own whole name -> SRCH-003; an exactly named current name missed, or
a child returned that no name record matches -> SRCH-010 (a child whose given and family
names match different records -> SRCH-003). Hypothesis shrinks a failure to the minimal
step sequence.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import date, timedelta
from typing import NoReturn

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, rule, run_state_machine_as_test

from conformance.checking.checks import RequirementFailure, check
from conformance.checking.search_oracle import (
    PAGE_SIZE,
    child_id,
    fail_distinct,
    random_postcode,
    search_ids,
)
from conformance.checking.world import World
from conformance.domain.search import (
    KnownChild,
    NameRecord,
    SearchOracle,
    cross_record_matches,
    is_whole,
    raw_equivalent,
    record_matches,
)

SRCH_001 = "ICS-1B-SRCH-001"
SRCH_002 = "ICS-1B-SRCH-002"
SRCH_003 = "ICS-1B-SRCH-003"
SRCH_010 = "ICS-1B-SRCH-010"
REQUIREMENTS = (SRCH_001, SRCH_002, SRCH_003, SRCH_010)

#: letters that NFKD decomposes into an ASCII letter and one combining mark
ACCENTED = "éèêëáàâäóöôúüçñíïÉÈÊËÁÀÂÄÓÖÔÚÜÇÑÍÏ"
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" + ACCENTED
APOSTROPHES = ("'", "\u2019", "\u2018")
_SWAP = str.maketrans({"'": "\u2019", "\u2019": "'", "\u2018": "'"})


# -- strategies -------------------------------------------------------------------------------
#: One name part: letters, optionally an apostrophe and more letters (O'Brien, D’Arcy).
_LETTERS = st.text(alphabet=LETTERS, min_size=1, max_size=7)
PART = st.one_of(
    _LETTERS,
    st.builds(
        lambda a, q, b: a + q + b,
        st.text(alphabet=LETTERS, min_size=1, max_size=2),
        st.sampled_from(APOSTROPHES),
        _LETTERS,
    ),
)
_PARTS = st.lists(PART, min_size=1, max_size=3)
_SEPARATORS = st.lists(st.sampled_from((" ", "-")), min_size=2, max_size=2)


@st.composite
def _hostile_names(draw: st.DrawFn) -> str:
    parts, separators = draw(_PARTS), draw(_SEPARATORS)
    name = parts[0]
    for separator, part in zip(separators, parts[1:], strict=False):
        name += separator + part
    return name


def hostile_names() -> st.SearchStrategy[str]:
    """Legal names of one to three parts joined by a space or a hyphen."""
    return HOSTILE_NAMES


HOSTILE_NAMES = _hostile_names()


#: How a term is derived from a stored name: (case, accents, swap apostrophes, cut).
TRANSFORMS = st.tuples(
    st.sampled_from(("keep", "upper", "lower")),
    st.sampled_from(("keep", "strip", "decompose")),
    st.booleans(),
    st.one_of(st.none(), st.tuples(st.integers(-1, 2), st.integers(1, 8))),
)


#: A search derived from one name record: which names to search by, and how each is derived.
Probe = tuple[str, tuple[str, str, bool, "tuple[int, int] | None"], tuple[str, str, bool, "tuple[int, int] | None"]]
PROBES = st.tuples(st.sampled_from(("both", "given", "family")), TRANSFORMS, TRANSFORMS)


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def derive(value: str, transform: tuple[str, str, bool, tuple[int, int] | None]) -> str:
    """A search term made from ``value``: a prefix of the whole or of a part, then folded."""
    case, accents, swap, cut = transform
    term = value
    if cut is not None:
        which, length = cut
        parts = [p for p in value.replace("-", " ").split(" ") if p]
        source = value if which < 0 or not parts else parts[which % len(parts)]
        term = source[: max(1, min(length, len(source)))]
    term = {"upper": term.upper(), "lower": term.lower()}.get(case, term)
    if accents == "strip":
        term = _strip_accents(term)
    elif accents == "decompose":
        term = unicodedata.normalize("NFD", term)
    if swap:
        term = term.translate(_SWAP)
    return term.rstrip(" -") or term[:1]


def infix(value: str, start: int, length: int) -> str:
    """A substring of ``value`` starting with a letter, not at its beginning when the name
    allows (over-matching bait: "oan" inside "Joanne")."""
    starts = [i for i in range(1, len(value)) if value[i].isalpha()] or [0]
    begin = starts[start % len(starts)]
    return value[begin : begin + length].rstrip(" -'\u2019\u2018") or value[begin]


# -- the check --------------------------------------------------------------------------------
@check(SRCH_001, SRCH_002, SRCH_003, SRCH_010, kind="property")
def test_name_search_matches_model(world: World) -> None:
    """SRCH-001/002/003/010 under random names, aliases and search terms, judged against
    the oracle after every search (see the module docstring for the attribution rules)."""
    searcher = world.practitioner("practitioner")

    class SearchMachine(RuleBasedStateMachine):
        """Children c0, c1, ... of one example, sharing a random DOB and postcode."""

        children = Bundle("children")

        def __init__(self) -> None:
            super().__init__()
            self.oracle = SearchOracle()
            self.labels: dict[str, str] = {}
            self.dob = (date(1990, 1, 1) + timedelta(days=secrets.randbelow(9000))).isoformat()
            self.postcode = random_postcode()

        # -- rules ----------------------------------------------------------------------
        # Every write is followed by one search derived from the name just written, so
        # that even a short example searches every kind of name record it creates.
        @rule(target=children, given=HOSTILE_NAMES, family=HOSTILE_NAMES, probe=PROBES)
        def create_child(self, given: str, family: str, probe: Probe) -> str:
            body = world.child(given_name=given, family_name=family, date_of_birth=self.dob, postcode=self.postcode)
            cid = child_id(body, REQUIREMENTS)
            self.oracle.add_child(cid, given, family)
            self.labels[cid] = f"c{len(self.labels)}"
            self._search_record(NameRecord(given, family), probe)
            return cid

        @rule(
            cid=children,
            given=HOSTILE_NAMES,
            family=HOSTILE_NAMES,
            kind=st.sampled_from(("alias", "previous", "known_as")),
            probe=PROBES,
        )
        def add_alias(self, cid: str, given: str, family: str, kind: str, probe: Probe) -> None:
            world.alias(cid, given, family, kind)
            self.oracle.add_alias(cid, given, family, kind)
            self._search_record(NameRecord(given, family, kind), probe)

        @rule(cid=children, record=st.integers(0, 3), probe=PROBES)
        def search_derived(self, cid: str, record: int, probe: Probe) -> None:
            names = self.oracle.children[cid].names
            self._search_record(names[record % len(names)], probe)

        @rule(
            cid=children,
            record=st.integers(0, 3),
            on_family=st.booleans(),
            start=st.integers(0, 20),
            length=st.integers(1, 5),
        )
        def search_infix(self, cid: str, record: int, on_family: bool, start: int, length: int) -> None:
            names = self.oracle.children[cid].names
            name = names[record % len(names)]
            term = infix(name.family if on_family else name.given, start, length)
            self._judge_one(term, on_family)

        @rule(
            term=st.text(alphabet=LETTERS + "'\u2019-", min_size=1, max_size=4).filter(lambda t: t[0].isalpha()),
            on_family=st.booleans(),
        )
        def search_random(self, term: str, on_family: bool) -> None:
            self._judge_one(term, on_family)

        # -- comparison with the oracle ----------------------------------------------------
        def _search_record(self, name: NameRecord, probe: Probe) -> None:
            fields, given_t, family_t = probe
            given = derive(name.given, given_t) if fields in ("both", "given") else None
            family = derive(name.family, family_t) if fields in ("both", "family") else None
            self._judge(given, family)

        def _judge_one(self, term: str, on_family: bool) -> None:
            if on_family:
                self._judge(None, term)
            else:
                self._judge(term, None)

        def _returned(self, given: str | None, family: str | None) -> set[str]:
            params = {"date_of_birth": self.dob, "postcode": self.postcode, "given_name": given, "family_name": family}
            params = {k: v for k, v in params.items() if v is not None}
            ids = search_ids(world, searcher, REQUIREMENTS, params, page_size=PAGE_SIZE)
            return self.oracle.restrict(ids)

        def _judge(self, given: str | None, family: str | None) -> None:
            returned = self._returned(given, family)
            expected = self.oracle.expected(given, family)
            what = f"search given_name={given!r} family_name={family!r}"
            for cid in sorted(returned - expected, key=self.labels.__getitem__):
                child = self.oracle.children[cid]
                if cross_record_matches(child, given, family):
                    self._fail(
                        SRCH_003,
                        f"{what} returned {self._show(cid)}: its given and family names match "
                        "different name records, never the same one",
                    )
                self._fail(SRCH_010, f"{what} returned {self._show(cid)}, which no name of it matches")
            for cid in sorted(expected - returned, key=self.labels.__getitem__):
                self._diagnose_missing(self.oracle.children[cid], given, family, what)

        def _diagnose_missing(self, child: KnownChild, given: str | None, family: str | None, what: str) -> NoReturn:
            """Name the requirement a missed child proves broken (follow-up searches)."""
            record = next(r for r in child.names if record_matches(r, given, family))
            shown = f"{what} did not return {self._show(child.id)}"
            raw_given = (raw_equivalent(given, record.given) or given) if given is not None else None
            raw_family = (raw_equivalent(family, record.family) or family) if family is not None else None
            if (raw_given, raw_family) != (given, family):
                if child.id in self._returned(raw_given, raw_family):
                    self._fail(
                        SRCH_001,
                        f"{shown}, though the same terms written as stored ({raw_given!r}, "
                        f"{raw_family!r}) do: case, accents or apostrophes are not folded",
                    )
            partial = (given is not None and not is_whole(given, record.given)) or (
                family is not None and not is_whole(family, record.family)
            )
            whole_given = record.given if given is not None else None
            whole_family = record.family if family is not None else None
            if partial and child.id in self._returned(whole_given, whole_family):
                self._fail(
                    SRCH_002,
                    f"{shown}; the terms ({raw_given!r}, {raw_family!r}) are prefixes of the name "
                    f"{record.given!r} {record.family!r}, which itself is found",
                )
            if record.kind != "current":
                self._fail(
                    SRCH_003,
                    f"{shown}: the terms match its {record.kind} name {record.given!r} "
                    f"{record.family!r}, and even that whole name does not find it",
                )
            self._fail(
                SRCH_010,
                f"{shown}: it satisfies every criterion (current name {record.given!r} "
                f"{record.family!r}, date of birth, postcode)",
            )

        def _show(self, cid: str) -> str:
            child = self.oracle.children[cid]
            names = "; ".join(f"{r.kind} {r.given!r} {r.family!r}" for r in child.names)
            return f"{self.labels[cid]} ({names})"

        @staticmethod
        def _fail(requirement: str, message: str) -> NoReturn:
            fail_distinct(requirement, message)

    # Shrinking stays on; the explain phase (which replays every step many times over HTTP
    # only to annotate the report) is left out.
    run_settings = settings(
        deadline=None,
        phases=[p for p in Phase if p is not Phase.explain],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    try:
        run_state_machine_as_test(SearchMachine, settings=run_settings)
    except BaseExceptionGroup as group:  # several distinct bugs: report every requirement they break
        leaves = _leaves(group)
        if not leaves or not all(isinstance(e, RequirementFailure) for e in leaves):
            raise
        parts = [str(e) + "".join("\n" + n for n in getattr(e, "__notes__", ())) for e in leaves]
        requirements = sorted({r for e in leaves for r in e.requirements})  # type: ignore[attr-defined]  # all RequirementFailure (checked above)
        raise RequirementFailure(requirements, "\n\n".join(parts)) from group


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


__all__ = ["NameRecord", "derive", "hostile_names", "infix", "test_name_search_matches_model"]
