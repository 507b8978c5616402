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
