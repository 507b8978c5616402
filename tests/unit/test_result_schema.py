"""The published result.json schema: valid itself, and it refuses what it should."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema

from conformance.results.result import CheckResult, build_result, result_problems
from conformance.results.verdicts import Verdict
from conformance.spec.resources import spec_path


def _result() -> dict:
    check = CheckResult(
        id="t::x", requirements=("ICS-1B-SRCH-001",), kind="scenario", verdict=Verdict.FAIL, message="no match"
    )
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    return build_result(
        phase="1B",
        channels=["api"],
        checks=[check],
        target={"url": "http://127.0.0.1:1", "builtin_reference": True, "faults": [], "about": {}, "export": None},
        capabilities={},
        profile="quick",
        seed=1,
        run_id="r1",
        started_at=now,
        finished_at=now,
        command="pytest",
        errors=[],
    )


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(spec_path("schemas", "result.schema.json").read_text()))


def test_built_result_conforms_and_damage_is_named() -> None:
    result = _result()
    assert result_problems(result) == []
    assert result["verdict"] == "NOT_CERTIFIED"
    result["verdict"] = "PASSED"
    index = next(i for i, r in enumerate(result["requirements"]) if r["checks"])
    result["requirements"][index]["checks"][0]["requirements"] = ["SRCH-1"]
    del result["seed"]
    problems = result_problems(result)
    assert any(p.startswith("/verdict:") for p in problems), problems
    assert any(p.startswith(f"/requirements/{index}/checks/0/requirements/0:") for p in problems), problems
    assert any("'seed' is a required property" in p for p in problems), problems


def test_trust_fields_recorded_and_optional() -> None:
    """capability_overrides and council (design §9): recorded by new results, absent in old ones."""
    result = _result()
    assert result["capability_overrides"] is None and "council" not in result  # about {}: nothing declared
    result["council"] = "Leeds"
    assert result_problems(result) == []
    old = dict(result)
    del old["capability_overrides"], old["council"]
    assert result_problems(old) == []  # written before the trust model
    result["capability_overrides"] = [{"capability": "audit", "declared": True, "used": False}]
    assert any("'weakens' is a required property" in p for p in result_problems(result))


def test_capability_overrides_follow_about() -> None:
    check = CheckResult(id="t::x", requirements=("ICS-1B-SRCH-001",), kind="scenario", verdict=Verdict.PASS)
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    about = {"capabilities": {"audit": True, "notification_latency_seconds": 2}}
    result = build_result(
        phase="1B",
        channels=["api"],
        checks=[check],
        target={"url": None, "builtin_reference": True, "faults": [], "about": about, "export": None},
        capabilities={"audit": False, "notification_latency_seconds": 30, "unborn_children": True},
        started_at=now,
        finished_at=now,
        command="pytest",
    )
    assert result["capability_overrides"] == [
        {"capability": "audit", "declared": True, "used": False, "weakens": True},
        {"capability": "notification_latency_seconds", "declared": 2, "used": 30, "weakens": True},
        {"capability": "unborn_children", "declared": False, "used": True, "weakens": False},
    ]
    assert result_problems(result) == []
    export_only = build_result(
        phase="1B",
        channels=["export"],
        checks=[],
        target={"url": None, "builtin_reference": False, "faults": [], "about": None, "export": "x"},
        capabilities={"bulk_export": True},
        started_at=now,
        finished_at=now,
        command="pytest",
    )
    assert export_only["capability_overrides"] is None
