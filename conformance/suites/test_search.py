"""Phase 1B search checks (ICS-1B-SRCH-001..011), scenario kind.

Each check creates a few children with a run-unique family (or given) name made of
random letters, then searches with one criterion under test while scoping the search by
that unique name written exactly as stored, so a fault in one matching rule cannot
disguise itself as another. Results are restricted to the children the check created
(open world: the target may hold anything else) and compared with what design.md §4 and
:mod:`conformance.domain.names` say must come back.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from conformance.checking.checks import check, describe, expect_status, fail, not_applicable
from conformance.checking.search_oracle import (
    child_id,
    name_token,
    search_ids,
    spaced_nhs_number,
    valid_nhs_number,
    valid_upn,
)
from conformance.checking.world import Practitioner, World

SRCH_001 = "ICS-1B-SRCH-001"
SRCH_002 = "ICS-1B-SRCH-002"
SRCH_003 = "ICS-1B-SRCH-003"
SRCH_004 = "ICS-1B-SRCH-004"
SRCH_005 = "ICS-1B-SRCH-005"
SRCH_006 = "ICS-1B-SRCH-006"
SRCH_007 = "ICS-1B-SRCH-007"
SRCH_008 = "ICS-1B-SRCH-008"
SRCH_009 = "ICS-1B-SRCH-009"
SRCH_010 = "ICS-1B-SRCH-010"
SRCH_011 = "ICS-1B-SRCH-011"

#: SRCH-009 walks every page ``total`` announces; a run-unique family name borne by 25
#: children cannot honestly announce more than this.
MAX_PAGING_TOTAL = 500


def _make(world: World, **fields: Any) -> str:
    """Create a child and return its ID (a refusal fails the check's requirements)."""
    return child_id(world.child(**fields), world.requirements)


def _expect(
    world: World,
    requirement: str,
    params: Mapping[str, Any],
    ours: Mapping[str, str],
    expected: Iterable[str],
    *,
    actor: Practitioner | None = None,
    allowed: Iterable[str] = (),
    max_pages: int = 20,
) -> None:
    """Search with ``params``; of the children in ``ours`` (label -> id) exactly
    ``expected`` (labels) must come back, give or take the ``allowed`` ones that may.

    A missing or an unexpected child fails ``requirement``.
    """
    who = actor or world.practitioner()
    returned = set(search_ids(world, who, requirement, params, max_pages=max_pages))
    got = {label for label, cid in ours.items() if cid in returned}
    want = set(expected)
    missing, extra = sorted(want - got), sorted(got - want - set(allowed))
    if missing:
        fail(
            requirement,
            f"search {dict(params)} as {who.role} did not return {missing} "
            f"(returned of ours: {sorted(got)}; expected {sorted(want)})",
        )
    if extra:
        fail(
            requirement,
            f"search {dict(params)} as {who.role} returned {extra}, which it must not "
            f"(returned of ours: {sorted(got)}; expected {sorted(want)})",
        )


@check(SRCH_001, kind="scenario")
def test_names_case_accent_apostrophe_insensitive(world: World) -> None:
    """SRCH-001: "Climbie", "CLIMBIÉ", "climbié" (and a decomposed "Climbié") find
    Climbié; "zoe" finds Zoë; straight and curly apostrophes find each other. The other
    name is a run-unique token written exactly as stored, so only normalisation is judged."""
    tokens = [name_token() for _ in range(5)]
    ours = {
        "Climbié": _make(world, given_name=tokens[0], family_name="Climbi\u00e9"),
        "Zoë": _make(world, given_name="Zo\u00eb", family_name=tokens[1]),
        "O’Brien": _make(world, given_name=tokens[2], family_name="O\u2019Brien"),
        "O'Brien": _make(world, given_name=tokens[3], family_name="O'Brien"),
        "Ó Súilleabháin": _make(world, given_name=tokens[4], family_name="\u00d3 S\u00failleabh\u00e1in"),
    }
    cases = [
        ({"given_name": tokens[0], "family_name": term}, "Climbié")
        for term in ("Climbie", "CLIMBI\u00c9", "climbi\u00e9", "CLIMBIE", "Climbie\u0301")
    ]
    cases += [({"family_name": tokens[1], "given_name": term}, "Zoë") for term in ("zoe", "ZO\u00cb", "Zoe")]
    cases += [({"given_name": tokens[2], "family_name": term}, "O’Brien") for term in ("O'Brien", "o\u2018brien")]
    cases += [({"given_name": tokens[3], "family_name": term}, "O'Brien") for term in ("O\u2019Brien", "O\u2018BRIEN")]
    cases += [({"given_name": tokens[4], "family_name": "o suilleabhain"}, "Ó Súilleabháin")]
    for params, label in cases:
        _expect(world, SRCH_001, params, ours, {label})


@check(SRCH_002, kind="scenario")
def test_partial_names(world: World) -> None:
    """SRCH-002: a prefix of the whole name or of any part (split on spaces and hyphens)
    matches: "Smi" and "Jon" find Smith-Jones, "Lou" finds "Maryanne Louise"."""
    tokens = [name_token() for _ in range(2)]
    ours = {
        "Smith-Jones": _make(world, given_name=tokens[0], family_name="Smith-Jones"),
        "Maryanne Louise": _make(world, given_name="Maryanne Louise", family_name=tokens[1]),
    }
    for term in ("Smi", "Jon", "Smith-J", "S"):
        _expect(world, SRCH_002, {"given_name": tokens[0], "family_name": term}, ours, {"Smith-Jones"})
    for term in ("Lou", "Mary", "Maryanne L"):
        _expect(world, SRCH_002, {"given_name": term, "family_name": tokens[1]}, ours, {"Maryanne Louise"})
    _expect(world, SRCH_002, {"given_name": tokens[0][:5], "family_name": "Smith"}, ours, {"Smith-Jones"})


@check(SRCH_003, kind="scenario")
def test_aliases_previous_and_known_as_names_searched(world: World) -> None:
    """SRCH-003: an alias, a previous name and a known-as name find the child like its
    current name; given and family names are matched against the same name record, so a
    given name of one record with the family name of another does not. (Whole names only:
    partial alias terms are SRCH-002's matter, exercised by the stateful check.)"""
    current, known, previous, alias = (name_token() for _ in range(4))
    cid = _make(world, given_name="Robert", family_name=current)
    world.alias(cid, "Bobby", known, "known_as")
    world.alias(cid, "Robert", previous, "previous")
    world.alias(cid, "Rab", alias, "alias")
    ours = {"child": cid}
    for params in (
        {"family_name": known},
        {"given_name": "Bobby", "family_name": known},
        {"given_name": "Robert", "family_name": previous},
        {"family_name": previous},
        {"given_name": "Rab", "family_name": alias},
    ):
        _expect(world, SRCH_003, params, ours, {"child"})
    _expect(world, SRCH_003, {"given_name": "Bobby", "family_name": current}, ours, set())
    _expect(world, SRCH_003, {"given_name": "Rab", "family_name": known}, ours, set())


@check(SRCH_004, kind="scenario")
def test_date_of_birth_and_gender(world: World) -> None:
    """SRCH-004: date of birth (alone or combined) and gender criteria select exactly the
    children with that date / gender among four sharing a family name."""
    family = name_token()
    dob_a = (
        date(1990, 1, 1) + timedelta(days=secrets.randbelow(3650))
    ).isoformat()  # rarely shared: DOB alone is searched
    dob_b = "2007-05-06"
    ours = {
        "a-male": _make(world, family_name=family, date_of_birth=dob_a, gender="male"),
        "a-female": _make(world, family_name=family, date_of_birth=dob_a, gender="female"),
        "b-female": _make(world, family_name=family, date_of_birth=dob_b, gender="female"),
        "b-not_known": _make(world, family_name=family, date_of_birth=dob_b, gender="not_known"),
    }
    _expect(world, SRCH_004, {"family_name": family, "date_of_birth": dob_a}, ours, {"a-male", "a-female"})
    _expect(world, SRCH_004, {"family_name": family, "date_of_birth": dob_b}, ours, {"b-female", "b-not_known"})
    _expect(world, SRCH_004, {"family_name": family, "gender": "female"}, ours, {"a-female", "b-female"})
    _expect(world, SRCH_004, {"family_name": family, "gender": "not_specified"}, ours, set())
    _expect(
        world, SRCH_004, {"family_name": family, "date_of_birth": dob_b, "gender": "not_known"}, ours, {"b-not_known"}
    )
    _expect(world, SRCH_004, {"date_of_birth": dob_a}, ours, {"a-male", "a-female"})


@check(SRCH_005, kind="scenario")
def test_postcode_normalised(world: World) -> None:
    """SRCH-005: a postcode criterion matches after removing whitespace and upper-casing
    both sides: "sw1a 1aa", "SW1A1AA" and " Sw1a  1Aa " find children stored as
    "SW1A 1AA" and "sw1a1aa", never one at another postcode."""
    family = name_token()
    ours = {
        "SW1A 1AA": _make(world, family_name=family, postcode="SW1A 1AA"),
        "sw1a1aa": _make(world, family_name=family, postcode="sw1a1aa"),
        "M1 1AE": _make(world, family_name=family, postcode="M1 1AE"),
    }
    for term in ("sw1a 1aa", "SW1A1AA", " Sw1a  1Aa ", "SW1A 1AA"):
        _expect(world, SRCH_005, {"family_name": family, "postcode": term}, ours, {"SW1A 1AA", "sw1a1aa"})
    _expect(world, SRCH_005, {"family_name": family, "postcode": "m11ae"}, ours, {"M1 1AE"})


@check(SRCH_006, kind="scenario")
def test_identifiers_exact(world: World) -> None:
    """SRCH-006: UPN, NHS number (also written with spaces, or the UPN in lower case) and
    local child ID each find exactly their child; a partial or different identifier does not."""
    family = name_token()
    upn, nhs = valid_upn(), valid_nhs_number()
    other_nhs, other_upn = valid_nhs_number(), valid_upn()
    local_id = world.unique("id")
    cid = _make(world, family_name=family, upn=upn, nhs_number=nhs, local_id=local_id)
    ours = {"child": cid}
    # A criterion the target ignored would let the family name alone select the child.
    for params in (
        {"family_name": family, "nhs_number": other_nhs},
        {"family_name": family, "upn": other_upn},
        {"family_name": family, "local_id": local_id + "x"},
        {"family_name": family, "nhs_number": nhs[:9]},
        {"family_name": family, "upn": upn[:12]},
        {"family_name": family, "local_id": local_id[:-1]},
    ):
        _expect(world, SRCH_006, params, ours, set())
    for params in (
        {"nhs_number": nhs},
        {"nhs_number": spaced_nhs_number(nhs)},
        {"upn": upn},
        {"upn": f"{upn[:4].lower()} {upn[4:]}"},
        {"local_id": local_id},
    ):
        _expect(world, SRCH_006, params, ours, {"child"}, max_pages=5)


@check(SRCH_007, kind="scenario")
def test_deceased_on_request_only(world: World) -> None:
    """SRCH-007: a child with a date of death is left out by default and with
    ``include_deceased=false``, and returned with ``include_deceased=true``."""
    family = name_token()
    ours = {
        "living": _make(world, family_name=family, date_of_birth="2001-01-01"),
        "deceased": _make(world, family_name=family, date_of_birth="2001-01-01", date_of_death="2009-06-01"),
    }
    _expect(world, SRCH_007, {"family_name": family}, ours, {"living"})
    _expect(world, SRCH_007, {"family_name": family, "include_deceased": "false"}, ours, {"living"})
    _expect(world, SRCH_007, {"family_name": family, "include_deceased": "true"}, ours, {"living", "deceased"})


@check(SRCH_008, kind="scenario")
def test_unborn_found_by_expected_date(world: World, today: date) -> None:
    """SRCH-008 (capability ``unborn_children``): a date_of_birth criterion equal to an
    unborn child's expected date finds it (excluding others by date is SRCH-004's matter)."""
    if not world.context.has("unborn_children"):
        not_applicable("the target does not declare the unborn_children capability")
    family = name_token()
    expected = (today + timedelta(days=100)).isoformat()
    ours = {
        "unborn": _make(world, family_name=family, expected_date_of_birth=expected),
        "born": _make(world, family_name=family, date_of_birth="2006-08-09"),
    }
    _expect(world, SRCH_008, {"family_name": family, "date_of_birth": expected}, ours, {"unborn"}, allowed={"born"})


@check(SRCH_009, kind="scenario")
def test_paging_neither_drops_nor_repeats(world: World) -> None:
    """SRCH-009: 25 children sharing a family name, walked with page sizes 10 and 7
    (3 and 4 pages): every child exactly once and ``total`` equal to the children matched."""
    family = name_token()
    ours = {_make(world, family_name=family, given_name=f"Page {name_token(4)}") for _ in range(25)}
    who = world.practitioner()
    for size in (10, 7):
        seen: Counter[str] = Counter()
        first = _page(world, who, family, 1, size)
        total = first.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            fail(SRCH_009, f"page 1 (page_size {size}) carries no integer total: {str(first)[:200]}")
        if not 0 <= total <= MAX_PAGING_TOTAL:
            fail(SRCH_009, f"total is {total} for a family name only the 25 children of this check bear")
        pages = math.ceil(total / size)
        for number in range(1, max(pages, 1) + 1):
            body = first if number == 1 else _page(world, who, family, number, size)
            if body.get("total") != total:
                fail(
                    SRCH_009, f"total changed from {total} to {body.get('total')!r} on page {number} (page_size {size})"
                )
            seen.update(str(item.get("id")) for item in body["items"] if isinstance(item, dict))
        repeated = sorted(i for i, n in seen.items() if n > 1)
        if repeated:
            fail(
                SRCH_009,
                f"walking {pages} pages of {size} returned {len(repeated)} children more than once: {repeated[:5]}",
            )
        missing = ours - seen.keys()
        if missing:
            fail(
                SRCH_009,
                f"walking {pages} pages of {size} (total {total}) never returned {len(missing)} of the 25 children",
            )
        if total != len(seen):
            fail(
                SRCH_009,
                f"total is {total} but walking pages 1..{pages} of {size} returned {len(seen)} distinct children",
            )


def _page(world: World, who: Practitioner, family: str, page: int, size: int) -> dict[str, Any]:
    response = world.client.get(
        "/children", token=who.token, params={"family_name": family, "page": page, "page_size": size}
    )
    body = expect_status(response, 200, SRCH_009, f"search page {page} (page_size {size})")
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        fail(SRCH_009, f"search page {page} (page_size {size}) is not a page: {describe(response)}")
    return body


@check(SRCH_010, kind="scenario")
def test_no_over_matching(world: World) -> None:
    """SRCH-010: "Ann" finds Ann (and Anne-Marie, a prefix of a part) but never Joanne,
    Hannah or Deanna (substrings are not prefixes); a term inside the family name finds
    nobody; combined criteria are ANDed (name and gender, postcode or date of birth)."""
    family = name_token()
    ours = {
        "Ann": _make(
            world, given_name="Ann", family_name=family, gender="female", postcode="LS1 4AP", date_of_birth="2004-04-04"
        ),
        "Anne-Marie": _make(
            world,
            given_name="Anne-Marie",
            family_name=family,
            gender="not_known",
            postcode="LS1 4AP",
            date_of_birth="2004-04-04",
        ),
        "Joanne": _make(world, given_name="Joanne", family_name=family, gender="female", postcode="M1 1AE"),
        "Hannah": _make(world, given_name="Hannah", family_name=family, gender="female", postcode="M1 1AE"),
        "Deanna": _make(world, given_name="Deanna", family_name=family, gender="female", postcode="LS1 4AP"),
        "Ann 2005": _make(
            world, given_name="Ann", family_name=family, gender="female", postcode="M1 1AE", date_of_birth="2005-05-05"
        ),
    }
    # The exactly-named child must come back, else the absence of the others proves nothing;
    # whether the partial "Ann" finds Anne-Marie is SRCH-002's question, not judged here.
    _expect(
        world, SRCH_010, {"given_name": "Ann", "family_name": family}, ours, {"Ann", "Ann 2005"}, allowed={"Anne-Marie"}
    )
    _expect(
        world,
        SRCH_010,
        {"given_name": "Ann", "family_name": family, "gender": "female", "postcode": "LS1 4AP"},
        ours,
        {"Ann"},
    )
    _expect(
        world,
        SRCH_010,
        {"given_name": "Ann", "family_name": family, "date_of_birth": "2004-04-04"},
        ours,
        {"Ann"},
        allowed={"Anne-Marie"},
    )
    _expect(world, SRCH_010, {"given_name": "Hannah", "family_name": family, "postcode": "LS1 4AP"}, ours, set())
    _expect(world, SRCH_010, {"given_name": "nna", "family_name": family}, ours, set())
    _expect(world, SRCH_010, {"given_name": "Joanne", "family_name": family[2:]}, ours, set())


@check(SRCH_011, kind="scenario")
def test_shielded_hidden_unless_allocated(world: World) -> None:
    """SRCH-011 (capability ``shielded_records``): a shielded child is not returned to a
    practitioner who is not allocated to it, is returned once they are allocated (and to
    the admin), and is hidden again when the allocation ends."""
    if not world.context.has("shielded_records"):
        not_applicable("the target does not declare the shielded_records capability")
    family = name_token()
    ours = {
        "shielded": _make(world, family_name=family, shielded=True),
        "open": _make(world, family_name=family),
    }
    outsider = world.practitioner("practitioner", fresh=True)
    params = {"family_name": family}
    _expect(world, SRCH_011, params, ours, {"open"}, actor=outsider)
    _expect(world, SRCH_011, params, ours, {"open", "shielded"}, actor=world.admin)
    allocation = world.allocate(ours["shielded"], outsider)
    _expect(world, SRCH_011, params, ours, {"open", "shielded"}, actor=outsider)
    if not isinstance(allocation, dict) or allocation.get("id") is None:
        fail(SRCH_011, f"the allocation carries no id: {str(allocation)[:200]}")
    world.end_allocation(str(allocation["id"]))
    _expect(world, SRCH_011, params, ours, {"open"}, actor=outsider)
