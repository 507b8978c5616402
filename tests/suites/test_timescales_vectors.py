"""The timescale checks' expected due dates: hand-checked literals agree with ``workingdays``.

``conformance/suites/test_timescales.py`` judges targets against
:func:`conformance.domain.workingdays.due_date`; its tables also carry literals worked out by hand
from the published England and Wales bank holidays. If either drifts (a ``holidays``
release, a change to the working-day rule), this fails before any target is blamed.
"""

from __future__ import annotations

from datetime import date

import pytest

from conformance.domain.workingdays import due_date, is_bank_holiday
from conformance.suites.test_timescales import (
    ACROSS_HOLIDAYS,
    ALL_VECTORS,
    BANK_HOLIDAY_EDGES,
    CORE_PLAIN,
    INITIAL_PLAIN,
)

EASTER_AND_CHRISTMAS = (
    date(2007, 4, 6),
    date(2007, 4, 9),
    date(2007, 12, 25),
    date(2007, 12, 26),
    date(2008, 1, 1),
    date(2008, 3, 21),
    date(2008, 3, 24),
    date(2008, 12, 25),
    date(2008, 12, 26),
    date(2009, 1, 1),
)


@pytest.mark.parametrize(("kind", "start", "literal"), ALL_VECTORS, ids=[f"{k}-{s}" for k, s, _ in ALL_VECTORS])
def test_literal_matches_workingdays(kind: str, start: date, literal: date) -> None:
    assert due_date(kind, start) == literal


def test_plain_windows_hold_no_bank_holiday() -> None:
    """TIME-001/002 vectors must not depend on holidays, so a holiday fault cannot fail them."""
    for _kind, start, literal in INITIAL_PLAIN + CORE_PLAIN:
        days = (literal - start).days
        assert not any(is_bank_holiday(date.fromordinal(start.toordinal() + i)) for i in range(days + 1)), (
            start,
            literal,
        )


def test_holiday_vectors_cross_easter_and_christmas_of_2007_and_2008() -> None:
    crossed = {h for _k, start, literal in ACROSS_HOLIDAYS for h in EASTER_AND_CHRISTMAS if start < h <= literal}
    assert crossed == set(EASTER_AND_CHRISTMAS)
    assert all(is_bank_holiday(h) for h in EASTER_AND_CHRISTMAS)
    assert {k for k, _s, _l in ACROSS_HOLIDAYS} == {"initial", "core"}


def test_calendar_day_counting_would_differ() -> None:
    """Every vector distinguishes working days from calendar days (the timescale-calendar-days fault)."""
    for kind, start, literal in ALL_VECTORS:
        calendar = date.fromordinal(start.toordinal() + (7 if kind == "initial" else 35))
        assert calendar != literal, (kind, start)


@pytest.mark.parametrize(
    ("kind", "start", "literal"), BANK_HOLIDAY_EDGES, ids=[f"{k}-{s}" for k, s, _ in BANK_HOLIDAY_EDGES]
)
def test_bank_holiday_edge_literal_matches_workingdays(kind: str, start: date, literal: date) -> None:
    """The substitute-day, one-off, holiday-start and late-summer vectors agree with ``workingdays``."""
    assert due_date(kind, start) == literal


def test_bank_holiday_edges_cross_the_holiday_they_name() -> None:
    crossed = {
        date(2009, 12, 28),
        date(2010, 12, 27),
        date(2010, 12, 28),
        date(2011, 4, 29),
        date(2012, 6, 5),
        date(2008, 8, 25),
    }
    for _kind, start, literal in BANK_HOLIDAY_EDGES:
        assert any(start < day < literal for day in crossed) or is_bank_holiday(start), start
