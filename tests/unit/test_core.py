"""Unit tests of the shared core: names, working days, identifiers, verdict roll-up."""

from datetime import date

import pytest

from conformance.domain.identifiers import is_valid_nhs_number, is_valid_upn, nhs_check_digit, upn_check_letter
from conformance.domain.names import name_matches, normalise, normalise_postcode
from conformance.domain.workingdays import add_working_days, due_date, is_working_day
from conformance.results.verdicts import PhaseVerdict, Verdict, phase_verdict, requirement_verdict


@pytest.mark.parametrize(
    ("term", "name", "expected"),
    [
        ("Climbie", "Climbié", True),
        ("CLIMBIÉ", "Climbié", True),
        ("climbié", "CLIMBIE", True),
        ("O'Brien", "O\u2019Brien", True),
        ("o\u2018bri", "O'Brien", True),
        ("Smith", "Jones-Smith", True),
        ("Ann", "Joanne", False),
        ("Vic", "Victoria", True),
        ("", "Victoria", False),
        ("Mary Ann", "Mary  Ann", True),
    ],
)
def test_name_matching(term: str, name: str, expected: bool) -> None:
    assert name_matches(term, name) is expected


def test_normalise_is_idempotent() -> None:
    assert normalise(normalise("Zoë Ñúñez-O’Hara")) == normalise("Zoë Ñúñez-O’Hara") == "zoe nunez-o'hara"


def test_postcode_normalisation() -> None:
    assert normalise_postcode(" sw1a  1aa ") == "SW1A1AA"


@pytest.mark.parametrize(
    ("start", "kind", "expected"),
    [
        (date(2008, 3, 17), "initial", date(2008, 3, 28)),  # Good Friday 21st, Easter Monday 24th
        (date(2007, 12, 20), "initial", date(2008, 1, 3)),  # 25th, 26th, 1 Jan
        (date(2008, 12, 19), "initial", date(2009, 1, 2)),  # 25th, 26th, 1 Jan 2009
        (date(2007, 4, 2), "initial", date(2007, 4, 13)),  # Good Friday 6th, Easter Monday 9th
        (date(2008, 6, 2), "initial", date(2008, 6, 11)),  # no holidays
    ],
)
def test_due_dates_across_bank_holidays(start: date, kind: str, expected: date) -> None:
    assert due_date(kind, start) == expected


def test_core_due_date_counts_35_working_days() -> None:
    start = date(2008, 6, 2)
    due = due_date("core", start)
    assert due == add_working_days(start, 35)
    assert sum(is_working_day(date.fromordinal(o)) for o in range(start.toordinal() + 1, due.toordinal() + 1)) == 35


def test_bank_holidays_match_the_holidays_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The United Kingdom calendar loaded alone gives the registry's England bank holidays,
    and the registry is used when the module cannot be loaded alone."""
    import holidays

    from conformance.domain import workingdays

    years = range(1950, 2071)
    registry = {y: frozenset(holidays.country_holidays("GB", subdiv="ENG", years=y)) for y in years}
    workingdays._bank_holidays.cache_clear()
    workingdays._united_kingdom.cache_clear()
    assert workingdays._united_kingdom().__name__ == "UnitedKingdom"
    assert {y: workingdays._bank_holidays(y) for y in years} == registry
    assert date(2012, 6, 5) in registry[2012] and date(2012, 5, 28) not in registry[2012]  # the moved spring holiday

    monkeypatch.setattr(workingdays.importlib.util, "spec_from_file_location", lambda *args: None)
    workingdays._bank_holidays.cache_clear()
    workingdays._united_kingdom.cache_clear()
    try:
        assert {y: workingdays._bank_holidays(y) for y in years} == registry
    finally:
        workingdays._bank_holidays.cache_clear()
        workingdays._united_kingdom.cache_clear()


def test_identifier_vectors_agree_with_stdnum() -> None:
    assert is_valid_nhs_number("9434765919")
    assert not is_valid_nhs_number("9434765918")
    assert nhs_check_digit("943476591") == "9"
    body = "801200005001"
    assert is_valid_upn(upn_check_letter(body) + body)
    assert not is_valid_upn("A" + body) or upn_check_letter(body) == "A"


def test_requirement_rollup() -> None:
    assert requirement_verdict([]) is Verdict.NOT_RUN
    assert requirement_verdict([Verdict.PASS, Verdict.PASS]) is Verdict.PASS
    assert requirement_verdict([Verdict.PASS, Verdict.ERROR]) is Verdict.ERROR
    assert requirement_verdict([Verdict.FAIL, Verdict.ERROR]) is Verdict.FAIL
    assert requirement_verdict([Verdict.NOT_APPLICABLE]) is Verdict.NOT_APPLICABLE
    assert requirement_verdict([Verdict.PASS, Verdict.NOT_APPLICABLE]) is Verdict.PASS
    assert requirement_verdict([Verdict.PASS, Verdict.SKIPPED]) is Verdict.SKIPPED


def test_phase_rollup() -> None:
    assert phase_verdict([("MUST", Verdict.PASS), ("SHOULD", Verdict.FAIL)]) is PhaseVerdict.CERTIFIED
    assert phase_verdict([("MUST", Verdict.FAIL)]) is PhaseVerdict.NOT_CERTIFIED
    assert phase_verdict([("MUST", Verdict.FAIL), ("MAY", Verdict.ERROR)]) is PhaseVerdict.INCONCLUSIVE
    assert phase_verdict([("MUST", Verdict.SKIPPED)]) is PhaseVerdict.INCONCLUSIVE
    assert phase_verdict([("MUST", Verdict.WAIVED), ("MUST", Verdict.NOT_APPLICABLE)]) is PhaseVerdict.CERTIFIED
    assert phase_verdict([]) is PhaseVerdict.INCONCLUSIVE
