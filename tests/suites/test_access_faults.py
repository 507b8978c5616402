"""Proof that the access checks (ICS-1B-ACC-001..003) tell faults apart.

Each access fault of the reference is injected and ``test_access.py`` is run against it:
exactly the catching check FAILs, blaming only the registry's targets; the others pass,
and the clean reference passes all three.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_runner():
    name = "_ics_search_fault_runner"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_search_faults.py"))
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


runner = _load_runner()

MODULES = ("test_access.py",)
AUTH = "test_authentication_required"
RIGHTS = "test_rights_enforced"
AUDIT = "test_record_view_audited"
# the checks of specs/test-design/access.yaml's further cases
AUTH_ALL = "test_authentication_required_on_every_endpoint"
RIGHTS_ALL = "test_rights_enforced_for_every_role_and_resource"
AUDIT_ALL = "test_every_view_by_every_role_audited"

CATCHES: dict[str, set[str]] = {
    "auth-ignored": {AUTH, AUTH_ALL},
    "auth-accepts-any-token": {AUTH, AUTH_ALL},
    "rights-ignored": {RIGHTS, RIGHTS_ALL},
    "audit-misses-views": {AUDIT, AUDIT_ALL},
    # one case of specs/test-design/access.yaml each
    "auth-missing-on-referrals": {AUTH_ALL},
    "rights-assessments-unchecked": {RIGHTS_ALL},
    "rights-managers-create-practitioners": {RIGHTS_ALL},
    "rights-allocation-denied-to-practitioners-only": {RIGHTS_ALL},
    "audit-skips-privileged-views": {AUDIT_ALL},
    "audit-views-deduplicated": {AUDIT_ALL},
}


def test_clean_reference_passes_every_access_check(tmp_path: Path) -> None:
    runner.assert_clean(runner.run_checks(tmp_path, MODULES), {AUTH, RIGHTS, AUDIT, AUTH_ALL, RIGHTS_ALL, AUDIT_ALL})


@pytest.mark.parametrize("fault", sorted(CATCHES))
def test_access_fault_is_caught(fault: str, tmp_path: Path) -> None:
    runner.assert_fault_caught(
        runner.run_checks(tmp_path, MODULES, (fault,)), CATCHES[fault], runner.fault_targets(fault)
    )
