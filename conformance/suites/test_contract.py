"""Contract checks: the target against the canonical OpenAPI document (ICS-1A-API-001..004).

Schemathesis 4 generates requests from the packaged ``openapi.yaml``
(:func:`conformance._resources.spec_path`) for every operation and sends them to the
target, once with the harness's admin token and once as a plain ``practitioner``. Each
requirement is one check with one verdict, running only the Schemathesis checks that
judge it:

* ICS-1A-API-001 (no server errors): schema-valid and schema-violating requests, check
  ``not_a_server_error``.
* ICS-1A-API-002 (responses conform): schema-valid requests, checks
  ``status_code_conformance``, ``content_type_conformance``,
  ``response_schema_conformance``, ``response_headers_conformance``. A 5xx response is
  left to API-001 and not judged here.
* ICS-1A-API-003 (invalid input rejected): schema-violating requests, checks
  ``negative_data_rejection`` (a 4xx) and ``error_body_has_code`` (the harness's own: the
  4xx body is JSON whose ``code`` is one of design.md §4's codes). 5xx is left to API-001.
* ICS-1A-API-004 (``GET /about``): a scenario check, no Schemathesis; ``capabilities`` is
  validated against ``specs/schemas/capabilities.schema.json``.

A failure names the operation, the identity (admin/practitioner), what Schemathesis
found and a copy-paste ``curl`` reproduction with the Authorization header removed.

Configuration
-------------
Noisy Schemathesis checks can be waived (not run) by name, comma- or space-separated:

* environment variable ``ICS_CONTRACT_WAIVE``, e.g.
  ``ICS_CONTRACT_WAIVE="response_headers_conformance,error_body_has_code"``;
* or the ini setting ``ics_contract_waive`` (``pytest.ini`` / ``[tool.pytest.ini_options]``).

Waived checks are recorded on the check (``user_properties`` entry
``ics_contract_waived``, and in any failure message). If every check of a requirement is
waived, the check is SKIPPED saying so. The number of generated examples per operation,
mode and identity is half the loaded Hypothesis profile's ``max_examples`` (``--ics-profile``:
quick 5, certification 25); ``ICS_CONTRACT_EXAMPLES`` overrides it. Generation is seeded by
the run's seed (``--ics-seed``) through the profile, so a run is reproducible.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from conformance.checks import check, describe, expect_status, fail, prerequisite_missing, require
from conformance.world import World

API_001 = "ICS-1A-API-001"
API_002 = "ICS-1A-API-002"
API_003 = "ICS-1A-API-003"
API_004 = "ICS-1A-API-004"

SPEC_VERSION = "2008.1"
WAIVE_ENV = "ICS_CONTRACT_WAIVE"
WAIVE_INI = "ics_contract_waive"
EXAMPLES_ENV = "ICS_CONTRACT_EXAMPLES"
#: Examples per operation, mode and identity = the profile's ``max_examples`` // this.
PROFILE_DIVISOR = 2
MAX_FINDINGS = 5
_MESSAGE_LIMIT = 1800

CUSTOM_CHECK = "error_body_has_code"
#: The error codes of design.md section 4 (API-003: a refusal's ``code`` is one of them).
ERROR_CODES = frozenset({
    "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "VALIDATION_ERROR", "MALFORMED_REQUEST", "INVALID_UPN",
    "INVALID_NHS_NUMBER", "INVALID_POSTCODE", "INVALID_NAME", "DATE_IN_FUTURE", "DATE_ORDER", "UNKNOWN_PRACTITIONER",
    "DUPLICATE_LOCAL_ID", "ASSESSMENT_ALREADY_OPEN", "ASSESSMENT_NOT_OPEN", "CHILD_NOT_SEEN",
})
SERVER_ERROR_CHECKS = ("not_a_server_error",)
CONFORMANCE_CHECKS = ("status_code_conformance", "content_type_conformance", "response_schema_conformance", "response_headers_conformance")
NEGATIVE_CHECKS = ("negative_data_rejection", CUSTOM_CHECK)
KNOWN_CHECKS = frozenset(SERVER_ERROR_CHECKS + CONFORMANCE_CHECKS + NEGATIVE_CHECKS)


# -- configuration ----------------------------------------------------------------------------


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value) if v]
    if isinstance(value, Iterable):
        return [v for item in value for v in _split(item)]
    return _split(getattr(value, "value", str(value)))


def waived_checks(config: pytest.Config) -> frozenset[str]:
    """Schemathesis check names waived by ``ICS_CONTRACT_WAIVE`` or the ``ics_contract_waive`` ini setting."""
    names = _split(os.environ.get(WAIVE_ENV))
    try:
        names += _split(config.getini(WAIVE_INI))
    except (ValueError, KeyError):  # not registered as an ini option: read the raw ini value
        names += _split(getattr(config, "inicfg", {}).get(WAIVE_INI))
    unknown = sorted(set(names) - KNOWN_CHECKS)
    if unknown:
        raise pytest.UsageError(f"{WAIVE_ENV}/{WAIVE_INI}: unknown Schemathesis check name(s) {unknown}; known: {sorted(KNOWN_CHECKS)}")
    return frozenset(names)


def examples_per_operation() -> int:
    """Examples per operation, mode and identity: ``ICS_CONTRACT_EXAMPLES``, else half the profile's ``max_examples``."""
    raw = os.environ.get(EXAMPLES_ENV)
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise pytest.UsageError(f"{EXAMPLES_ENV} must be a positive integer, got {raw!r}") from None
        if value < 1:
            raise pytest.UsageError(f"{EXAMPLES_ENV} must be a positive integer, got {raw!r}")
        return value
    from hypothesis import settings

    return max(1, settings.default.max_examples // PROFILE_DIVISOR)


# -- Schemathesis plumbing --------------------------------------------------------------------


@cache
def _schema() -> Any:
    """The packaged OpenAPI document, loaded once, with an explicit (not discovered) configuration."""
    import schemathesis

    from conformance._resources import spec_path

    schema = schemathesis.openapi.from_path(spec_path("openapi.yaml"), config=schemathesis.Config())
    # The harness sends real credentials itself; generating (and negating) security headers
    # would only produce requests whose Authorization header is then overridden.
    schema.config.generation.update(with_security_parameters=False)
    return schema


def error_body_has_code(ctx: Any, response: Any, case: Any) -> bool | None:
    """Custom Schemathesis check (API-003): a 4xx answer to invalid input is JSON with a known error ``code``."""
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_negative or not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except Exception:
        raise AssertionError(f"the {response.status_code} error body is not JSON") from None
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code:
        raise AssertionError(f"the {response.status_code} error body carries no machine-readable `code`: {str(body)[:200]}")
    if code not in ERROR_CODES:
        raise AssertionError(f"the {response.status_code} error code {code!r} is not one of the codes of design.md section 4")
    return None


def _check_functions(names: Sequence[str]) -> list[Callable[..., Any]]:
    from schemathesis import checks as core_checks
    from schemathesis.specs.openapi import checks as openapi_checks

    table: dict[str, Callable[..., Any]] = {CUSTOM_CHECK: error_body_has_code}
    for name in names:
        if name not in table:
            table[name] = getattr(openapi_checks, name, None) or getattr(core_checks, name)
    return [table[n] for n in names]


@dataclass(frozen=True)
class Finding:
    """One operation on which Schemathesis found the target breaking the requirement."""

    operation: str
    identity: str
    mode: str
    message: str


@dataclass(frozen=True)
class Identity:
    name: str
    token: str


def _is_failure(exc: BaseException) -> bool:
    """True for a Schemathesis check failure (or a group of them), however Hypothesis wrapped it."""
    from schemathesis.core.failures import Failure

    if isinstance(exc, BaseExceptionGroup):
        return bool(exc.exceptions) and all(_is_failure(e) for e in exc.exceptions)
    return isinstance(exc, Failure)


def _redact(text: str, secrets: Iterable[str], builtin_reference: bool) -> str:
    """Drop credentials from a Schemathesis report (Authorization header, the tokens themselves)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[removed]")
    text = re.sub(r"""\s-H\s+(['"])(?:Authorization|Proxy-Authorization|Cookie):[^'"]*\1""", "", text, flags=re.IGNORECASE)
    try:
        from conformance.redaction import Redactor

        text = Redactor.for_target(builtin_reference=builtin_reference).text(text)
    except ImportError:  # pragma: no cover - redaction is part of the package
        pass
    return text


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    text = re.sub(r"\n{3,}", "\n\n", str(text)).strip()
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + " ..."


def run_schemathesis(
    world: World,
    *,
    modes: Sequence[str],
    check_names: Sequence[str],
    identities: Sequence[Identity],
    skip_server_errors: bool,
) -> tuple[list[Finding], int]:
    """Run ``check_names`` over every operation, mode and identity; return findings and cases sent.

    Hypothesis drives generation (inheriting the loaded profile, with this module's budget
    per operation) and shrinks each failure to a minimal request. A Schemathesis check
    failure is a finding; anything else (target unreachable, harness bug) propagates (ERROR).
    """
    import requests
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    context = world.context
    schema = _schema()
    checks = _check_functions(check_names)
    examples = examples_per_operation()
    base_url = context.target_url.rstrip("/")
    findings: list[Finding] = []
    sent = 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()  # an operation the document cannot describe is a harness error
            for mode_name in modes:
                mode = GenerationMode.POSITIVE if mode_name == "positive" else GenerationMode.NEGATIVE
                for identity in identities:
                    headers = {"Authorization": f"Bearer {identity.token}"}
                    count = [0]

                    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
                    @given(case=operation.as_strategy(generation_mode=mode))
                    def probe(case: Any) -> None:
                        count[0] += 1
                        response = case.call(base_url=base_url, session=session, headers=headers, timeout=context.timeout)
                        if skip_server_errors and response.status_code >= 500:
                            return
                        case.validate_response(response, checks=checks, headers=headers)

                    try:
                        probe()
                    except Unsatisfiable:  # nothing to negate in this operation (e.g. no parameters)
                        pass
                    except BaseException as exc:  # noqa: BLE001 - classified below, re-raised unless a check failure
                        if not _is_failure(exc):
                            raise
                        findings.append(Finding(operation.label, identity.name, mode_name,
                                                _redact(_message(exc), [i.token for i in identities], context.builtin_reference)))
                    sent += count[0]
    return findings, sent


def run_contract(world: World, request: pytest.FixtureRequest, requirement: str, *, modes: Sequence[str],
                 checks: Sequence[str], skip_server_errors: bool) -> None:
    """Run the Schemathesis checks of ``requirement`` (minus waived ones); fail it with the findings."""
    waived = waived_checks(request.config)
    active = [c for c in checks if c not in waived]
    waived_here = sorted(set(checks) & waived)
    if waived_here:
        request.node.user_properties.append(("ics_contract_waived", ",".join(waived_here)))
    if not active:
        prerequisite_missing(f"every Schemathesis check of {requirement} is waived ({', '.join(waived_here)})")
    identities = [Identity("admin", world.admin.token), Identity("practitioner", world.practitioner("practitioner").token)]
    findings, sent = run_schemathesis(world, modes=modes, check_names=active, identities=identities,
                                      skip_server_errors=skip_server_errors)
    request.node.user_properties.append(("ics_contract_cases", str(sent)))
    if findings:
        shown = findings[:MAX_FINDINGS]
        parts = [f"{f.operation} as {f.identity} ({f.mode} data):\n{f.message}" for f in shown]
        more = f"\n\n... and {len(findings) - len(shown)} more operation(s)" if len(findings) > len(shown) else ""
        note = f"\n\n(waived Schemathesis checks: {', '.join(waived_here)})" if waived_here else ""
        fail(requirement, f"Schemathesis checks {', '.join(active)} found {len(findings)} failing operation(s):\n\n"
                          + "\n\n".join(parts) + more + note)


# -- the checks ---------------------------------------------------------------------------------


@check(API_001, kind="contract")
def test_no_server_errors(world: World, request: pytest.FixtureRequest) -> None:
    """API-001: no request, valid or invalid, as admin or practitioner, gets a 5xx answer."""
    run_contract(world, request, API_001, modes=("positive", "negative"), checks=SERVER_ERROR_CHECKS, skip_server_errors=False)


@check(API_002, kind="contract")
def test_responses_conform_to_openapi(world: World, request: pytest.FixtureRequest) -> None:
    """API-002: answers to schema-valid requests have a documented status, content type, headers and body schema."""
    run_contract(world, request, API_002, modes=("positive",), checks=CONFORMANCE_CHECKS, skip_server_errors=True)


@check(API_003, kind="contract")
def test_invalid_input_rejected(world: World, request: pytest.FixtureRequest) -> None:
    """API-003: schema-violating requests are refused with a 4xx whose body carries a machine-readable ``code``."""
    run_contract(world, request, API_003, modes=("negative",), checks=NEGATIVE_CHECKS, skip_server_errors=True)


@check(API_004, kind="scenario")
def test_about_without_authentication(world: World) -> None:
    """API-004: ``GET /about`` needs no token and names supplier, product, version, spec versions (with 2008.1), capabilities."""
    response = world.client.get("/about")
    body = expect_status(response, 200, API_004, "GET /about without a token")
    content_type = response.headers.get("content-type", "")
    require(content_type.split(";")[0].strip().lower() == "application/json", API_004,
            f"GET /about answered with content type {content_type!r}, expected application/json")
    require(isinstance(body, dict), API_004, f"GET /about is not a JSON object: {describe(response)}")
    for field in ("supplier", "product", "version"):
        require(isinstance(body.get(field), str) and body[field].strip(), API_004,
                f"GET /about: {field} is {body.get(field)!r}, expected a non-empty string")
    versions = body.get("spec_versions")
    require(isinstance(versions, list) and all(isinstance(v, str) for v in versions), API_004,
            f"GET /about: spec_versions is {versions!r}, expected a list of strings")
    require(SPEC_VERSION in versions, API_004, f"GET /about: spec_versions {versions!r} does not include {SPEC_VERSION!r}")
    capabilities = body.get("capabilities")
    require(isinstance(capabilities, dict), API_004, f"GET /about: capabilities is {capabilities!r}, expected an object")
    import jsonschema

    validator = jsonschema.Draft202012Validator(_capabilities_schema())
    problems = sorted(validator.iter_errors(capabilities), key=lambda e: list(e.absolute_path))
    require(not problems, API_004, "GET /about: capabilities not valid against capabilities.schema.json: "
            + "; ".join(f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in problems[:5]))


@cache
def _capabilities_schema() -> dict[str, Any]:
    import json

    from conformance._resources import spec_path

    return json.loads(spec_path("schemas", "capabilities.schema.json").read_text(encoding="utf-8"))
