"""The Schemathesis CLI hooks (``SCHEMATHESIS_HOOKS=conformance.spec.schemathesis_hooks``) drop
exactly the ST202 that ``x-ics-at-least-one-of`` explains, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conformance.reference import serve
from conformance.spec.openapi_rules import AT_LEAST_ONE_OF, missing_criteria
from conformance.spec.resources import openapi_document, spec_path

SEARCH = openapi_document()["paths"]["/children"]["get"]


def test_the_document_states_the_search_rule_as_an_extension() -> None:
    assert SEARCH[AT_LEAST_ONE_OF] == [
        "given_name",
        "family_name",
        "date_of_birth",
        "gender",
        "postcode",
        "upn",
        "nhs_number",
        "local_id",
    ]
    names = {p["name"] for p in SEARCH["parameters"] if "name" in p}
    assert set(SEARCH[AT_LEAST_ONE_OF]) <= names  # every listed criterion is a real query parameter


@pytest.mark.parametrize(
    ("query", "missing"),
    [
        (None, True),
        ({}, True),
        ({"page": 2, "page_size": 20, "include_deceased": True}, True),
        ({"given_name": ""}, True),
        ({"given_name": "Zo"}, False),
        ({"gender": "male"}, False),
        ({"local_id": "0"}, False),
    ],
)
def test_missing_criteria(query: dict[str, Any] | None, missing: bool) -> None:
    assert bool(missing_criteria(SEARCH, query)) is missing
    assert missing_criteria({"parameters": []}, None) == []  # an operation without the rule
    assert missing_criteria(None, None) == []


CREATE = openapi_document()["paths"]["/children"]["post"]


def _hook_keeps(
    failure: str, query: dict[str, Any] | None, *, operation: Any = SEARCH, status: int = 422, code: Any = None
) -> bool:
    from conformance.spec.schemathesis_hooks import filter_failure

    case = SimpleNamespace(operation=SimpleNamespace(definition=SimpleNamespace(raw=operation)), query=query)
    response = SimpleNamespace(status_code=status, json=lambda: {"code": code, "message": "refused"})
    return filter_failure(None, SimpleNamespace(code=failure), case, response)


def test_the_hook_drops_only_st202_the_document_explains() -> None:
    from schemathesis.openapi.checks import RejectedPositiveData

    assert RejectedPositiveData.code == "ST202"  # the failure the hook names is Schemathesis' own
    assert not _hook_keeps("ST202", {"page_size": 20}, code="VALIDATION_ERROR")  # no criterion
    assert _hook_keeps("ST202", {"gender": "male"}, code="VALIDATION_ERROR")  # a criterion refused
    assert _hook_keeps("ST201", {"page_size": 20})  # any other failure stays, criterion or not
    assert not _hook_keeps("ST202", {"upn": "A1"}, code="INVALID_UPN")  # a prose rule's own code
    assert _hook_keeps("ST202", {"given_name": "Zo"}, code="INVALID_NAME")  # the Name pattern admits it
    assert not _hook_keeps("ST202", None, operation=CREATE, code="VALIDATION_ERROR")  # a body's cross-field rule
    assert _hook_keeps("ST202", None, operation=CREATE, status=500, code="INTERNAL")


def _st_run(
    url: str, token: str, cwd: Path, *, hooks: bool, search_only: bool = True
) -> subprocess.CompletedProcess[str]:
    """A real ``st run``, in ``cwd`` (Schemathesis keeps a crash cache in ``.schemathesis/`` there)."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "SCHEMATHESIS_HOOKS"}
    if hooks:
        env["SCHEMATHESIS_HOOKS"] = "conformance.spec.schemathesis_hooks"
    st = Path(sys.executable).with_name("st")
    command = [str(st), "run", str(spec_path("openapi.yaml")), "--url", url]
    command += ["-H", f"Authorization: Bearer {token}", "--max-examples", "30", "--seed", "1", "--no-color"]
    if search_only:
        command += ["--include-operation-id", "searchChildren", "-c", "positive_data_acceptance"]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_schemathesis_cli_on_the_reference(tmp_path: Path) -> None:
    """A real ``st run``: without the hooks the correct reference gets ST202 for a search without a
    criterion; with them the whole document passes, all checks on; a reference refusing a valid
    search (gender alone) still fails."""
    with serve() as service:
        bare = _st_run(service.url, service.admin_token, tmp_path / "bare", hooks=False)
        hooked = _st_run(service.url, service.admin_token, tmp_path / "hooked", hooks=True, search_only=False)
    assert bare.returncode != 0 and "ST202" in bare.stdout, bare.stdout[-3000:]
    assert hooked.returncode == 0, hooked.stdout[-3000:] + hooked.stderr[-2000:]
    operations = sum(
        1
        for item in openapi_document()["paths"].values()
        for method in item
        if method in ("get", "post", "patch", "put", "delete")
    )
    assert "dropped by `filter_failure`" in hooked.stdout and f"Tested: {operations}" in hooked.stdout
    with serve(faults=["search-gender-alone-refused"]) as faulty:
        caught = _st_run(faulty.url, faulty.admin_token, tmp_path / "caught", hooks=True)
    assert caught.returncode != 0 and "ST202" in caught.stdout, caught.stdout[-3000:]
    assert "gender=" in caught.stdout  # the refusal kept is the valid gender-only search
