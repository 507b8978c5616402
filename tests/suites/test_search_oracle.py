"""Unit tests of the search oracle and the stateful check's term derivation (no target).

The stateful check relies on three facts proven here: every term it derives from a name
is one the oracle says matches it; the raw equivalent of a matching term is a raw prefix
needing no folding; and the generated identifiers are valid (or invalid) exactly as the
checks claim, per python-stdnum.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from conformance.checking.search_oracle import (
    name_token,
    random_postcode,
    spaced_nhs_number,
    valid_nhs_number,
    valid_upn,
    wrong_check_letter_upn,
    wrong_modulus_nhs_number,
)
from conformance.domain import identifiers
from conformance.domain.names import name_matches, normalise
from conformance.domain.search import (
    KnownChild,
    NameRecord,
    SearchOracle,
    cross_record_matches,
    is_whole,
    raw_equivalent,
)
from conformance.suites.test_search_stateful import ACCENTED, TRANSFORMS, derive, hostile_names, infix

NAME_RULE = re.compile(r"^[^\W\d_][\w\s\-'\u2019\u2018.]*$")


@given(hostile_names())
def test_hostile_names_are_legal_and_decompose(name: str) -> None:
    assert 1 <= len(name) <= 100 and NAME_RULE.match(name), name
    assert not any(ch.isdigit() or ch == "_" for ch in name)
    assert normalise(name).isascii(), name  # every letter decomposes: no ø, ł, ß


@given(hostile_names(), TRANSFORMS)
def test_derived_terms_match_their_name(name: str, transform: tuple) -> None:
    term = derive(name, transform)
    assert normalise(term), (name, transform, term)
    assert name_matches(term, name), (name, transform, term)
    raw = raw_equivalent(term, name)
    assert raw is not None and normalise(raw) == normalise(term)
    assert name.startswith(raw) or any(p.startswith(raw) for p in re.split(r"[\s\-]+", name)), (name, raw)


@given(hostile_names(), st.integers(0, 20), st.integers(1, 5))
def test_infix_is_a_substring(name: str, start: int, length: int) -> None:
    term = infix(name, start, length)
    assert term in name and term[0].isalpha()


def test_climbie_cases() -> None:
    for term in ("Climbie", "CLIMBIÉ", "climbié", "Climbie\u0301"):
        assert name_matches(term, "Climbi\u00e9")
    assert derive("Climbié", ("upper", "strip", False, None)) == "CLIMBIE"
    assert derive("O'Brien", ("keep", "keep", True, None)) == "O\u2019Brien"
    assert raw_equivalent("CLIM", "Climbié") == "Clim"
    assert raw_equivalent("é", "Eve") == "E"
    assert raw_equivalent("jon", "Mary-Jones") == "Jon"
    assert raw_equivalent("xyz", "Mary") is None
    assert is_whole("MARY-JONES", "Mary-Jones") and not is_whole("Mary", "Mary-Jones")
    assert set(ACCENTED) & set("øłß") == set()


def test_oracle_matches_given_and_family_on_the_same_record() -> None:
    oracle = SearchOracle()
    oracle.add_child("1", "Robert", "Smith")
    oracle.add_alias("1", "Bobby", "Jones", "known_as")
    oracle.add_child("2", "Joanne", "Smith")
    assert oracle.expected("bob", "jon") == {"1"}
    assert oracle.expected("Bobby", "Smith") == set()
    assert cross_record_matches(oracle.children["1"], "Bobby", "Smith")
    assert oracle.expected("Ann", None) == set()  # no over-matching: Joanne
    assert oracle.expected(None, "smi") == {"1", "2"}
    assert oracle.restrict(["1", "x", "2", "y"]) == {"1", "2"}
    assert KnownChild("3", [NameRecord("A", "B")]).names[0].kind == "current"


def test_identifiers_valid_and_corrupted() -> None:
    for _ in range(50):
        upn, nhs = valid_upn(), valid_nhs_number()
        assert identifiers.is_valid_upn(upn) and not identifiers.is_valid_upn(wrong_check_letter_upn(upn))
        assert wrong_check_letter_upn(upn)[1:] == upn[1:]
        assert identifiers.is_valid_nhs_number(nhs) and identifiers.is_valid_nhs_number(spaced_nhs_number(nhs))
        bad = wrong_modulus_nhs_number(nhs)
        assert len(bad) == 10 and bad.isdigit() and not identifiers.is_valid_nhs_number(bad)


def test_tokens_and_postcodes() -> None:
    tokens = {name_token() for _ in range(200)}
    assert len(tokens) == 200 and all(t.isalpha() and t[0].isupper() for t in tokens)
    for _ in range(100):
        assert re.fullmatch(r"[A-Z]{2}\d{2} \d[A-Z]{2}", random_postcode())
