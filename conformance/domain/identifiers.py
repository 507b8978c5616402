"""Identifier validation (UPN check letter, NHS number modulus 11) via python-stdnum.

Published worked examples of these check digits are sometimes wrong, so the harness
never hand-rolls them: python-stdnum is the single source (catalogue ICS-1A-REC-002/003).
"""

from __future__ import annotations

from stdnum.gb import nhs, upn


def compact_upn(value: str) -> str:
    """Return the UPN without spaces, upper-cased."""
    return upn.compact(value)


def is_valid_upn(value: str) -> bool:
    """True when ``value`` is a 13-character UPN with a correct check letter."""
    return upn.is_valid(value)


def compact_local_id(value: str) -> str:
    """Return a local child ID compacted as the catalogue defines it: whitespace removed, upper case.

    A system may store the local ID as written or compacted (ICS-1A-REC-001); either way the
    stored form must equal the written one or its compact form.
    """
    return "".join(value.split()).upper()


def same_local_id(stored: object, written: str) -> bool:
    """True when ``stored`` is ``written`` as written or compacted (the two forms REC-001 allows)."""
    return isinstance(stored, str) and stored in (written, compact_local_id(written))


def compact_nhs_number(value: str) -> str:
    """Return the NHS number without spaces or hyphens."""
    return nhs.compact(value)


def is_valid_nhs_number(value: str) -> bool:
    """True when ``value`` is a 10-digit NHS number passing the modulus 11 check."""
    return nhs.is_valid(value)


def upn_check_letter(body: str) -> str:
    """Return the check letter for the 12 characters that follow it in a UPN."""
    return upn.calc_check_digit(body)


def nhs_sum_fits(digits: str) -> bool:
    """Whether ``digits`` pass the modulus 11 sum alone (weights 1, 2, ... from the last digit),
    whatever their length: the length rule is separate (ICS-1A-REC-003)."""
    return digits.isascii() and digits.isdigit() and nhs.checksum(digits) == 0


def nine_digits_fitting_the_sum() -> str:
    """Nine digits that pass the modulus 11 sum: refused by the length rule alone."""
    import secrets

    while True:
        body = f"{secrets.randbelow(9 * 10**7) + 10**7:08d}"
        for digit in "0123456789":
            if nhs_sum_fits(body + digit):
                return body + digit


def nhs_check_digit(body: str) -> str:
    """Return the modulus 11 check digit of the first nine digits of an NHS number.

    Raises ``ValueError`` for the bodies that no check digit makes valid (remainder 10).
    """
    for digit in "0123456789":
        if nhs.is_valid(body + digit):
            return digit
    raise ValueError(f"no valid NHS number starts with {body!r}")
