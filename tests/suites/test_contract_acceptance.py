"""The contract checks' ``positive_data_acceptance`` (API-002) knows the document's x-ics rules and prose rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("schemathesis")

from schemathesis import GenerationMode

from conformance.spec.openapi_rules import missing_criteria
from conformance.suites import test_contract as contract


def _case(label: str, **parts: Any) -> Any:
    schema = contract._schema()
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().label == label)
    from hypothesis import HealthCheck, given, settings

    found: list[Any] = []

    @settings(max_examples=1, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def one(case: Any) -> None:
        found.append(case)

    one()
    case = found[0]
    for key, value in parts.items():
        setattr(case, key, value)
    return case


def _response(case: Any, status: int, body: dict[str, Any]) -> Any:
    import requests

    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = "http://127.0.0.1:9/" + case.formatted_path.lstrip("/")
    response.request = requests.Request(case.method, response.url).prepare()
    return response


def _judge(case: Any, status: int, code: str) -> bool:
    """True when the acceptance check passes the answer, False when it is a finding."""
    response = _response(case, status, {"code": code, "message": "refused"})
    try:
        case.validate_response(response, checks=contract._check_functions([contract.ACCEPTANCE_CHECK]))
    except BaseException as exc:
        assert contract._is_failure(exc), exc
        return False
    return True


def test_acceptance_is_part_of_api_002_and_waivable() -> None:
    assert contract.ACCEPTANCE_CHECK in contract.CONFORMANCE_CHECKS
    assert contract.ACCEPTANCE_CHECK in contract.KNOWN_CHECKS


def test_search_without_a_criterion_is_not_judged_by_acceptance() -> None:
    case = _case("GET /children", query={"page": 1})
    assert missing_criteria(case.operation.definition.raw, case.query)
    assert _judge(case, 422, "VALIDATION_ERROR")


def test_search_with_a_criterion_refused_is_a_finding() -> None:
    case = _case("GET /children", query={"given_name": "Climbi\u00e9"})
    assert not missing_criteria(case.operation.definition.raw, case.query)
    assert not _judge(case, 422, "VALIDATION_ERROR")
    assert _judge(case, 200, "") is True


def test_a_legal_name_refused_is_a_finding_but_prose_rules_are_not() -> None:
    body = {"given_name": "Zo\u00eb", "family_name": "O\u2019Brien", "gender": "female", "date_of_birth": "2001-05-14"}
    case = _case("POST /children", body=body)
    assert not _judge(case, 422, "INVALID_NAME")
    assert _judge(case, 422, "INVALID_UPN")
    assert _judge(case, 422, "DATE_IN_FUTURE")
    assert _judge(case, 422, "VALIDATION_ERROR")  # cross-field body rules are prose
