"""Proof that the search checks (ICS-1B-SRCH-001..011) tell faults apart.

Each search fault of the reference service is injected and the search modules
(``test_search.py``, ``test_search_stateful.py``) are run against it in a subprocess:
exactly the checks expected to catch it FAIL, blaming only requirements the fault
registry says it breaks, and every other check passes. The clean reference passes all.

:func:`run_checks` and :func:`assert_fault_caught` are also used by
``test_records_faults.py`` and ``test_access_faults.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

import conformance.suites

SUITES = Path(conformance.suites.__file__).resolve().parent
IDS = re.compile(r"ICS-[0-9A-Z]+-[A-Z]+-\d{3}")
MODULES = ("test_search.py", "test_search_stateful.py")
#: pytest plugins these checks never use; not loading them halves a subprocess's start-up
_UNUSED_PLUGINS = ("-p", "no:faker", "-p", "no:schemathesis", "-p", "no:allure_pytest", "-p", "no:anyio")

S1 = "test_names_case_accent_apostrophe_insensitive"
S2 = "test_partial_names"
S3 = "test_aliases_previous_and_known_as_names_searched"
S4 = "test_date_of_birth_and_gender"
S5 = "test_postcode_normalised"
S6 = "test_identifiers_exact"
S7 = "test_deceased_on_request_only"
S8 = "test_unborn_found_by_expected_date"
S9 = "test_paging_neither_drops_nor_repeats"
S10 = "test_no_over_matching"
S11 = "test_shielded_hidden_unless_allocated"
MODEL = "test_name_search_matches_model"
ALL = {S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, MODEL}

#: fault -> the checks that must catch it (the requirements blamed come from the registry)
CATCHES: dict[str, set[str]] = {
    "search-accent-sensitive": {S1, MODEL},
    "search-case-sensitive": {S1, MODEL},
    "search-exact-names-only": {S2, MODEL},
    "search-ignores-aliases": {S3, MODEL},
    "search-ignores-dob": {S4, S10},
    "search-postcode-exact": {S5},
    "search-ignores-nhs-number": {S6},
    "search-includes-deceased": {S7},
    "search-ignores-unborn": {S8},
    "search-drops-last-page": {S9},
    "search-repeats-across-pages": {S9},
    "search-substring-overmatch": {S10, MODEL},
    "search-shows-shielded": {S11},
}


@dataclass(frozen=True)
class Outcome:
    """One check's outcome in a run: passed, failed, error or skipped, and blamed IDs."""

    outcome: str
    requirements: frozenset[str]
    message: str


def run_checks(tmp_path: Path, modules: tuple[str, ...], faults: tuple[str, ...] = ()) -> dict[str, Outcome]:
    """Run ``modules`` against the built-in reference with ``faults``; outcome per check."""
    junit = tmp_path / f"junit-{'-'.join(faults) or 'clean'}.xml"
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
        *_UNUSED_PLUGINS,
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
        first = re.search(r"\[(ICS-[^\]]+)\]", message)
        blamed = frozenset(IDS.findall(first.group(1))) if outcome == "failed" and first else frozenset()
        outcomes[name] = Outcome(outcome, blamed, message.strip()[:2000])
    if not outcomes:
        pytest.fail(f"no checks ran (exit {done.returncode}):\n{done.stdout[-3000:]}")
    return outcomes


def fault_targets(fault: str) -> set[str]:
    """The requirement IDs the registry says ``fault`` breaks."""
    from conformance.reference.faults import FAULTS

    entry = FAULTS[fault]
    targets = entry["targets"] if isinstance(entry, dict) else entry.targets
    return set(targets)


def report(outcomes: dict[str, Outcome]) -> str:
    return "\n".join(
        f"  {n}: {o.outcome} {sorted(o.requirements)} {o.message[:400]}" for n, o in sorted(outcomes.items())
    )


def assert_clean(outcomes: dict[str, Outcome], expected: set[str]) -> None:
    """Every expected check ran and passed (none skipped: the reference declares every capability)."""
    assert expected <= outcomes.keys(), f"checks missing from the run: {sorted(expected - outcomes.keys())}"
    bad = {n: o for n, o in outcomes.items() if o.outcome != "passed"}
    assert not bad, f"not passing on the clean reference:\n{report(bad)}"


def assert_fault_caught(outcomes: dict[str, Outcome], catchers: set[str], targets: set[str]) -> None:
    """The catchers FAIL blaming only targeted requirements; nothing else fails or errors."""
    errors = [n for n, o in outcomes.items() if o.outcome == "error"]
    assert not errors, f"checks crashed (ERROR):\n{report(outcomes)}"
    failed = {n for n, o in outcomes.items() if o.outcome == "failed"}
    assert failed == catchers, f"expected exactly {sorted(catchers)} to fail:\n{report(outcomes)}"
    for name in failed:
        blamed = outcomes[name].requirements
        assert blamed and blamed <= targets, (
            f"{name} blamed {sorted(blamed)}; the fault targets {sorted(targets)}:\n{report(outcomes)}"
        )


def test_clean_reference_passes_every_search_check(tmp_path: Path) -> None:
    assert_clean(run_checks(tmp_path, MODULES), ALL)


@pytest.mark.parametrize("fault", sorted(CATCHES))
def test_search_fault_is_caught(fault: str, tmp_path: Path) -> None:
    assert_fault_caught(run_checks(tmp_path, MODULES, (fault,)), CATCHES[fault], fault_targets(fault))
