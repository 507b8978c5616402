"""Contract checks: the target against the canonical OpenAPI document (ICS-1A-API-001..004).

Schemathesis 4 generates requests from the packaged ``openapi.yaml``
(:func:`conformance.spec.resources.spec_path`) for every operation and sends them to the
target. Schema-valid requests are fuzzed by Hypothesis (shrunk on failure), once with the
harness's admin token and once as a plain ``practitioner``; schema-violating requests are
Schemathesis' deterministic coverage-phase cases (one violation each), sent as admin and
overlaid on a request the target would otherwise accept (:class:`Baselines`). Each
requirement is one check with one verdict, running only the Schemathesis checks that
judge it:

* ICS-1A-API-001 (no server errors): schema-valid and schema-violating requests, check
  ``not_a_server_error``.
* ICS-1A-API-002 (responses conform): schema-valid requests, checks
  ``status_code_conformance``, ``content_type_conformance``,
  ``response_schema_conformance``, ``response_headers_conformance`` and
  ``positive_data_acceptance`` (a schema-valid request is not refused as invalid; see
  :func:`positive_data_acceptance`). A 5xx response is left to API-001 and not judged here.
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
waived, the check is SKIPPED saying so. The number of generated examples per operation
and identity (schema-valid fuzzing) is half the loaded Hypothesis profile's ``max_examples`` (``--ics-profile``:
quick 5, certification 25); ``ICS_CONTRACT_EXAMPLES`` overrides it. Schema-violating
requests: every coverage-phase case under ``certification``; under ``quick`` one case per
kind of violation and place (e.g. one wrong type per property, one undocumented method). Generation is seeded by
the run's seed (``--ics-seed``) through the profile, so a run is reproducible.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from conformance.checking.checks import (
    check,
    describe,
    error_code,
    expect_status,
    fail,
    prerequisite_missing,
    require,
)
from conformance.checking.search_oracle import name_token
from conformance.checking.world import World
from conformance.spec import openapi_rules
from conformance.spec.error_codes import error_codes

API_001 = "ICS-1A-API-001"
API_002 = "ICS-1A-API-002"
API_003 = "ICS-1A-API-003"
API_004 = "ICS-1A-API-004"

SPEC_VERSION = "2008.1"
#: ``/about`` declares the spec line "2008.1" or one of its patch levels (API-004).
SPEC_VERSION_DECLARED = re.compile(r"2008\.1(\.[0-9]+)?")
WAIVE_ENV = "ICS_CONTRACT_WAIVE"
WAIVE_INI = "ics_contract_waive"
EXAMPLES_ENV = "ICS_CONTRACT_EXAMPLES"
#: Examples per operation, mode and identity = the profile's ``max_examples`` // this.
PROFILE_DIVISOR = 2
MAX_FINDINGS = 5
#: Most operations one contract check fuzzes at once (each on a thread of its own).
CONTRACT_THREADS = 4
_MESSAGE_LIMIT = 1800

CUSTOM_CHECK = "error_body_has_code"
SERVER_ERROR_CHECKS = ("not_a_server_error",)
ACCEPTANCE_CHECK = "positive_data_acceptance"
CONFORMANCE_CHECKS = (
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    ACCEPTANCE_CHECK,
)
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
    names = _split(os.environ.get(WAIVE_ENV)) + _split(config.getini(WAIVE_INI))  # ini registered by the plugin
    unknown = sorted(set(names) - KNOWN_CHECKS)
    if unknown:
        raise pytest.UsageError(
            f"{WAIVE_ENV}/{WAIVE_INI}: unknown Schemathesis check name(s) {unknown}; known: {sorted(KNOWN_CHECKS)}"
        )
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

    return max(1, settings().max_examples // PROFILE_DIVISOR)


# -- Schemathesis plumbing --------------------------------------------------------------------


_SCHEMA_LOCK = threading.Lock()


def warm_up() -> None:
    """Import Schemathesis and load the document before the checks start on several threads."""
    _schema()


def _schema() -> Any:
    """The packaged OpenAPI document, loaded once (whichever thread asks first), with an explicit configuration."""
    with _SCHEMA_LOCK:  # the contract checks may start together on several threads: one import, one load
        return _load_schema()


@cache
def _load_schema() -> Any:
    import schemathesis

    from conformance.spec.resources import spec_path

    schemathesis.serializer.alias("application/zip", "application/octet-stream")  # transfer packages (phase 1C)
    schemathesis.openapi.format(NAME_FORMAT, name_strategy())
    schema = schemathesis.openapi.from_path(spec_path("openapi.yaml"), config=schemathesis.Config())
    # The harness sends real credentials itself; generating (and negating) security headers
    # would only produce requests whose Authorization header is then overridden.
    schema.config.generation.update(with_security_parameters=False)
    return schema


#: The ``format`` of the OpenAPI ``Name`` schema: names are drawn by :func:`name_strategy`.
NAME_FORMAT = "ics-name"
_NAME_PUNCTUATION = "- '\u2019\u2018."


@cache
def _name_pattern() -> re.Pattern[str]:
    """The ``Name`` schema's ``pattern``, compiled once."""
    from conformance.spec.resources import openapi_document

    document = openapi_document()
    return re.compile(document["components"]["schemas"]["Name"]["pattern"])


