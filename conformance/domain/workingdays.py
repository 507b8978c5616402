"""Working-day arithmetic for assessment timescales (catalogue ICS-1A-TIME-*).

A working day is Monday to Friday and not a bank holiday in England and Wales for
that date's own year, as published by the ``holidays`` package (subdivision ENG).
The due date of an assessment started on day S with a timescale of N working days
is the N-th working day after S; S itself is never counted.
"""

from __future__ import annotations

import importlib.util
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import holidays

INITIAL_ASSESSMENT_DAYS = 7
CORE_ASSESSMENT_DAYS = 35
TIMESCALES: dict[str, int] = {"initial": INITIAL_ASSESSMENT_DAYS, "core": CORE_ASSESSMENT_DAYS}


@cache
def _united_kingdom() -> type[holidays.HolidayBase]:
    """``holidays``' United Kingdom calendar class, its module loaded alone.

    ``holidays.country_holidays`` reaches a country through the ``holidays.countries``
    package, whose ``__init__`` imports every country module (about 250: some 45 ms of
    CPU in each process) to use one. Loading ``countries/united_kingdom.py`` by itself
    defines the same class; should the package's layout change, the registry is used.
    """
    try:
        spec = importlib.util.spec_from_file_location(
            "holidays.countries.united_kingdom", Path(holidays.__file__).parent / "countries" / "united_kingdom.py"
        )
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]  # None is caught below
        spec.loader.exec_module(module)  # type: ignore[union-attr]  # None is caught below
        calendar: type[holidays.HolidayBase] = module.UnitedKingdom
    except Exception:  # the package is laid out differently: its public registry
        return type(holidays.country_holidays("GB"))
    return calendar


@cache
def _bank_holidays(year: int) -> frozenset[date]:
    return frozenset(_united_kingdom()(subdiv="ENG", years=year).keys())


def is_bank_holiday(day: date) -> bool:
    """True when ``day`` is an England and Wales bank holiday."""
    return day in _bank_holidays(day.year)


def is_working_day(day: date) -> bool:
    """True for Monday to Friday that is not an England and Wales bank holiday."""
    return day.weekday() < 5 and not is_bank_holiday(day)


def add_working_days(start: date, days: int) -> date:
    """Return the ``days``-th working day after ``start`` (``start`` is not counted)."""
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    current, remaining = start, days
    while remaining:
        current += timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    return current


def due_date(assessment_type: str, start: date) -> date:
    """Return the due date of an ``initial`` or ``core`` assessment started on ``start``."""
    try:
        days = TIMESCALES[assessment_type]
    except KeyError:
        raise ValueError(f"unknown assessment type {assessment_type!r}; expected one of {sorted(TIMESCALES)}") from None
    return add_working_days(start, days)
