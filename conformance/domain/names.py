"""Name normalisation and matching: the single definition of ICS name search.

Used by the reference service, by the harness's oracle and by the export rules, so
that all three agree on what "Climbie finds Climbié" means (catalogue ICS-1B-SRCH-001/002):

* normalise: Unicode NFKD, drop combining marks, case-fold, curly apostrophes and
  modifier-letter apostrophes become ``'``, runs of whitespace become one space;
* a search term matches a name when the normalised term is a prefix of the whole
  normalised name or of one of its parts (split on spaces and hyphens).
"""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "`": "'"})
_SPACES = re.compile(r"\s+")
_PARTS = re.compile(r"[\s\-]+")


def normalise(text: str) -> str:
    """Return the search key of ``text``: accent-, case- and apostrophe-insensitive."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", stripped.casefold()).strip()


def name_keys(name: str) -> tuple[str, ...]:
    """Return the normalised whole name followed by its normalised parts."""
    whole = normalise(name)
    parts = tuple(p for p in _PARTS.split(whole) if p)
    return (whole, *parts)


def name_matches(term: str, name: str) -> bool:
    """True when ``term`` is a prefix of ``name`` or of one of its parts, after normalising."""
    key = normalise(term)
    if not key:
        return False
    return any(k.startswith(key) for k in name_keys(name))


def normalise_postcode(postcode: str) -> str:
    """Return a UK postcode upper-cased with every space removed (``sw1a 1aa`` -> ``SW1A1AA``)."""
    return re.sub(r"\s+", "", postcode).upper()
