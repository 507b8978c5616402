"""Helpers shared by the search and records checks (the oracle itself is
:mod:`conformance.domain.search`).

Here: run-unique synthetic names (letters only, so they are legal names), valid and
deliberately corrupted identifiers made with :mod:`conformance.domain.identifiers`, and a
bounded search walker that judges the shape of every page it reads.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from conformance.checking.checks import RequirementFailure, describe, fail
from conformance.checking.world import Practitioner, World
from conformance.domain import identifiers

#: Hard cap on the pages one search may walk (100 children a page): a target that answers
#: an identifier search with the whole database must not make a check run for ever.
MAX_SEARCH_PAGES = 50
PAGE_SIZE = 100
_LOWER = "bcdfghjklmnpqrstvwxz"  # consonants: a token never spells a common name part


# -- synthetic names and identifiers ---------------------------------------------------------
def name_token(length: int = 10) -> str:
    """A random capitalised letters-only word, unique in practice (20**10 values).

    Used as a family name (or a part of one) so that every child a check creates can be
    found by a criterion no other record shares.
    """
    word = "".join(secrets.choice(_LOWER) for _ in range(length))
    return word[0].upper() + word[1:]


#: Sample identifiers avoid the edge class of each algorithm (UPN check letter Z, the last
#: remainder; NHS check digit 0, from 11 - 0 = 11): ICS-1A-REC-002/003 judge those classes
#: in their own cases, so a fault in one edge is blamed on its requirement alone.
EDGE_UPN_CHECK_LETTER = "Z"
EDGE_NHS_CHECK_DIGIT = "0"


def valid_upn() -> str:
    """A random valid UPN (check letter + LA 801 + 9 digits), compact and upper case, check letter not Z."""
    while True:
        body = "801" + "".join(secrets.choice(string.digits) for _ in range(9))
        upn = identifiers.upn_check_letter(body) + body
        assert identifiers.is_valid_upn(upn), upn
        if upn[0] != EDGE_UPN_CHECK_LETTER:
            return upn


def wrong_check_letter_upn(upn: str) -> str:
    """``upn`` with a different check letter: well formed, fails only the check letter."""
    for letter in "ABCDEFGHJKLMNPQRTUVWXYZ":
        candidate = letter + upn[1:]
        if letter != upn[0] and not identifiers.is_valid_upn(candidate):
            return candidate
    raise AssertionError("no wrong check letter found")  # pragma: no cover - impossible


def valid_nhs_number() -> str:
    """A random 10-digit NHS number passing modulus 11 (first digit 4..9, like real ones), check digit not 0."""
    while True:
        body = secrets.choice("456789") + "".join(secrets.choice(string.digits) for _ in range(8))
        try:
            number = body + identifiers.nhs_check_digit(body)
        except ValueError:  # remainder 10: no check digit makes this body valid
            continue
        if number[9] == EDGE_NHS_CHECK_DIGIT:
            continue
        assert identifiers.is_valid_nhs_number(number), number
        return number


def wrong_modulus_nhs_number(number: str) -> str:
    """``number`` with its check digit changed so that modulus 11 fails (ten digits still)."""
    for digit in "0123456789":
        candidate = number[:9] + digit
        if digit != number[9] and not identifiers.is_valid_nhs_number(candidate):
            return candidate
    raise AssertionError("no wrong check digit found")  # pragma: no cover - impossible


def spaced_nhs_number(number: str) -> str:
    """The NHS number written the usual way, ``3 3 4`` digits with spaces."""
    return f"{number[:3]} {number[3:6]} {number[6:]}"


# -- reading search results -------------------------------------------------------------------
def search_items(
    world: World,
    actor: Practitioner,
    requirements: str | Iterable[str],
    params: Mapping[str, Any],
    *,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_SEARCH_PAGES,
) -> list[dict[str, Any]]:
    """The children a search returns, in order, across every page (at most ``max_pages``).

    A page that is not ``{items: [...], total}`` or an item without an ``id`` fails
    ``requirements``: the search could not be judged because its answer is malformed.
    """
    found: list[dict[str, Any]] = []
    for page in range(1, max_pages + 1):
        response = world.client.get(
            "/children", token=actor.token, params={**params, "page": page, "page_size": page_size}
        )
        if response.status_code != 200:
            fail(requirements, f"search {dict(params)} page {page}: expected HTTP 200, got {describe(response)}")
        body = _json(response, requirements)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            fail(requirements, f"search {dict(params)} page {page}: not a page of children: {describe(response)}")
        for item in items:
            if not isinstance(item, dict) or item.get("id") is None:
                fail(requirements, f"search {dict(params)} page {page}: an item carries no id: {str(item)[:200]}")
            found.append(item)
        total = body.get("total")
        if not items or not isinstance(total, int) or page * page_size >= total:
            return found
    return found


def search_ids(
    world: World,
    actor: Practitioner,
    requirements: str | Iterable[str],
    params: Mapping[str, Any],
    **kwargs: Any,
) -> list[str]:
    """The child IDs a search returns, in order, across every page (bounded)."""
    return [str(item["id"]) for item in search_items(world, actor, requirements, params, **kwargs)]


def _json(response: Any, requirements: str | Iterable[str]) -> Any:
    try:
        return response.json()
    except ValueError:
        fail(requirements, f"response is not JSON: {describe(response)}")


def child_id(body: Any, requirements: str | Iterable[str], what: str = "the created child") -> str:
    """The ``id`` of a Child body, failing ``requirements`` when it has none."""
    if not isinstance(body, dict) or body.get("id") in (None, ""):
        fail(requirements, f"{what} carries no id: {str(body)[:200]}")
    return str(body["id"])


# -- precise failures for Hypothesis ----------------------------------------------------------
_FAILURE_TYPES: dict[tuple[str, ...], type[RequirementFailure]] = {}


def fail_distinct(requirements: str | Iterable[str], message: str) -> NoReturn:
    """Raise a RequirementFailure of a class specific to ``requirements``.

    Hypothesis tells bugs apart by exception type and origin; one class per requirement
    set keeps shrinking from turning an SRCH-001 failure into an SRCH-010 one.
    """
    key = tuple(sorted((requirements,) if isinstance(requirements, str) else requirements))
    cls = _FAILURE_TYPES.get(key)
    if cls is None:
        suffix = "_".join(r.replace("-", "_") for r in key)
        cls = type(f"RequirementFailure_{suffix}", (RequirementFailure,), {"__module__": __name__})
        _FAILURE_TYPES[key] = cls
    raise cls(key, message)


# -- scoping and diagnosis helpers for the stateful search check -----------------------------
_AREA_1 = "ABCDEFGHIJKLMNOPRSTUWYZ"  # first letter of a postcode area (never Q, V, X)
_AREA_2 = "ABCDEFGHKLMNOPQRSTUVWXY"  # second letter (never I, J, Z)
_INWARD = "ABDEFGHJLNPQRSTUWXYZ"  # inward-code letters (never C, I, K, M, O, V)


def random_postcode() -> str:
    """A random, well-formed ``AA99 9AA`` postcode (rarely shared: used to scope searches)."""
    pick = secrets.choice
    return f"{pick(_AREA_1)}{pick(_AREA_2)}{secrets.randbelow(90) + 10} {secrets.randbelow(10)}{pick(_INWARD)}{pick(_INWARD)}"
