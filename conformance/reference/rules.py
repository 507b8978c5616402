"""Domain rules of the reference service that faults bend: names, postcodes, identifiers, timescales.

Each function takes the active fault set so a fault stays a small, local change next to
the correct rule it perturbs. The correct rules come from the shared modules
(:mod:`conformance.domain.names`, :mod:`conformance.domain.identifiers`, :mod:`conformance.domain.workingdays`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from datetime import date, timedelta
from functools import cache

import holidays

from conformance.domain import identifiers, names, workingdays
from conformance.reference.store import KEY_SEP

_POSTCODE = re.compile(r"(?:[A-Z]{1,2}[0-9][0-9A-Z]?|GIR)([0-9][A-Z]{2})")
_NAME_PUNCTUATION = set(" -'\u2019\u2018.")


def valid_name(value: str) -> bool:
    """Letters, combining marks, spaces, hyphens, apostrophes and full stops, with at least one letter."""
    has_letter = False
    for ch in value:
        category = unicodedata.category(ch)
        if category[0] == "L":
            has_letter = True
        elif category[0] != "M" and ch not in _NAME_PUNCTUATION:
            return False
    return has_letter and bool(names.normalise(value))


def postcode_key(value: str) -> str:
    """The search key of a postcode: every space removed, upper case (``names.normalise_postcode``)."""
    return names.normalise_postcode(value)


def canonical_postcode(value: str) -> str | None:
    """``SW1A 1AA`` form of a valid UK postcode (any case and spacing), else None."""
    compact = names.normalise_postcode(value)
    if not _POSTCODE.fullmatch(compact):
        return None
    return f"{compact[:-3]} {compact[-3:]}"


def _letter_fits(compact: str) -> bool:
    """(Fault ``upn-length-by-letter-only``.) LA 801 and digits, and the check letter the algorithm gives the rest."""
    body = compact[1:]
    return body[:3] == "801" and body.isdigit() and identifiers.upn_check_letter(body) == compact[0]


def check_upn(value: str, faults: Collection[str]) -> str | None:
    """The compact UPN when valid (``upn-no-check-letter``: any check letter), else None."""
    compact = identifiers.compact_upn(value)
    if "upn-validated-before-compacting" in faults and value != compact:
        return None
    if "upn-length-unchecked" in faults and len(compact) == 14 and identifiers.is_valid_upn(compact[:13]):
        return compact
    if "upn-length-by-letter-only" in faults and len(compact) in (12, 14) and _letter_fits(compact):
        return compact
    if identifiers.is_valid_upn(compact):
        if "upn-check-letter-table-short" in faults and compact[0] == "Z":  # a table of 22 letters: remainder 22 lost
            return None
        if "upn-final-letter-refused" in faults and compact[-1].isalpha():  # temporary UPNs refused
            return None
        return compact
    if "upn-no-check-letter" in faults and len(compact) == 13:
        try:
            fixed = identifiers.upn_check_letter(compact[1:]) + compact[1:]
        except Exception:
            return None
        if identifiers.is_valid_upn(fixed) and compact[0].isalpha():
            return compact
    return None


def check_nhs_number(value: str, faults: Collection[str]) -> str | None:
    """The compact NHS number when valid (``nhs-no-modulus``: any ten digits), else None."""
    compact = identifiers.compact_nhs_number(value)
    if "nhs-length-unchecked" in faults and len(compact) == 11 and compact.isdigit():
        if identifiers.is_valid_nhs_number(compact[:10]):
            return compact
    if "nhs-length-by-check-digit-only" in faults and 9 <= len(compact) <= 11 and compact.isdigit():
        if identifiers.nhs_sum_fits(compact):  # the length never checked
            return compact
    if identifiers.is_valid_nhs_number(compact):
        if "nhs-check-eleven-not-zero" in faults and compact[9] == "0":  # 11 - 0 = 11 never mapped to 0
            return None
        return compact
    if "nhs-no-modulus" in faults and len(compact) == 10 and compact.isascii() and compact.isdigit():
        return compact
    return None


def search_identifier(kind: str, value: str) -> str:
    """Compact form of a searched UPN / NHS number / local ID (spaces removed, upper case)."""
    if kind == "nhs_number":
        return re.sub(r"[\s-]+", "", value)
    return re.sub(r"\s+", "", value).upper()


# -- name matching --------------------------------------------------------------------

_NAME_FAULTS = frozenset(
    {
        "search-accent-sensitive",
        "search-case-sensitive",
        "search-exact-names-only",
        "search-substring-overmatch",
        "search-lowercase-not-casefold",
        "search-nfd-not-nfkd",
        "search-two-parts-only",
        "search-aliases-not-folded",
        "search-aliases-whole-only",
    }
)
#: faults that change how the current name (and so every name record) is normalised or split
_NORMALISE_FAULTS = (
    "search-accent-sensitive",
    "search-case-sensitive",
    "search-lowercase-not-casefold",
    "search-nfd-not-nfkd",
    "search-two-parts-only",
)
#: ``search-keys-truncated``: stored search keys cut to this many characters (a fixed-width index column)
TRUNCATED_KEY = 40


def clean_name_search(faults: Collection[str]) -> bool:
    """True when no fault changes how a name term matches a stored name key."""
    return not _NAME_FAULTS.intersection(faults)


def like_prefix(term: str) -> str:
    """SQL LIKE pattern (escape ``\\``) finding a stored key list holding a key that starts with ``term``."""
    key = names.normalise(term).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{KEY_SEP}{key}%"


def stored_name_keys(value: str, faults: Collection[str]) -> str:
    """The search keys stored for a name (``search-keys-truncated``: each cut to TRUNCATED_KEY characters)."""
    keys = names.name_keys(value)
    if "search-keys-truncated" in faults:
        keys = tuple(k[:TRUNCATED_KEY] for k in keys)
    return KEY_SEP.join(keys)


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "`": "'"})


def _faulty_normalise(text: str, *, accents: bool, case: bool, lower: bool = False, nfd: bool = False) -> str:
    text = unicodedata.normalize("NFC", text.translate(_APOSTROPHES))
    if not accents:
        text = "".join(
            ch for ch in unicodedata.normalize("NFD" if nfd else "NFKD", text) if not unicodedata.combining(ch)
        )
    if not case:
        text = text.lower() if lower else text.casefold()
    return re.sub(r"\s+", " ", text).strip()


def name_matcher(
    faults: Collection[str],
) -> tuple[Callable[[str], str], Callable[[str, str, str], bool], Callable[[str, str, str, str], bool]]:
    """Return ``norm(term)``, ``match(term_key, raw_name, stored_keys)`` for current names and
    ``alias_match(term_key, raw_term, raw_name, stored_keys)`` for alias records, bent by the faults."""
    if any(f in faults for f in _NORMALISE_FAULTS):
        parts_kept = 2 if "search-two-parts-only" in faults else None

        def norm(text: str) -> str:
            return _faulty_normalise(
                text,
                accents="search-accent-sensitive" in faults,
                case="search-case-sensitive" in faults,
                lower="search-lowercase-not-casefold" in faults,
                nfd="search-nfd-not-nfkd" in faults,
            )

        def keys_of(raw: str, stored: str) -> list[str]:
            whole = norm(raw)
            return [whole, *[p for p in re.split(r"[\s\-]+", whole) if p][:parts_kept]]
    else:
        norm = names.normalise

        def keys_of(raw: str, stored: str) -> list[str]:
            return stored.split(KEY_SEP)

    if "search-exact-names-only" in faults:

        def match(term: str, raw: str, stored: str) -> bool:
            return any(k == term for k in keys_of(raw, stored))
    elif "search-substring-overmatch" in faults:

        def match(term: str, raw: str, stored: str) -> bool:
            return term in keys_of(raw, stored)[0]
    else:

        def match(term: str, raw: str, stored: str) -> bool:
            return any(k.startswith(term) for k in keys_of(raw, stored))

    if "search-aliases-not-folded" in faults:

        def alias_match(term: str, raw_term: str, raw: str, stored: str) -> bool:
            plain = raw.lower()  # lower-cased only: accents and apostrophes kept
            wanted = raw_term.lower().strip()
            return bool(wanted) and any(k.startswith(wanted) for k in (plain, *re.split(r"[\s\-]+", plain)))
    elif "search-aliases-whole-only" in faults:

        def alias_match(term: str, raw_term: str, raw: str, stored: str) -> bool:
            return keys_of(raw, stored)[0] == term
    else:

        def alias_match(term: str, raw_term: str, raw: str, stored: str) -> bool:
            return match(term, raw, stored)

    return norm, match, alias_match


# -- timescales -----------------------------------------------------------------------


@cache
def _holidays_2007_shifted(year: int) -> frozenset[date]:
    days = set()
    for day in holidays.country_holidays("GB", subdiv="ENG", years=2007):
        try:
            days.add(day.replace(year=year))
        except ValueError:
            pass
    return frozenset(days)


#: the bank holidays every year has (their observed substitutes aside): a rule set knows only these
_REGULAR_HOLIDAYS = frozenset(
    {
        "New Year's Day",
        "Good Friday",
        "Easter Monday",
        "May Day",
        "Spring Bank Holiday",
        "Late Summer Bank Holiday",
        "Christmas Day",
        "Boxing Day",
    }
)


@cache
def _holidays_bent(year: int, substitutes: bool, one_offs: bool) -> frozenset[date]:
    days = set()
    for day, name in holidays.country_holidays("GB", subdiv="ENG", years=year).items():
        observed = "(observed)" in name
        regular = name.replace(" (observed)", "") in _REGULAR_HOLIDAYS
        if (observed and not substitutes) or (not regular and not one_offs):
            continue
        days.add(day)
    return frozenset(days)


def due_date(kind: str, start: date, faults: Collection[str]) -> date:
    """Working-day due date of an assessment, as bent by the timescale faults."""
    days = workingdays.TIMESCALES[kind]
    if "timescale-calendar-days" in faults:
        return start + timedelta(days=days)
    if "timescale-holiday-start-shifted" in faults and workingdays.is_bank_holiday(start):
        start = workingdays.add_working_days(start, 1)  # the next working day taken as day 0
    substitutes = "timescale-no-substitute-days" not in faults
    one_offs = "timescale-no-one-off-holidays" not in faults
    if not (substitutes and one_offs):
        current, remaining = start, days
        while remaining:
            current += timedelta(days=1)
            if current.weekday() < 5 and current not in _holidays_bent(current.year, substitutes, one_offs):
                remaining -= 1
        return current
    if "timescale-ignores-bank-holidays" in faults or "timescale-wrong-holiday-year" in faults:
        shifted = "timescale-wrong-holiday-year" in faults
        current, remaining = start, days
        while remaining:
            current += timedelta(days=1)
            if current.weekday() < 5 and not (shifted and current in _holidays_2007_shifted(current.year)):
                remaining -= 1
        return current
    return workingdays.due_date(kind, start)


def wrong_check_letter(upn: str) -> str:
    """``upn`` with its check letter replaced by a wrong one (for ``export-bad-check-digits``)."""
    for letter in "ABCDEFGHJKLMNPQRTUVWXYZ":
        candidate = letter + upn[1:]
        if letter != upn[0] and not identifiers.is_valid_upn(candidate):
            return candidate
    return upn
