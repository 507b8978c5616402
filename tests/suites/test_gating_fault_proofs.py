"""Proof that the gating, timescale, assessment and referral checks tell faults apart.

Each injectable fault of those areas is run against the five suite modules below in a
subprocess (``pytest <modules> --ics-phase 1B --ics-reference-fault F``): exactly the
checks expected to catch it FAIL, blaming only requirements the fault registry says it
breaks, and every other check passes. The clean reference passes every check.

The runner and the assertions are shared with ``test_contract_fault_proofs.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from suite_blame import blamed as blamed_by

import conformance.suites

SUITES = Path(conformance.suites.__file__).resolve().parent
MODULES = (
    "test_gating.py",
    "test_gating_stateful.py",
    "test_timescales.py",
    "test_assessments.py",
    "test_referrals.py",
)
IDS = re.compile(r"ICS-[0-9A-Z]+-[A-Z]+-\d{3}")

NO_VISIT = "test_completion_refused_without_any_visit"
SEEN_OK = "test_completion_allowed_once_child_seen"
UNSEEN = "test_not_seen_visit_does_not_count"
BEFORE_START = "test_seen_before_start_does_not_count"
AFTER_COMPLETION = "test_seen_after_completion_date_does_not_count"
FUTURE = "test_future_seen_visit_does_not_count"
STATE = "test_refused_completion_leaves_assessment_open_and_unchanged"
MODEL = "test_gating_matches_model"
INITIAL = "test_initial_assessment_due_in_seven_working_days"
CORE = "test_core_assessment_due_in_thirty_five_working_days"
HOLIDAYS = "test_due_dates_skip_bank_holidays_of_the_right_year"
OVERDUE = "test_overdue_flag"
STARTED = "test_assessment_started_and_read_back"
FUTURE_START = "test_assessment_start_in_future_refused"
BEFORE_REFERRAL = "test_assessment_start_before_referral_refused"
ONE_OPEN = "test_one_open_assessment_per_child"
VISITS = "test_visits_listed_on_the_assessment"
REFERRAL = "test_referral_recorded_and_read_back"
REFERRAL_FUTURE = "test_referral_received_in_future_refused"

# the checks of specs/test-design's further gating, timescale, assessment and referral cases
OTHER_ASSESSMENT = "test_seen_visit_on_another_assessment_does_not_count"
EVERY_ROLE = "test_completion_gated_for_every_writer_role"
ANY_VISIT = "test_any_qualifying_visit_allows_completion"
DAY_BEFORE = "test_seen_day_before_start_does_not_count"
TOMORROW = "test_seen_tomorrow_does_not_count"
SUNDAY = "test_initial_due_from_a_sunday_start"
EDGES = "test_due_dates_across_substitute_and_one_off_holidays"
OVERDUE_EDGES = "test_overdue_boundaries"
START_EDGES = "test_assessment_start_date_boundaries"
OTHER_CHILD = "test_open_assessment_blocks_only_its_child"
OWN_VISITS = "test_visit_dated_today_and_only_own_visits_listed"
SOURCES = "test_referral_every_source_and_longest_reason"
REFERRAL_EDGES = "test_referral_date_boundaries"
#: the new checks in which a completion must be refused
NEW_REFUSALS = {OTHER_ASSESSMENT, EVERY_ROLE, DAY_BEFORE, TOMORROW}
NEW_CHECKS = {
    OTHER_ASSESSMENT,
    EVERY_ROLE,
    ANY_VISIT,
    DAY_BEFORE,
    TOMORROW,
    SUNDAY,
    EDGES,
    OVERDUE_EDGES,
    START_EDGES,
    OTHER_CHILD,
    OWN_VISITS,
    SOURCES,
    REFERRAL_EDGES,
}

ALL_CHECKS = NEW_CHECKS | {
    NO_VISIT,
    SEEN_OK,
    UNSEEN,
    BEFORE_START,
    AFTER_COMPLETION,
    FUTURE,
    STATE,
    MODEL,
    INITIAL,
    CORE,
    HOLIDAYS,
    OVERDUE,
    STARTED,
    FUTURE_START,
    BEFORE_REFERRAL,
    ONE_OPEN,
    VISITS,
    REFERRAL,
    REFERRAL_FUTURE,
}
REFUSALS = {NO_VISIT, UNSEEN, BEFORE_START, AFTER_COMPLETION, FUTURE, STATE, MODEL}

#: fault -> the checks that must catch it (the requirements are the registry's targets)
CATCHES: dict[str, set[str]] = {
    "gating-off": REFUSALS | NEW_REFUSALS,
    "gating-accepts-future-seen": {FUTURE, TOMORROW},
    "gating-ignores-start-date": {BEFORE_START, DAY_BEFORE},
    "gating-ignores-completion-date": {AFTER_COMPLETION},
    "gating-counts-unseen-visits": {UNSEEN},
    "gating-generic-error-code": REFUSALS | NEW_REFUSALS,
    "gating-completes-despite-refusal": REFUSALS | NEW_REFUSALS,
    "timescale-calendar-days": {INITIAL, CORE, HOLIDAYS, SUNDAY, EDGES},
    "timescale-ignores-bank-holidays": {HOLIDAYS, EDGES},
    "timescale-wrong-holiday-year": {HOLIDAYS, EDGES},
    "overdue-never": {OVERDUE, OVERDUE_EDGES},
    "assessment-accepts-future-start": {FUTURE_START, START_EDGES},
    "gating-allows-second-open": {ONE_OPEN},
    "visits-not-listed": {VISITS, OWN_VISITS},
    "referral-accepts-future-date": {REFERRAL_FUTURE, REFERRAL_EDGES},
    "referral-loses-source": {REFERRAL, SOURCES},
    # one case of specs/test-design each
    "gating-counts-other-assessments-visits": {OTHER_ASSESSMENT},
    "gating-managers-exempt": {EVERY_ROLE},
    "gating-latest-visit-only": {ANY_VISIT},
    "gating-start-off-by-one": {DAY_BEFORE},
    "gating-accepts-tomorrow": {TOMORROW},
    "timescale-no-substitute-days": {EDGES},
    "timescale-no-one-off-holidays": {EDGES},
    "timescale-holiday-start-shifted": {EDGES},
    "overdue-grace-day": {OVERDUE_EDGES},
    "overdue-open-always": {OVERDUE_EDGES},
    "overdue-on-due-day": {OVERDUE_EDGES},
    "assessment-accepts-tomorrow": {START_EDGES},
    "assessment-refuses-today": {START_EDGES},
    "assessment-referral-off-by-one": {START_EDGES},
    "visits-today-refused": {OWN_VISITS},
    "visits-listed-by-child": {OWN_VISITS},
    "referral-local-authority-as-other": {SOURCES},
    "referral-reason-truncated": {SOURCES},
    "referral-accepts-tomorrow": {REFERRAL_EDGES},
    "referral-refuses-today": {REFERRAL_EDGES},
}

#: fault -> checks that may also catch it on some seeds (not required to find it on any).
ALSO_MAY_CATCH: dict[str, set[str]] = {
    "gating-latest-visit-only": {MODEL},
    "gating-start-off-by-one": {MODEL},
}


def _judged_today(fault: str) -> bool:
    """``overdue-on-due-day`` shows only when an assessment can be due today: on a working day."""
    if fault != "overdue-on-due-day":
        return True
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from conformance.domain.workingdays import is_working_day

    return is_working_day(datetime.now(ZoneInfo("Europe/London")).date())


#: fault -> checks that may catch it, depending on the seed: the model explores at random
#: within the profile's budget, so a narrow fault is found on most seeds but not all. When
#: it does fail it must blame only the fault's targets; the scenario checks must catch it.
MAY_CATCH: dict[str, set[str]] = {
    "gating-accepts-future-seen": {MODEL},
    "gating-ignores-start-date": {MODEL},
    "gating-ignores-completion-date": {MODEL},
    "gating-counts-unseen-visits": {MODEL},
}


@dataclass(frozen=True)
class Outcome:
    """One check's outcome in a run: passed, failed, error or skipped, and the IDs it blamed."""

    outcome: str
    requirements: frozenset[str]
    message: str


