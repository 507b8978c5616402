"""Proof that the contract checks (ICS-1A-API-001..004) tell faults apart.

Each contract fault of the reference service is run against ``test_contract.py`` in a
subprocess: exactly the checks expected to catch it FAIL, blaming only the requirements
the fault registry names; the others pass. The clean reference passes all four. A waived
Schemathesis check is recorded, and waiving every check of a requirement skips it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest


def _shared() -> object:
    """The subprocess runner and assertions of ``test_gating_fault_proofs.py`` (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "_ics_gating_fault_proofs", Path(__file__).with_name("test_gating_fault_proofs.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


_proofs = _shared()
run_checks = _proofs.run_checks  # type: ignore[attr-defined]
fault_targets = _proofs.fault_targets  # type: ignore[attr-defined]
assert_fault_caught = _proofs.assert_fault_caught  # type: ignore[attr-defined]

MODULES = ("test_contract.py",)
SERVER_ERRORS = "test_no_server_errors"
CONFORMS = "test_responses_conform_to_openapi"
REJECTS = "test_invalid_input_rejected"
ABOUT = "test_about_without_authentication"

CATCHES: dict[str, set[str]] = {
    "server-error-on-unknown-child": {SERVER_ERRORS},
    "about-schema-violation": {CONFORMS, ABOUT},
    "accepts-invalid-input": {REJECTS},
}


def test_clean_reference_passes_every_contract_check(tmp_path: Path) -> None:
    outcomes = run_checks(tmp_path, MODULES)
    assert {SERVER_ERRORS, CONFORMS, REJECTS, ABOUT} <= outcomes.keys(), sorted(outcomes)
    bad = {n: o for n, o in outcomes.items() if o.outcome != "passed"}
    assert not bad, f"not passing on the clean reference: {bad}"


@pytest.mark.parametrize("fault", sorted(CATCHES))
def test_contract_fault_is_caught(fault: str, tmp_path: Path) -> None:
    assert_fault_caught(run_checks(tmp_path, MODULES, (fault,)), CATCHES[fault], fault_targets(fault))


def test_waived_checks_are_skipped_or_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With API-003's checks waived the fault it targets is no longer failed, and the check says why."""
    monkeypatch.setenv("ICS_CONTRACT_WAIVE", "negative_data_rejection error_body_has_code response_headers_conformance")
    monkeypatch.setenv("ICS_CONTRACT_EXAMPLES", "1")
    outcomes = run_checks(tmp_path, MODULES, ("accepts-invalid-input",))
    assert os.environ["ICS_CONTRACT_WAIVE"]
    assert outcomes[REJECTS].outcome == "skipped", outcomes[REJECTS]
    assert "waived" in outcomes[REJECTS].message
    assert outcomes[CONFORMS].outcome == "passed", outcomes[CONFORMS]
