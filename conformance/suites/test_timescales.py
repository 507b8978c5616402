"""Assessment timescales in working days, and the overdue flag (ICS-1A-TIME-001..004).

The expected ``due_date`` always comes from :func:`conformance.domain.workingdays.due_date`, the
harness's single definition of a working day (England and Wales bank holidays of the
date's own year, via ``holidays``). The tables below also carry hand-checked literals;
``tests/suites/test_timescales_vectors.py`` asserts both agree, so neither can drift.

* TIME-001 / TIME-002 use windows with no bank holiday (June-July 2008, September-October
  2007), so a target that only mishandles holidays does not fail them.
* TIME-003 crosses Easter 2007 and 2008 and Christmas 2007 and 2008 (including New Year's
  Day of the following year), for both assessment types.
* TIME-004 judges ``overdue`` on assessments of 2008: open (past due), completed on time
  (on the due date itself) and completed late.

Each assessment is started for a new child (one open assessment per child) and read back
both from the creation response and from ``GET /assessments/{id}``.
"""

from __future__ import annotations

from datetime import date, timedelta

from conformance.checking.checks import check, fail, require
from conformance.checking.world import World
from conformance.domain.workingdays import due_date, is_working_day
from conformance.suites.test_gating import get_assessment, iso, new_child, record_visit, start_assessment

TIME_001 = "ICS-1A-TIME-001"
TIME_002 = "ICS-1A-TIME-002"
TIME_003 = "ICS-1A-TIME-003"
TIME_004 = "ICS-1A-TIME-004"

#: (type, start, hand-checked due date): no bank holiday between start and due date.
INITIAL_PLAIN: tuple[tuple[str, date, date], ...] = (
    ("initial", date(2008, 6, 2), date(2008, 6, 11)),  # Monday: the following Wednesday week
    ("initial", date(2008, 6, 6), date(2008, 6, 17)),  # Friday: across two weekends
    ("initial", date(2008, 6, 7), date(2008, 6, 17)),  # Saturday start: Monday is day 1
    ("initial", date(2007, 10, 10), date(2007, 10, 19)),
)
CORE_PLAIN: tuple[tuple[str, date, date], ...] = (
    ("core", date(2008, 6, 2), date(2008, 7, 21)),
    ("core", date(2007, 9, 3), date(2007, 10, 22)),
)
#: Across Easter (Good Friday, Easter Monday) and Christmas/New Year of 2007 and 2008.
ACROSS_HOLIDAYS: tuple[tuple[str, date, date], ...] = (
    ("initial", date(2007, 4, 4), date(2007, 4, 17)),  # Easter 2007: 6 and 9 April
    ("initial", date(2008, 3, 19), date(2008, 4, 1)),  # Easter 2008: 21 and 24 March
    ("initial", date(2007, 12, 21), date(2008, 1, 4)),  # 25, 26 Dec 2007 and 1 Jan 2008
    ("initial", date(2008, 12, 22), date(2009, 1, 5)),  # 25, 26 Dec 2008 and 1 Jan 2009
    ("core", date(2007, 3, 26), date(2007, 5, 17)),  # Easter 2007 and early May 2007
    ("core", date(2008, 3, 3), date(2008, 4, 23)),  # Easter 2008
    ("core", date(2007, 12, 3), date(2008, 1, 24)),  # Christmas 2007, New Year 2008
    ("core", date(2008, 12, 1), date(2009, 1, 22)),  # Christmas 2008, New Year 2009
)
ALL_VECTORS = INITIAL_PLAIN + CORE_PLAIN + ACROSS_HOLIDAYS


def _check_due_dates(world: World, requirement: str, cases: tuple[tuple[str, date, date], ...]) -> None:
    """Start each case's assessment; its due date (created and read back) is ``due_date(type, start)``."""
    wrong: list[str] = []
    for kind, start, _literal in cases:
        expected = iso(due_date(kind, start))
        created = start_assessment(world, start, kind=kind)
        read = get_assessment(world, str(created["id"]), requirement)
        for where, body in (("created", created), ("read back", read)):
            if body.get("due_date") != expected:
                wrong.append(
                    f"{kind} assessment started {iso(start)} ({where}): due_date {body.get('due_date')!r}, expected {expected}"
                )
                break
    if wrong:
        fail(requirement, "; ".join(wrong))


@check(TIME_001)
def test_initial_assessment_due_in_seven_working_days(world: World) -> None:
    """TIME-001: initial assessment due 7 working days after the start (windows without bank holidays)."""
    _check_due_dates(world, TIME_001, INITIAL_PLAIN)


@check(TIME_002)
def test_core_assessment_due_in_thirty_five_working_days(world: World) -> None:
    """TIME-002: core assessment due 35 working days after the start (windows without bank holidays)."""
    _check_due_dates(world, TIME_002, CORE_PLAIN)


@check(TIME_003)
def test_due_dates_skip_bank_holidays_of_the_right_year(world: World) -> None:
    """TIME-003: Easter and Christmas/New Year of 2007 and 2008 (and 1 Jan 2009) are not working days."""
    _check_due_dates(world, TIME_003, ACROSS_HOLIDAYS)


def _target_due(body: dict[str, object], fallback: date) -> date:
    """The due date the target reports (TIME-004 judges ``overdue`` against it), else ``fallback``."""
    try:
        return date.fromisoformat(str(body.get("due_date")))
    except ValueError:
        return fallback


