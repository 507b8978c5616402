"""An adapter that raises makes the check ERROR (never PASS, never the supplier's FAIL), through the plugin."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest
from plugin_support import checks_by_name, dump

from conformance.adapters.registry import ENTRY_POINT_GROUP

CHECKS = """
from conformance.checking.checks import check

@check("ICS-1B-SRCH-001")
def test_through_the_adapter(world):
    assert world.client.get("/about").status_code == 200

@check("ICS-1B-SRCH-002")
def test_the_adapter_raises(world):
    world.client.get("/echo-auth")
"""


def _register(monkeypatch: pytest.MonkeyPatch, **targets: str) -> None:
    entries = [metadata.EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in targets.items()]
    monkeypatch.setattr(
        "conformance.adapters.registry.metadata.entry_points",
        lambda group: [e for e in entries if group == ENTRY_POINT_GROUP],
    )


def test_an_adapter_raising_is_an_error_of_that_check(
    run_checks: Any, stub_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, careless="adapter_samples:Careless")
    run, result = run_checks(CHECKS, "--ics-adapter", "careless", "-n", "0", target=stub_url)
    assert result is not None, run.stdout.str()
    checks = checks_by_name(result)
    assert checks["test_through_the_adapter"]["verdict"] == "PASS", dump(result)
    raised = checks["test_the_adapter_raises"]
    assert raised["verdict"] == "ERROR" and raised.get("failed_requirements", []) == [], dump(result)
    assert "AdapterError: adapter careless could not translate the response of GET " in raised["message"]
    assert "AssertionError: the adapter's own assertion" in raised["message"]  # wrapped: not a FAIL
    assert result["verdict"] == "INCONCLUSIVE"
    assert result["adapter"]["name"] == "careless" and result["adapter"]["version"] == "0.1"
    assert "tested through adapter careless version 0.1" in run.stdout.str()


def test_an_adapter_failing_the_preflight_is_inconclusive(
    run_checks: Any, stub_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, broken="adapter_samples:Broken")
    run, result = run_checks(CHECKS, "--ics-adapter", "broken", "-n", "0", target=stub_url)
    assert run.ret == 3 and result is not None, run.stdout.str()
    assert result["verdict"] == "INCONCLUSIVE" and result["adapter"]["name"] == "broken"
    assert "adapter broken could not translate the request of GET /about" in " ".join(result["errors"])


def test_an_unknown_adapter_is_a_usage_error(run_checks: Any, stub_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, careless="adapter_samples:Careless")
    run, result = run_checks(CHECKS, "--ics-adapter", "acme", "-n", "0", target=stub_url)
    assert run.ret == pytest.ExitCode.USAGE_ERROR and result is None
    assert "unknown adapter 'acme': installed adapters: careless" in run.stderr.str()
