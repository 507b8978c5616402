"""Proof that the phase 1C checks tell faults apart, and blame the side that has the fault.

Each 1C fault of the reference is put on the target of a pair run of the 1C suites (two
built-in references; the default of ``--ics-phase 1C``): exactly the fault's targets FAIL,
on the target; nothing ERRORs; the peer is CERTIFIED. Each fault that bends a transfer is
also put on the peer (``--ics-peer-reference-fault``): then exactly its targets among the
requirements judged on a peer FAIL, on the peer, and the target is CERTIFIED. The clean
pair is CERTIFIED on both sides. A sample runs by default, every fault under ``-m slow``;
``tests/proof/test_fault_matrix.py`` runs every fault against the whole suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import conformance.suites
from conformance.reference import FAULTS
from conformance.reference.faults_1c import PHASE_1C_FAULTS
from conformance.spec.catalogue import load_catalogue

SUITES = Path(conformance.suites.__file__).resolve().parent
MODULES = (
    "test_transfer.py",
    "test_audit.py",
    "test_shielding.py",
    "test_seen_alone.py",
    "test_chronology.py",
    "test_chronology_stateful.py",
    "test_export_1c.py",
)
_UNUSED_PLUGINS = ("-p", "no:faker", "-p", "no:schemathesis", "-p", "no:allure_pytest", "-p", "no:anyio")
PHASE_1C = sorted(name for name, *_ in PHASE_1C_FAULTS)
CATALOGUE = load_catalogue()
#: requirements a pair run judges on the peer (its packages and its imports)
PEER_JUDGED = {r.id for r in CATALOGUE if r.area == "transfer"} | {"ICS-1C-AUD-004"}
ON_PEER = sorted(f for f in PHASE_1C if set(FAULTS[f].targets) & PEER_JUDGED)
SAMPLE = {"import-loses-aliases", "chronology-newest-first", "audit-deletable"}
PEER_SAMPLE = {"transfer-drops-restricted-flag"}


def run_1c(tmp_path: Path, *options: str) -> dict[str, Any]:
    """The 1C suites against a pair of built-in references with ``options``; the result.json."""
    report = tmp_path / "report"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(str(SUITES / m) for m in MODULES),
        "--ics-phase",
        "1C",
        "--ics-seed",
        "1",
        "--ics-report",
        str(report),
        "-p",
        "no:cacheprovider",
        "-q",
        *_UNUSED_PLUGINS,
        *options,
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    path = report / "result.json"
    if not path.exists():
        pytest.fail(f"no result.json (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(path.read_text())


def verdicts(requirements: list[dict[str, Any]], *wanted: str, phase: str = "1C") -> set[str]:
    """IDs of the phase's requirements whose verdict is one of ``wanted``."""
    return {r["id"] for r in requirements if r["verdict"] in wanted and r["phase"] == phase}


def unexplained(requirements: list[dict[str, Any]]) -> set[str]:
    """1C requirements not judged although no check of theirs failed (on a sibling) or skipped for a prerequisite."""
    return {
        r["id"]
        for r in requirements
        if r["phase"] == "1C"
        and r["verdict"] in ("NOT_RUN", "SKIPPED")
        and not any(c["verdict"] in ("FAIL", "SKIPPED") for c in r["checks"])
    }


def test_clean_pair_is_certified_on_both_sides(tmp_path: Path) -> None:
    result = run_1c(tmp_path)
    assert result["draft"] is True and result["peer"]["verdict"] == "CERTIFIED"
    assert verdicts(result["requirements"], "PASS") == {r.id for r in CATALOGUE if r.phase == "1C"}
    assert verdicts(result["peer"]["requirements"], "PASS") == PEER_JUDGED
    assert all(c.get("side") == "peer" for r in result["peer"]["requirements"] for c in r["checks"])


@pytest.mark.parametrize("fault", [pytest.param(f, marks=() if f in SAMPLE else pytest.mark.slow) for f in PHASE_1C])
def test_fault_on_target_fails_its_targets_on_the_target(fault: str, tmp_path: Path) -> None:
    result = run_1c(tmp_path, "--ics-reference-fault", fault)
    targets = set(FAULTS[fault].targets)
    failed = verdicts(result["requirements"], "FAIL")
    assert failed == targets, f"{fault}: target FAIL {sorted(failed)}, expected {sorted(targets)}"
    assert not verdicts(result["requirements"], "ERROR"), fault
    assert not unexplained(result["requirements"]), f"{fault}: unjudged without reason"
    peer = result["peer"]
    assert peer["verdict"] == "CERTIFIED", f"{fault} on the target blamed the peer: {peer['counts']}"


@pytest.mark.parametrize(
    "fault", [pytest.param(f, marks=() if f in PEER_SAMPLE else pytest.mark.slow) for f in ON_PEER]
)
def test_fault_on_peer_fails_its_targets_on_the_peer(fault: str, tmp_path: Path) -> None:
    result = run_1c(tmp_path, "--ics-peer-reference-fault", fault)
    expected = set(FAULTS[fault].targets) & PEER_JUDGED
    peer = result["peer"]["requirements"]
    assert verdicts(peer, "FAIL") == expected, f"{fault}: peer FAIL {sorted(verdicts(peer, 'FAIL'))}"
    assert not verdicts(peer, "ERROR") and not unexplained(peer), fault
    assert verdicts(result["requirements"], "PASS") == {r.id for r in CATALOGUE if r.phase == "1C"}, (
        f"{fault} on the peer blamed the target: {result['counts']}"
    )
    assert result["peer"]["verdict"] == "NOT_CERTIFIED"
    failing = [c for r in peer for c in r["checks"] if c["verdict"] == "FAIL"]
    assert failing and all(c["side"] == "peer" and "peer (Council B)" in (c["message"] or "") for c in failing)
