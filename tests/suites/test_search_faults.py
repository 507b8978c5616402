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
from suite_blame import blamed as blamed_by

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
# the checks of specs/test-design/search.yaml's further cases
S1F = "test_name_folding_full_and_on_aliases"
S2P = "test_partial_names_every_part_and_alias"
S3A = "test_alias_matched_by_either_name_alone"
S4X = "test_date_of_birth_exact_and_gender_alone"
S5W = "test_postcode_matches_whole_postcode_only"
S6L = "test_local_id_criterion_compacted"
S7P = "test_deceased_excluded_on_every_path"
S9X = "test_paging_at_exact_multiples_and_limits"
S10A = "test_criteria_anded_on_alias_matches_and_long_names"
S11R = "test_shielded_hidden_for_every_role_path_and_allocation"
ALL = {S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, MODEL, S1F, S2P, S3A, S4X, S5W, S6L, S7P, S9X, S10A, S11R}

#: fault -> the checks that must catch it (the requirements blamed come from the registry)
CATCHES: dict[str, set[str]] = {
    "search-accent-sensitive": {S1, MODEL, S1F},
    "search-case-sensitive": {S1, MODEL, S1F},
    "search-exact-names-only": {S2, MODEL, S2P},
    "search-ignores-aliases": {S3, MODEL, S3A},
    "search-ignores-dob": {S4, S10, S4X, S10A},
    "search-postcode-exact": {S5, S5W},
    "search-ignores-nhs-number": {S6},
    "search-includes-deceased": {S7, S7P},
    "search-ignores-unborn": {S8},
    "search-drops-last-page": {S9, S9X},
    "search-repeats-across-pages": {S9, S9X},
    "search-substring-overmatch": {S10, MODEL},
    "search-shows-shielded": {S11, S11R},
    # one case of specs/test-design/search.yaml each
    "search-lowercase-not-casefold": {S1F},
    "search-nfd-not-nfkd": {S1F},
    "search-aliases-not-folded": {S1F},
    "search-two-parts-only": {S2P},
    "search-aliases-whole-only": {S2P},
    "search-aliases-need-family-name": {S3A},
    "search-dob-within-a-day": {S4X},
    "search-gender-alone-refused": {S4X},
    "search-postcode-prefix": {S5W},
    "search-local-id-raw": {S6L},
    "search-alias-includes-deceased": {S7P},
    "search-identifier-includes-deceased": {S7P},
    "search-full-last-page-dropped": {S9X},
    "search-alias-matches-duplicated": {S9X},
    "search-alias-skips-criteria": {S10A},
    "search-keys-truncated": {S10A},
    "search-shielded-visible-to-managers": {S11R},
    "search-shielded-any-allocation": {S11R},
    "search-shielded-once-anyone-allocated": {S11R},
    "search-alias-shows-shielded": {S11R},
    "search-identifier-shows-shielded": {S11R},
}

#: fault -> checks that may also catch it, depending on the seed: the stateful model explores
#: names, aliases and terms at random within the profile's budget. When it fails it must
#: blame only the fault's targets; the scenario checks above must catch the fault every time.
MAY_CATCH: dict[str, set[str]] = {
    "search-aliases-not-folded": {MODEL},
    "search-two-parts-only": {MODEL},
    "search-aliases-whole-only": {MODEL},
    "search-aliases-need-family-name": {MODEL},
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
        blamed = blamed_by(message) if outcome == "failed" else frozenset()
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


def assert_fault_caught(
    outcomes: dict[str, Outcome], catchers: set[str], targets: set[str], may: set[str] = frozenset()
) -> None:
    """The catchers FAIL blaming only targeted requirements (``may`` checks may too); nothing else fails or errors."""
    errors = [n for n, o in outcomes.items() if o.outcome == "error"]
    assert not errors, f"checks crashed (ERROR):\n{report(outcomes)}"
    failed = {n for n, o in outcomes.items() if o.outcome == "failed"}
    assert catchers <= failed <= catchers | may, f"expected exactly {sorted(catchers)} to fail:\n{report(outcomes)}"
    for name in failed:
        blamed = outcomes[name].requirements
        assert blamed and blamed <= targets, (
            f"{name} blamed {sorted(blamed)}; the fault targets {sorted(targets)}:\n{report(outcomes)}"
        )


def test_clean_reference_passes_every_search_check(tmp_path: Path) -> None:
    assert_clean(run_checks(tmp_path, MODULES), ALL)


@pytest.mark.parametrize("fault", sorted(CATCHES))
def test_search_fault_is_caught(fault: str, tmp_path: Path) -> None:
    outcomes = run_checks(tmp_path, MODULES, (fault,))
    assert_fault_caught(outcomes, CATCHES[fault], fault_targets(fault), MAY_CATCH.get(fault, set()))