@check(TIME_004)
def test_overdue_flag(world: World) -> None:
    """TIME-004: ``overdue`` is true when open past the due date or completed after it, else false.

    Judged against the due date the target itself reports, so a wrong due date (TIME-001..003)
    is not also blamed on the overdue flag.
    """
    start = date(2008, 6, 2)
    seen = start + timedelta(days=1)

    still_open = start_assessment(world, start)
    read = get_assessment(world, str(still_open["id"]), TIME_004)
    due = _target_due(read, due_date("initial", start))
    require(
        read.get("overdue") is True,
        TIME_004,
        f"an initial assessment started {iso(start)}, due {iso(due)}, still open: overdue is {read.get('overdue')!r}, expected true",
    )

    for days_after_due, expected, what in (
        (0, False, "completed on its due date"),
        (-2, False, "completed before its due date"),
        (7, True, "completed a week after its due date"),
    ):
        assessment = start_assessment(world, start)
        aid = str(assessment["id"])
        due = _target_due(assessment, due_date("initial", start))
        completed_on = max(due + timedelta(days=days_after_due), seen)
        record_visit(world, aid, seen, requirements=TIME_004)
        response = world.complete(aid, iso(completed_on))
        if response.status_code != 200:
            fail(
                TIME_004,
                f"could not complete an assessment (seen {iso(seen)}) on {iso(completed_on)}: "
                f"HTTP {response.status_code} {response.text[:200]}",
            )
        read = get_assessment(world, aid, TIME_004)
        require(
            read.get("status") == "completed",
            TIME_004,
            f"assessment {what}: status {read.get('status')!r} after completion",
        )
        require(
            read.get("overdue") is expected,
            TIME_004,
            f"initial assessment started {iso(start)}, due {iso(due)}, {what} ({iso(completed_on)}): "
            f"overdue is {read.get('overdue')!r}, expected {str(expected).lower()}",
        )


# -- the cases of specs/test-design/timescales.yaml that the checks above do not reach ------------

#: Substitute days, one-off bank holidays, a start on a bank holiday and the late summer
#: holiday of England (the due dates come from conformance.domain.workingdays).
BANK_HOLIDAY_EDGES: tuple[tuple[str, date, date], ...] = (
    ("initial", date(2009, 12, 21), date(2010, 1, 4)),  # Boxing Day 2009 a Saturday: Monday 28 Dec off
    ("initial", date(2010, 12, 20), date(2010, 12, 31)),  # Christmas and Boxing Day 2010 at a weekend: 27, 28 Dec off
    ("initial", date(2011, 4, 26), date(2011, 5, 9)),  # the royal wedding, 29 April 2011, and early May
    ("initial", date(2012, 5, 30), date(2012, 6, 12)),  # the Diamond Jubilee, 4 and 5 June 2012
    ("initial", date(2008, 3, 21), date(2008, 4, 2)),  # started on Good Friday 2008: day 0 is the holiday
    ("initial", date(2008, 8, 20), date(2008, 9, 1)),  # late summer bank holiday, 25 August 2008
)


@check(TIME_001)
def test_initial_due_from_a_sunday_start(world: World) -> None:
    """TIME-001: an initial assessment started on a Sunday: Monday is working day 1."""
    _check_due_dates(world, TIME_001, (("initial", date(2008, 6, 8), date(2008, 6, 17)),))


@check(TIME_003)
def test_due_dates_across_substitute_and_one_off_holidays(world: World) -> None:
    """TIME-003: substitute days (December 2009 and 2010), one-off bank holidays (2011,
    2012), a start on Good Friday and England's late summer holiday are not working days."""
    _check_due_dates(world, TIME_003, BANK_HOLIDAY_EDGES)


def _start_for_due_today(today: date) -> date | None:
    """A start date whose initial assessment is due today, or None (today not a working day)."""
    if not is_working_day(today):
        return None
    start = today - timedelta(days=1)
    while due_date("initial", start) > today:
        start -= timedelta(days=1)
    return start if due_date("initial", start) == today else None


@check(TIME_004)
def test_overdue_boundaries(world: World, today: date) -> None:
    """TIME-004: completed the day after its due date, an assessment is overdue; open and
    started today, or open and due today (judged on working days, when a due date can be
    today), it is not."""
    start = date(2008, 6, 2)
    assessment = start_assessment(world, start)
    aid = str(assessment["id"])
    due = _target_due(assessment, due_date("initial", start))
    record_visit(world, aid, start + timedelta(days=1), requirements=TIME_004)
    response = world.complete(aid, iso(due + timedelta(days=1)))
    if response.status_code != 200:
        fail(
            TIME_004,
            f"could not complete an assessment (seen {iso(start + timedelta(days=1))}) on "
            f"{iso(due + timedelta(days=1))}: HTTP {response.status_code} {response.text[:200]}",
        )
    read = get_assessment(world, aid, TIME_004)
    require(
        read.get("overdue") is True,
        TIME_004,
        f"initial assessment started {iso(start)}, due {iso(due)}, completed the day after ({iso(due + timedelta(days=1))}): "
        f"overdue is {read.get('overdue')!r}, expected true",
    )

    opened = {"started today": today}
    due_today_start = _start_for_due_today(today)
    if due_today_start is not None:
        opened["due today"] = due_today_start
    for what, day in opened.items():
        child = new_child(world, "Overdue")
        response = world.client.post(
            f"/children/{child}/assessments",
            token=world.practitioner("practitioner").token,
            json={"type": "initial", "start_date": iso(day)},
        )
        if response.status_code != 201:
            continue  # refusing a start of today or earlier is ICS-1A-ASMT-001's matter
        body = response.json()
        read = get_assessment(world, str(body["id"]), TIME_004)
        target_due = _target_due(read, due_date("initial", day))
        if target_due < today:
            continue  # a wrong due date is TIME-001's matter; the flag is judged against the target's own
        require(
            read.get("overdue") is False,
            TIME_004,
            f"an open initial assessment {what} (started {iso(day)}, due {iso(target_due)}, today {iso(today)}): "
            f"overdue is {read.get('overdue')!r}, expected false",
        )
