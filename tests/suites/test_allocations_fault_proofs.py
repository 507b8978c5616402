"""Proof that the allocation checks (ICS-1A-ALLOC-001..003) tell faults apart.

Each injectable fault of the reference service aimed at them is run against
``conformance/suites/test_allocations.py`` in a subprocess: exactly the checks expected to catch
it FAIL, naming only requirements the fault registry says it breaks; every other check
passes (or is SKIPPED for a missing prerequisite). The clean reference passes.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from suite_blame import blamed as blamed_by

import conformance.suites
from conformance.reference.faults import FAULTS

SUITES = Path(conformance.suites.__file__).resolve().parent
MODULE = "test_allocations.py"
IDS = re.compile(r"ICS-[0-9A-Z]+-[A-Z]+-\d{3}")

LISTED = "test_allocation_listed_as_current"
ENDED = "test_ending_allocation_records_end_date"
UNKNOWN = "test_allocating_unknown_practitioner_refused"
# the checks of specs/test-design/allocations.yaml's further cases
TWICE = "test_allocating_twice_leaves_practitioner_current"
ENDS = "test_ending_twice_and_one_of_two"
ALL_CHECKS = {LISTED, ENDED, UNKNOWN, TWICE, ENDS}

#: fault -> the checks that must catch it (the requirements are the registry's targets)
CATCHES: dict[str, set[str]] = {
    "allocations-not-listed": {LISTED, TWICE},
    "allocation-end-not-recorded": {ENDED, ENDS},
    "allocation-unknown-practitioner": {UNKNOWN},
    # one case of specs/test-design/allocations.yaml each
    "allocation-end-ends-all-of-practitioner": {ENDS},
    "allocation-end-twice-overwrites": {ENDS},
}


def run_checks(tmp_path: Path, faults: tuple[str, ...] = ()) -> dict[str, tuple[str, frozenset[str], str]]:
    """Run the module against the built-in reference with ``faults``: (outcome, blamed IDs, message) per check."""
    junit = tmp_path / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(SUITES / MODULE),
        "--ics-phase",
        "1B",
        "-n",
        "0",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={junit}",
    ]
    for fault in faults:
        command += ["--ics-reference-fault", fault]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    if not junit.exists():
        pytest.fail(f"no JUnit XML (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    outcomes: dict[str, tuple[str, frozenset[str], str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(tag)
            if element is not None:
                outcome, message = name, f"{element.get('message') or ''}\n{element.text or ''}".strip()
                break
        blamed = blamed_by(message) if outcome == "failed" else frozenset()
        outcomes[case.get("name", "").split("[", 1)[0]] = (outcome, blamed, message[:1000])
    return outcomes


def test_clean_reference_passes(tmp_path: Path) -> None:
    outcomes = run_checks(tmp_path)
    assert outcomes.keys() == ALL_CHECKS, sorted(outcomes)
    assert all(o[0] == "passed" for o in outcomes.values()), outcomes


@pytest.mark.parametrize("fault", sorted(CATCHES))
def test_fault_is_caught(fault: str, tmp_path: Path) -> None:
    targets = set(FAULTS[fault].targets)
    outcomes = run_checks(tmp_path, (fault,))
    assert outcomes.keys() == ALL_CHECKS, sorted(outcomes)
    failed = {name for name, (outcome, _, _) in outcomes.items() if outcome == "failed"}
    assert failed == CATCHES[fault], outcomes
    assert not [n for n, o in outcomes.items() if o[0] == "error"], outcomes
    for name in failed:
        blamed = outcomes[name][1]
        assert blamed and blamed <= targets, f"{name} blamed {sorted(blamed)}; {fault} targets {sorted(targets)}"
