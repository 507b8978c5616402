"""Proof that the verdicts are true: every check can fail, and the clean reference passes.

For each injectable fault, the whole phase 1B suite runs against the built-in reference
with that fault, through ``ics-conformance certify`` exactly as a user runs it, and the
run must be NOT CERTIFIED with the fault's targeted requirements FAIL, nothing else FAIL
(except the fault's declared ``collateral``: export requirements broken by bad records the
fault let a check create, when the export is taken after them) and nothing ERROR. A
requirement may go unjudged only for a stated reason: a check covering it failed on a
sibling requirement first, or skipped for a missing prerequisite. The clean reference must
be CERTIFIED whatever the seed.

A phase 1C fault runs in a 1C pair run (two built-in references, the fault on the target),
whose peer must stay CERTIFIED. The default test run covers three faults (an API search fault, a gating fault and an
export fault) and one seed; the whole matrix and twenty seeds are marked ``slow``
(``pytest -m slow``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.reference import FAULTS
from conformance.reference.faults import proving_phase
from conformance.spec.catalogue import load_catalogue

CATALOGUE = load_catalogue()
SAMPLED = {"search-accent-sensitive", "gating-off", "export-drops-aliases"}
SEEDS = range(1, 21)
FAST_SEEDS = {1}


def _certify(tmp_path: Path, *args: str, phase: str = "1B") -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if k != "ICS_ADMIN_TOKEN"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "certify",
            "--phase",
            phase,
            "--profile",
            "quick",
            "-n",
            "2",
            "--output",
            str(tmp_path),
            "--no-bundle",
            "--quiet",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    results = sorted(tmp_path.glob("*/result.json"))
    assert results, f"no result.json written (exit {proc.returncode})\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.returncode, json.loads(results[-1].read_text())


def _verdicts(result: dict, *wanted: str) -> set[str]:
    return {r["id"] for r in result["requirements"] if r["verdict"] in wanted}


def unjudged_without_reason(result: dict) -> list[str]:
    """NOT_RUN / SKIPPED requirements none of whose checks failed (on a sibling) or skipped for a prerequisite."""
    return sorted(
        r["id"]
        for r in result["requirements"]
        if r["verdict"] in ("NOT_RUN", "SKIPPED") and not any(c["verdict"] in ("FAIL", "SKIPPED") for c in r["checks"])
    )


@pytest.mark.parametrize(
    "fault",
    [pytest.param(name, marks=() if name in SAMPLED else pytest.mark.slow) for name in sorted(FAULTS)],
)
def test_fault_fails_exactly_its_targets(fault: str, tmp_path: Path) -> None:
    code, result = _certify(tmp_path, "--reference-fault", fault, "--seed", "1", phase=proving_phase(fault))
    targets = set(FAULTS[fault].targets)
    allowed = targets | set(FAULTS[fault].collateral)
    failed = _verdicts(result, "FAIL")
    errors = _verdicts(result, "ERROR")
    assert not errors, f"{fault}: requirements ERROR: {sorted(errors)}"
    assert targets <= failed <= allowed, (
        f"{fault}: FAIL {sorted(failed)} but the fault targets {sorted(targets)} (may also {sorted(allowed - targets)})"
    )
    unexplained = unjudged_without_reason(result)
    assert not unexplained, f"{fault}: requirements not judged and no check says why: {unexplained}"
    if "peer" in result:  # a 1C pair run: the fault is on the target, the peer is clean
        assert result["peer"]["verdict"] == "CERTIFIED", f"{fault}: the clean peer was blamed"
    must = any(CATALOGUE.get(r).level == "MUST" for r in failed)  # a SHOULD target alone leaves it CERTIFIED
    assert result["verdict"] == ("NOT_CERTIFIED" if must else "CERTIFIED")
    assert code == (1 if must else 0)


@pytest.mark.parametrize(
    "seed",
    [pytest.param(seed, marks=() if seed in FAST_SEEDS else pytest.mark.slow) for seed in SEEDS],
)
def test_clean_reference_is_certified(seed: int, tmp_path: Path) -> None:
    code, result = _certify(tmp_path, "--seed", str(seed))
    not_passed = {
        r["id"]: r["verdict"] for r in result["requirements"] if r["verdict"] not in ("PASS", "NOT_APPLICABLE")
    }
    assert not not_passed, f"seed {seed}: {not_passed}"
    assert result["verdict"] == "CERTIFIED" and code == 0
    assert result["seed"] == seed


def test_every_fault_targets_known_requirements() -> None:
    for fault in FAULTS.values():
        assert fault.targets, fault.name
        for rid in (*fault.targets, *fault.collateral):
            assert rid in CATALOGUE, f"{fault.name} names unknown {rid}"
        assert not set(fault.targets) & set(fault.collateral), fault.name
        # collateral is only ever the export channel catching what the API let in
        assert all(CATALOGUE.get(rid).area == "export" for rid in fault.collateral), fault.name


def test_every_area_has_two_faults() -> None:
    areas: dict[str, int] = {}
    for fault in FAULTS.values():
        areas[fault.area] = areas.get(fault.area, 0) + 1
    assert all(n >= 2 for n in areas.values()), areas


def test_every_api_must_of_1b_is_targeted_by_a_fault() -> None:
    targeted = {rid for fault in FAULTS.values() for rid in fault.targets}
    untargeted = [r.id for r in CATALOGUE.in_scope("1B") if r.level == "MUST" and r.id not in targeted]
    assert not untargeted, f"no fault proves these checks can fail: {untargeted}"


def test_every_must_of_1c_is_targeted_by_a_fault() -> None:
    targeted = {rid for fault in FAULTS.values() for rid in fault.targets}
    untargeted = [r.id for r in CATALOGUE.in_scope("1C") if r.level == "MUST" and r.id not in targeted]
    assert not untargeted, f"no fault proves these checks can fail: {untargeted}"
