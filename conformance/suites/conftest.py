"""Fixtures shared by the built-in conformance suites.

The plugin (:mod:`conformance.plugin`) establishes the session's :class:`RunContext`
(target, admin credential, capabilities, run ID) before collection; these fixtures give
each check a client and a :class:`World` that blames the check's own requirements.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from conformance.checking.client import Client, EvidenceLog
from conformance.checking.world import CONTEXT_KEY, EVIDENCE_KEY, Practitioner, RunContext, World


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("ics")
    if marker is not None and "ics_requirements" in metafunc.fixturenames:
        reqs = tuple(marker.kwargs["requirements"])
        metafunc.parametrize("ics_requirements", [reqs], ids=["+".join(reqs)])


@pytest.fixture(autouse=True)
def ics_requirements(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The requirement IDs of the current check (parametrized into its test ID)."""
    marker = request.node.get_closest_marker("ics")
    return tuple(marker.kwargs["requirements"]) if marker else ()


@pytest.fixture(scope="session")
def ics_context(request: pytest.FixtureRequest) -> RunContext:
    context = request.config.stash.get(CONTEXT_KEY, None)
    if context is None:
        pytest.exit("ics-conformance: no target configured (run with --ics-phase or --ics-target)", returncode=2)
    return context


@pytest.fixture(scope="session")
def ics_evidence(request: pytest.FixtureRequest) -> EvidenceLog:
    from conformance.plugin import make_evidence_log

    return make_evidence_log(request.config)


@pytest.fixture(scope="session")
def ics_client(request: pytest.FixtureRequest, ics_context: RunContext, ics_evidence: EvidenceLog) -> Iterator[Client]:
    from conformance.plugin import make_transport

    transport = make_transport(request.config)  # fails fast once the target stopped answering
    with Client(
        ics_context.target_url,
        timeout=ics_context.timeout,
        evidence=ics_evidence,
        transport=transport,
        deadline=ics_context.deadline,
        max_response_bytes=ics_context.max_response_bytes,
    ) as client:
        yield client


@pytest.fixture(scope="session")
def _practitioner_pool() -> dict[str, Practitioner]:
    return {}


@pytest.fixture(autouse=True)
def _capture_evidence(request: pytest.FixtureRequest) -> Iterator[None]:
    """Start each check with an empty evidence log and hand it to the plugin."""
    if request.node.get_closest_marker("ics") is None:
        yield
        return
    log: EvidenceLog = request.getfixturevalue("ics_evidence")
    log.clear()
    request.node.stash[EVIDENCE_KEY] = log
    yield


@pytest.fixture
def world(
    ics_context: RunContext,
    ics_client: Client,
    ics_requirements: tuple[str, ...],
    _practitioner_pool: dict[str, Practitioner],
) -> World:
    """Provisioning helpers for the current check."""
    return World(ics_context, ics_client, requirements=ics_requirements, pool=_practitioner_pool)


@pytest.fixture(scope="session")
def today() -> date:
    """Today's date in England (Europe/London): the target's notion of "today"."""
    return datetime.now(ZoneInfo("Europe/London")).date()