def run_checks(
    tmp_path: Path, modules: tuple[str, ...], faults: tuple[str, ...] = (), extra: tuple[str, ...] = ()
) -> dict[str, Outcome]:
    """Run ``modules`` against the built-in reference with ``faults``; outcome per check (by function name)."""
    junit = tmp_path / f"junit-{'-'.join(faults) or 'clean'}-{'-'.join(extra)}.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(str(SUITES / m) for m in modules),
        "--ics-phase",
        "1B",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={junit}",
        *extra,
    ]
    for fault in faults:
        command += ["--ics-reference-fault", fault]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    if not junit.exists():
        pytest.fail(
            f"the suite run wrote no JUnit XML (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    outcomes: dict[str, Outcome] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "").split("[", 1)[0]
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (element.get("message") or "") + "\n" + (element.text or "")
                break
        blamed = blamed_by(message) if outcome == "failed" else frozenset()
        outcomes[name] = Outcome(outcome, blamed, message.strip()[:2000])
    if not outcomes:
        pytest.fail(f"no checks ran (exit {done.returncode}):\n{done.stdout[-3000:]}")
    return outcomes


def fault_targets(fault: str) -> set[str]:
    """The requirement IDs the reference's fault registry says ``fault`` breaks."""
    from conformance.reference import FAULTS

    entry = FAULTS[fault]
    return set(entry["targets"] if isinstance(entry, dict) else entry.targets)


def assert_fault_caught(
    outcomes: dict[str, Outcome], catchers: set[str], targets: set[str], optional: set[str] = frozenset()
) -> None:
    """The catchers (and maybe ``optional``) FAIL blaming only targeted requirements; nothing else fails or errors."""
    report = "\n".join(
        f"  {n}: {o.outcome} {sorted(o.requirements)} {o.message[:400]}" for n, o in sorted(outcomes.items())
    )
    errors = [n for n, o in outcomes.items() if o.outcome == "error"]
    assert not errors, f"checks crashed (ERROR):\n{report}"
    failed = {n for n, o in outcomes.items() if o.outcome == "failed"}
    assert catchers <= failed <= catchers | optional, (
        f"expected exactly {sorted(catchers)} (and maybe {sorted(optional)}) to fail:\n{report}"
    )
    for name in failed:
        blamed = outcomes[name].requirements
        assert blamed and blamed <= targets, (
            f"{name} blamed {sorted(blamed)}; the fault targets {sorted(targets)}:\n{report}"
        )


def test_clean_reference_passes_every_check(tmp_path: Path) -> None:
    outcomes = run_checks(tmp_path, MODULES)
    assert ALL_CHECKS <= outcomes.keys(), sorted(ALL_CHECKS - outcomes.keys())
    bad = {n: o for n, o in outcomes.items() if o.outcome != "passed"}
    assert not bad, f"not passing on the clean reference: {bad}"


@pytest.mark.parametrize("fault", sorted(CATCHES))
def test_fault_is_caught(fault: str, tmp_path: Path) -> None:
    if not _judged_today(fault):
        pytest.skip(f"{fault}: today (Europe/London) is not a working day, so no assessment is due today")
    optional = MAY_CATCH.get(fault, set()) | ALSO_MAY_CATCH.get(fault, set())
    assert_fault_caught(run_checks(tmp_path, MODULES, (fault,)), CATCHES[fault], fault_targets(fault), optional)


@pytest.mark.parametrize("fault", sorted(MAY_CATCH))
def test_model_finds_narrow_fault_on_some_seed(fault: str, tmp_path: Path) -> None:
    """The stateful model alone finds each narrow gating fault within a few seeds, blaming only its targets."""
    targets = fault_targets(fault)
    seen: list[str] = []
    for seed in (1, 2, 3, 4):
        outcomes = run_checks(tmp_path, ("test_gating_stateful.py",), (fault,), extra=("--ics-seed", str(seed)))
        model = outcomes[MODEL]
        assert model.outcome in ("passed", "failed"), f"seed {seed}: {model}"
        if model.outcome == "failed":
            assert model.requirements and model.requirements <= targets, (
                f"seed {seed}: blamed {sorted(model.requirements)}: {model.message}"
            )
            return
        seen.append(f"seed {seed}: passed")
    pytest.fail(f"the gating model never found {fault}: {seen}")
