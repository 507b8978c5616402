"""Schemathesis over the reference with its own OpenAPI document: no 5xx, no response off its schema.

Positive (schema-valid) and negative (schema-violating) requests per operation, as the
admin, with a small example budget so the whole run stays in seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402  (after importorskip)
from schemathesis import GenerationMode  # noqa: E402  (after importorskip)
from schemathesis import checks as core_checks  # noqa: E402  (after importorskip)
from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402  (after importorskip)

from conformance.spec.resources import spec_path  # noqa: E402  (after importorskip)

#: examples per operation and mode; ICS_REFERENCE_CONTRACT_EXAMPLES scales both up for a deeper local run
_SCALE = int(os.environ.get("ICS_REFERENCE_CONTRACT_EXAMPLES", "0") or 0)
EXAMPLES = {"positive": _SCALE or 5, "negative": _SCALE or 3}
CHECKS = [
    core_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]
NEGATIVE_CHECKS = [*CHECKS, openapi_checks.negative_data_rejection]

schemathesis.serializer.alias("application/zip", "application/octet-stream")  # transfer packages (phase 1C)
SCHEMA = schemathesis.openapi.from_path(spec_path("openapi.yaml"), config=schemathesis.Config())
SCHEMA.config.generation.update(with_security_parameters=False)
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}


@pytest.fixture(scope="module")
def session(service: Any) -> Iterator[Any]:
    import requests

    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {service.admin_token}"
        yield s


def test_document_covers_every_route(service: Any) -> None:
    routes = {(m, r.path) for r in service.app.routes for m in r.methods if m != "HEAD"}
    documented = {(op.method.upper(), op.path) for op in OPERATIONS.values()}
    assert routes == documented


def _has_inputs(operation: Any) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or operation.path_parameters or definition.get("requestBody"))


#: (operation, mode): negative cases only where the operation takes some input to violate
CASES = [
    (label, mode)
    for label in sorted(OPERATIONS)
    for mode in ("positive", "negative")
    if mode == "positive" or _has_inputs(OPERATIONS[label])
]


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_operation_conforms(label: str, mode: str, service: Any, session: Any) -> None:
    operation = OPERATIONS[label]
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    checks = CHECKS if mode == "positive" else NEGATIVE_CHECKS

    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=not _SCALE,
    )
    @given(case=operation.as_strategy(generation_mode=generation))
    def probe(case: Any) -> None:
        response = case.call(base_url=service.url, session=session, timeout=10)
        case.validate_response(response, checks=checks)

    try:
        probe()
    except Exception as exc:
        from hypothesis.errors import Unsatisfiable

        if isinstance(exc, Unsatisfiable):
            pytest.skip(f"no {mode} example can be generated for {label}")
        raise