def name_strategy() -> Any:
    """Names the ``Name`` pattern admits, drawn from letters, combining marks and the punctuation it allows.

    Schemathesis would otherwise build a generator from the pattern itself (19 KB of Unicode
    ranges), which cost more than every request it sends. Drawing from the same character
    classes and keeping what the pattern matches changes nothing about which names are legal:
    Schemathesis filters the values through the schema's ``pattern`` and lengths as well.
    """
    from hypothesis import strategies as st

    alphabet = st.one_of(st.characters(categories=("L", "M")), st.sampled_from(_NAME_PUNCTUATION))
    return st.text(alphabet=alphabet, min_size=1, max_size=100).filter(lambda text: bool(_name_pattern().match(text)))


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
        raise AssertionError(
            f"the {response.status_code} error body carries no machine-readable `code`: {str(body)[:200]}"
        )
    if code not in error_codes():
        raise AssertionError(
            f"the {response.status_code} error code {code!r} is not one of the codes of design.md section 4 (the Error.code enum of openapi.yaml)"
        )
    return None


def positive_data_acceptance(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis' ``positive_data_acceptance`` (API-002), knowing what the document states only in prose.

    A schema-valid request must not be refused as invalid, unless
    :func:`conformance.spec.openapi_rules.response_explained` explains the refusal (no
    ``x-ics-at-least-one-of`` criterion, a prose rule's own error code, a body's
    ``VALIDATION_ERROR``). Judged: every other refusal, e.g. ``INVALID_NAME`` for a name
    the ``Name`` pattern admits, or a search with a criterion refused with ``VALIDATION_ERROR``.
    """
    from schemathesis.specs.openapi import checks as openapi_checks

    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return None
    raw = getattr(getattr(case.operation, "definition", None), "raw", None)
    if openapi_rules.response_explained(raw, case.query, response) is not None:
        return None
    result: bool | None = openapi_checks.positive_data_acceptance(ctx, response, case)
    return result


def _check_functions(names: Sequence[str]) -> list[Callable[..., Any]]:
    from schemathesis import checks as core_checks
    from schemathesis.specs.openapi import checks as openapi_checks

    table: dict[str, Callable[..., Any]] = {
        CUSTOM_CHECK: error_body_has_code,
        ACCEPTANCE_CHECK: positive_data_acceptance,
    }
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
    """Drop credentials from a Schemathesis report (Authorization header, the tokens themselves, every
    token seen in a response) and, for an external target, redact it like evidence (allow-list)."""
    from conformance.certificate.redaction import Redactor, active, scrub_secrets

    text = scrub_secrets(text, [s for s in secrets if s])
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[removed]")
    text = re.sub(
        r"""\s-H\s+(['"])(?:Authorization|Proxy-Authorization|Cookie):[^'"]*\1""", "", text, flags=re.IGNORECASE
    )
    redactor = active()
    if redactor.hashes_personal_data == (not builtin_reference):
        return redactor.text(text)
    return Redactor.for_target(builtin_reference=builtin_reference).text(text)


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    text = re.sub(r"\n{3,}", "\n\n", str(text)).strip()
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + " ..."


class Baselines:
    """Semantically valid requests per operation, made from records the harness created.

    Schemathesis' coverage phase changes one thing per negative case but fills the rest
    with schema-valid placeholders (``"0"`` names, both dates of birth, a made-up id) that
    the target refuses for reasons the schema cannot express. Overlaying the one violation
    on a request the target would accept means a 4xx can only be about the violation, so
    "invalid input accepted" is observable (API-003) and deeper code is reached (API-001).
    Schemathesis re-validates the repaired case, so it stays negative or is not judged so.
    """

    def __init__(self, world: World) -> None:
        import threading

        self.world = world
        self._child: str | None = None
        self._assessment: str | None = None
        self._lock = threading.RLock()  # operations run on several threads share the records

    def _new_child(self) -> str:
        body = self.world.child(family_name="Contract")
        if not isinstance(body, dict) or body.get("id") in (None, ""):
            fail(self.world.requirements, f"POST /children returned no child id: {str(body)[:200]}")
        return str(body["id"])

    def child(self) -> str:
        with self._lock:
            if self._child is None:
                self._child = self._new_child()
            return self._child

    def assessment(self) -> str:
        with self._lock:
            return self._assessment_id()

    def _assessment_id(self) -> str:
        if self._assessment is None:
            body = self.world.assessment(self._new_child(), "2008-03-03")
            if not isinstance(body, dict) or body.get("id") in (None, ""):
                fail(self.world.requirements, f"starting an assessment returned no id: {str(body)[:200]}")
            self._assessment = str(body["id"])
        return self._assessment

    def request(self, label: str) -> tuple[dict[str, str], dict[str, Any]] | None:
        """(path parameters, JSON body) of a request to ``label`` the target should accept, or None."""
        unique = self.world.unique
        if label == "POST /children":
            return {}, {
                "given_name": "Alex",
                "family_name": "Harness",
                "date_of_birth": "2001-05-14",
                "gender": "not_specified",
                "local_id": unique("k"),
            }
        if label == "PATCH /children/{child_id}":
            return {"child_id": self.child()}, {"family_name": "Harness"}
        if label == "POST /children/{child_id}/aliases":
            return {"child_id": self.child()}, {"given_name": "Sam", "family_name": "Harness", "type": "alias"}
        if label == "POST /children/{child_id}/case-notes":
            return {"child_id": self.child()}, {"text": "Contract baseline note.", "restricted": False}
        if label == "POST /referrals":
            return {}, {
                "child_id": self.child(),
                "received_on": "2008-01-15",
                "source": "school",
                "reason": "Concern raised",
            }
        if label == "POST /children/{child_id}/assessments":
            return {"child_id": self._new_child()}, {"type": "initial", "start_date": "2008-03-03"}
        if label == "POST /assessments/{assessment_id}/visits":
            return {"assessment_id": self.assessment()}, {"visit_date": "2008-03-05", "child_seen": True}
        if label == "POST /practitioners":
            return {}, {"name": f"ICS Harness contract {unique('p')}", "role": "read_only"}
        return None


def _repair(case: Any, baselines: Baselines | None) -> None:
    """Overlay the coverage case's one violation on a valid request for its operation (see :class:`Baselines`)."""
    from schemathesis.core.parameters import ParameterLocation

    data = getattr(getattr(getattr(case, "meta", None), "phase", None), "data", None)
    baseline = baselines.request(case.operation.label) if baselines is not None and data is not None else None
    if baseline is None:
        return
    path_parameters, body = baseline
    where = getattr(data, "parameter_location", None)
    if path_parameters and where != ParameterLocation.PATH:
        case.path_parameters = {**(case.path_parameters or {}), **path_parameters}
    if where != ParameterLocation.BODY:
        if where in (ParameterLocation.QUERY, ParameterLocation.PATH, ParameterLocation.HEADER) and isinstance(
            case.body, dict
        ):
            case.body = body
        return
    if not isinstance(case.body, dict):
        return
    location = getattr(data, "location", None) or ""
    prop = re.match(r"^/properties/([^/]+)", location)
    if prop and prop.group(1) in case.body:
        case.body = {**body, prop.group(1): case.body[prop.group(1)]}
    elif location == "/required":
        missing = str(getattr(data, "description", "")).rpartition(": ")[2]
        case.body = {k: v for k, v in body.items() if k != missing}
    elif location == "/additionalProperties":
        declared = set(body) | set(_body_properties(case.operation))
        case.body = {**body, **{k: v for k, v in case.body.items() if k not in declared}}


def _body_properties(operation: Any) -> set[str]:
    names: set[str] = set()
    for parameter in getattr(operation, "body", []) or []:
        schema = getattr(parameter, "definition", None) or {}
        content = schema.get("schema", schema) if isinstance(schema, dict) else {}
        if isinstance(content, dict):
            names |= set((content.get("properties") or {}).keys())
    return names


def _bounded_adapter(deadline: float, limit: int, in_flight: Any = None) -> Any:
    """A requests adapter bounding every exchange like the harness's own client (total deadline, size,
    requests in flight to the target)."""
    from requests.adapters import HTTPAdapter

    from conformance.checking.client import InFlight, bounded, read_limited

    class BoundedAdapter(HTTPAdapter):
        def send(self, request: Any, stream: bool = False, **kwargs: Any) -> Any:  # type: ignore[override]
            what = f"{request.method} {request.path_url}"

            def exchange(cancelled: Any) -> Any:
                response = HTTPAdapter.send(self, request, stream=True, **kwargs)
                try:
                    response._content = read_limited(
                        response.raw.stream(64 * 1024, decode_content=True), limit, cancelled, what
                    )
                    response._content_consumed = True
                finally:
                    response.raw.release_conn()
                return response

            with gate:
                return bounded(exchange, deadline, what)

    gate = in_flight or InFlight()
    size = max(10, gate.limit or 1)
    return BoundedAdapter(pool_connections=size, pool_maxsize=size)


class _Runner:
    """Sends Schemathesis cases to the target and collects findings (one per operation, identity and mode)."""

    def __init__(
        self, world: World, check_names: Sequence[str], identities: Sequence[Identity], skip_server_errors: bool
    ) -> None:
        import requests

        self.world = world
        self.context = world.context
        self.checks = _check_functions(check_names)
        self.identities = identities
        self.skip_server_errors = skip_server_errors
        self.base_url = self.context.target_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy/netrc lookups per request: the target URL is explicit
        adapter = _bounded_adapter(self.context.deadline, self.context.max_response_bytes, world.client.in_flight)
        from conformance.adapters import Adapter

        transport = world.client.transport
        if isinstance(transport, Adapter):  # a supplier adapter: Schemathesis' requests take the same path
            from conformance.adapters.bridge import TransportBridge

            adapter = TransportBridge(
                transport,
                timeout=self.context.timeout,
                deadline=self.context.deadline,
                limit=self.context.max_response_bytes,
            )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.findings: list[Finding] = []
        self.sent = 0
        #: set once the target stopped answering (or broke a bound): every later request fails at once,
        #: so Hypothesis' shrinking does not wait out the deadline again and again
        self.unavailable: BaseException | None = None

    def close(self) -> None:
        self.session.close()

    def send(self, case: Any, identity: Identity) -> None:
        """Send one case and run the checks; a check failure propagates (FailureGroup)."""
        import requests

        from conformance.checking.client import TargetUnavailable, note_account

        if self.unavailable is not None:
            raise TargetUnavailable(f"target unavailable, not retried: {self.unavailable}")
        headers = {"Authorization": f"Bearer {identity.token}"}
        self.sent += 1
        self.world.client.evidence.count()
        try:
            response = case.call(
                base_url=self.base_url, session=self.session, headers=headers, timeout=self.context.timeout
            )
        except (TargetUnavailable, requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            self.unavailable = exc
            raise TargetUnavailable(
                f"{case.operation.label}: target did not answer ({type(exc).__name__}: {exc})"
            ) from exc
        if response.status_code == 201:
            try:
                body = response.json()
            except ValueError:
                body = None
            note_account(response.request.method or "", response.request.path_url.split("?")[0], 201, body)
        if self.skip_server_errors and response.status_code >= 500:
            return
        case.validate_response(response, checks=self.checks, headers=headers)

    def record(self, operation: Any, identity: Identity, mode: str, exc: BaseException) -> None:
        if not _is_failure(exc):
            raise exc
        message = _redact(_message(exc), [i.token for i in self.identities], self.context.builtin_reference)
        self.findings.append(Finding(operation.label, identity.name, mode, message))

    def fuzz(self, operation: Any, identity: Identity) -> None:
        """Hypothesis-driven schema-valid requests (budget from the profile), shrunk on failure."""
        from hypothesis import HealthCheck, given, settings
        from hypothesis.errors import Unsatisfiable
        from schemathesis import GenerationMode

        @settings(max_examples=examples_per_operation(), deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        def probe(case: Any) -> None:
            self.send(case, identity)

        try:
            probe()
        except Unsatisfiable:  # nothing to generate for this operation
            pass
        except BaseException as exc:
            self.record(operation, identity, "positive", exc)

    def coverage(self, operation: Any, identity: Identity, baselines: Baselines | None) -> None:
        """Schemathesis' deterministic coverage-phase negative cases: one violation each, repaired onto a valid request."""
        from schemathesis import GenerationMode

        schema = _schema()
        cases = schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.NEGATIVE],
            generation_config=schema.config.generation_for(operation=operation),
        )
        exhaustive = self.context.profile == "certification"
        kinds: set[tuple[Any, ...]] = set()
        for case in cases:
            data = getattr(getattr(case, "meta", None), "phase", None)
            data = getattr(data, "data", None)
            kind = (
                getattr(data, "scenario", None),
                getattr(data, "parameter_location", None),
                getattr(data, "location", None),
            )
            if not exhaustive and kind in kinds:  # quick: one case per kind of violation and place
                continue
            kinds.add(kind)
            _repair(case, baselines)
            try:
                self.send(case, identity)
            except BaseException as exc:
                self.record(operation, identity, "negative", exc)
                return  # one finding per operation is enough; the next operation may fail differently


def run_schemathesis(
    world: World,
    *,
    modes: Sequence[str],
    check_names: Sequence[str],
    identities: Sequence[Identity],
    skip_server_errors: bool,
) -> tuple[list[Finding], int]:
    """Run ``check_names`` over every operation; return findings and the number of requests sent.

    ``positive``: Hypothesis-generated schema-valid requests for each identity, shrunk to a
    minimal request on failure. ``negative``: Schemathesis' coverage-phase schema-violating
    requests (one violation each, overlaid on a valid request where the harness has one), as
    the first identity (admin), who is allowed every operation. A Schemathesis check
    failure is a finding; anything else (target unreachable, harness bug) propagates (ERROR).
    """
    from concurrent.futures import ThreadPoolExecutor

    from conformance.checking.client import evidence_to
    from conformance.checking.threadsafe import serialise_ast_parse

    schema = _schema()
    operations = [result.ok() for result in schema.get_all_operations()]  # one the document cannot describe: ERROR
    operations = [operation for operation in operations if in_scope(operation, world)]
    runner = _Runner(world, check_names, identities, skip_server_errors)
    baselines = Baselines(world)
    log = world.client.evidence  # the check's own log, also on the threads below

    def one(operation: Any) -> None:
        with evidence_to(log):
            if "positive" in modes:
                for identity in identities:
                    runner.fuzz(operation, identity)
            if "negative" in modes:
                runner.coverage(operation, identities[0], baselines)

    # Operations are independent: several at once, within the bound on requests in flight. Few
    # threads: Hypothesis keeps its strategy caches per thread, and three checks run this at once.
    threads = max(1, min(world.client.in_flight.limit or 1, CONTRACT_THREADS, len(operations)))
    try:
        if threads == 1:
            for operation in operations:
                one(operation)
        else:
            serialise_ast_parse()
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ics-contract") as pool:
                for future in [pool.submit(one, operation) for operation in operations]:
                    future.result()  # a harness error or an unreachable target propagates (ERROR)
    finally:
        runner.close()
    order = {operation.label: index for index, operation in enumerate(operations)}
    runner.findings.sort(key=lambda finding: order.get(finding.operation, len(order)))  # stable: as if sequential
    return runner.findings, runner.sent


def in_scope(operation: Any, world: World) -> bool:
    """An operation a later phase introduced (``x-ics-phase``), or whose capability (``x-ics-capability``)
    the target does not declare, is not part of this run's contract."""
    from conformance.spec.catalogue import phase_includes

    definition = operation.definition.raw
    phase = definition.get("x-ics-phase")
    if phase and not phase_includes(world.context.phase, str(phase)):
        return False
    capability = definition.get("x-ics-capability")
    return not capability or world.context.has(str(capability))


def run_contract(
    world: World,
    request: pytest.FixtureRequest,
    requirement: str,
    *,
    modes: Sequence[str],
    checks: Sequence[str],
    skip_server_errors: bool,
) -> None:
    """Run the Schemathesis checks of ``requirement`` (minus waived ones); fail it with the findings."""
    waived = waived_checks(request.config)
    active = [c for c in checks if c not in waived]
    waived_here = sorted(set(checks) & waived)
    if waived_here:
        request.node.user_properties.append(("ics_contract_waived", ",".join(waived_here)))
    if not active:
        prerequisite_missing(f"every Schemathesis check of {requirement} is waived ({', '.join(waived_here)})")
    identities = [
        Identity("admin", world.admin.token),
        Identity("practitioner", world.practitioner("practitioner").token),
    ]
    findings, _sent = run_schemathesis(
        world, modes=modes, check_names=active, identities=identities, skip_server_errors=skip_server_errors
    )
    if findings:
        shown = findings[:MAX_FINDINGS]
        parts = [f"{f.operation} as {f.identity} ({f.mode} data):\n{f.message}" for f in shown]
        more = f"\n\n... and {len(findings) - len(shown)} more operation(s)" if len(findings) > len(shown) else ""
        note = f"\n\n(waived Schemathesis checks: {', '.join(waived_here)})" if waived_here else ""
        fail(
            requirement,
            f"Schemathesis checks {', '.join(active)} found {len(findings)} failing operation(s):\n\n"
            + "\n\n".join(parts)
            + more
            + note,
        )


# -- the checks ---------------------------------------------------------------------------------


@check(API_001, kind="contract")
def test_no_server_errors(world: World, request: pytest.FixtureRequest) -> None:
    """API-001: no request, valid or invalid, as admin or practitioner, gets a 5xx answer."""
    run_contract(
        world, request, API_001, modes=("positive", "negative"), checks=SERVER_ERROR_CHECKS, skip_server_errors=False
    )


@check(API_002, kind="contract")
def test_responses_conform_to_openapi(world: World, request: pytest.FixtureRequest) -> None:
    """API-002: answers to schema-valid requests have a documented status, content type, headers and body schema."""
    run_contract(world, request, API_002, modes=("positive",), checks=CONFORMANCE_CHECKS, skip_server_errors=True)


@check(API_003, kind="contract")
def test_invalid_input_rejected(world: World, request: pytest.FixtureRequest) -> None:
    """API-003: schema-violating requests are refused with a 4xx whose body carries a machine-readable ``code``."""
    run_contract(world, request, API_003, modes=("negative",), checks=NEGATIVE_CHECKS, skip_server_errors=True)


#: Names off the ``Name`` pattern of specs/openapi.yaml (letters, combining marks, spaces,
#: hyphens, apostrophes and full stops), each with one character outside it.
OFF_PATTERN_NAMES = {
    "a digit": "J0hn",
    "a symbol": "Ann@",
    "a zero-width space": "Ann\u200bMarie",
    "an emoji": "Ann\U0001f600",
}


@cache
def _name_schema() -> dict[str, Any]:
    from conformance.spec.resources import openapi_document

    document = openapi_document()
    return dict(document["components"]["schemas"]["Name"])


@check(API_003, kind="scenario")
def test_names_off_the_name_pattern_rejected(world: World) -> None:
    """API-003: a child (given or family name) or an alias whose name breaks the ``Name``
    pattern (a digit, a symbol, a zero-width space, an emoji) is rejected with a 4xx whose
    ``code`` is one of design.md section 4's; the generated requests of the contract check
    do not reliably reach the pattern."""
    import jsonschema

    schema = _name_schema()
    for what, name in OFF_PATTERN_NAMES.items():
        assert not jsonschema.Draft202012Validator(schema).is_valid(name), f"{name!r} ({what}) fits Name"
    token = world.practitioner().token
    child = world.child(family_name=name_token())

    def base(**names: str) -> dict[str, Any]:
        body = {"given_name": "Alex", "family_name": name_token(), "date_of_birth": "2003-02-11"}
        return {**body, "gender": "not_specified", "local_id": world.unique("c"), **names}

    attempts = [
        (f"POST /children with a given name holding {w}", "/children", base(given_name=n))
        for w, n in OFF_PATTERN_NAMES.items()
    ]
    attempts.append(("POST /children with a family name holding a digit", "/children", base(family_name="Sm1th")))
    attempts.append(
        (
            "POST /children/{id}/aliases with a given name holding a symbol",
            f"/children/{child['id']}/aliases",
            {"given_name": "Ann@", "family_name": name_token(), "type": "alias"},
        )
    )
    wrong = []
    for what, path, body in attempts:
        response = world.client.post(path, token=token, json=body)
        code = error_code(response) if 400 <= response.status_code < 500 else None
        if code not in error_codes():
            wrong.append(f"{what}: {describe(response)}")
    if wrong:
        fail(
            API_003,
            "names off the Name pattern of specs/openapi.yaml must be rejected with a 4xx and a design.md "
            "section 4 code: " + "; ".join(wrong),
        )


@check(API_004, kind="scenario")
def test_about_without_authentication(world: World) -> None:
    """API-004: ``GET /about`` needs no token and names supplier, product, version, spec versions (2008.1 or a patch level), capabilities."""
    response = world.client.get("/about")
    body = expect_status(response, 200, API_004, "GET /about without a token")
    content_type = response.headers.get("content-type", "")
    require(
        content_type.split(";")[0].strip().lower() == "application/json",
        API_004,
        f"GET /about answered with content type {content_type!r}, expected application/json",
    )
    require(isinstance(body, dict), API_004, f"GET /about is not a JSON object: {describe(response)}")
    for field in ("supplier", "product", "version"):
        require(
            isinstance(body.get(field), str) and body[field].strip(),
            API_004,
            f"GET /about: {field} is {body.get(field)!r}, expected a non-empty string",
        )
    versions = body.get("spec_versions")
    require(
        isinstance(versions, list) and all(isinstance(v, str) for v in versions),
        API_004,
        f"GET /about: spec_versions is {versions!r}, expected a list of strings",
    )
    require(
        any(SPEC_VERSION_DECLARED.fullmatch(v) for v in versions),
        API_004,
        f"GET /about: spec_versions {versions!r} includes neither {SPEC_VERSION!r} nor a patch level of it",
    )
    capabilities = body.get("capabilities")
    require(
        isinstance(capabilities, dict), API_004, f"GET /about: capabilities is {capabilities!r}, expected an object"
    )
    import jsonschema

    validator = jsonschema.Draft202012Validator(_capabilities_schema())
    problems = sorted(validator.iter_errors(capabilities), key=lambda e: list(e.absolute_path))
    require(
        not problems,
        API_004,
        "GET /about: capabilities not valid against capabilities.schema.json: "
        + "; ".join(f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in problems[:5]),
    )


@cache
def _capabilities_schema() -> dict[str, Any]:
    import json

    from conformance.spec.resources import spec_path

    return json.loads(spec_path("schemas", "capabilities.schema.json").read_text(encoding="utf-8"))
