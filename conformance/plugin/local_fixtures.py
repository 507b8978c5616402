"""Fixtures of local checks (the generic ones and a council's own), registered when a run has a local profile.

* ``local_profile``: the run's :class:`~conformance.profiles.model.LocalProfile`;
* ``local_requirement``: the :class:`~conformance.profiles.model.LocalRequirement` the check
  judges (its first ``ics_local`` ID);
* ``local_world``: a :class:`~conformance.checking.world.World` on the target whose helpers
  blame the check's local requirements when the target refuses a step.

A local check FAILs through :func:`conformance.checking.checks.fail` naming its local IDs (or
a plain ``assert``); it can never blame a national requirement (that is an ERROR).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.checking.client import Client, EvidenceLog
from conformance.checking.world import CONTEXT_KEY, EVIDENCE_KEY, Practitioner, RunContext, World
from conformance.plugin.local import LOCAL_PROFILE_KEY, marker_info
from conformance.profiles.model import LocalProfile, LocalRequirement


@pytest.fixture(scope="session")
def local_profile(request: pytest.FixtureRequest) -> LocalProfile:
    """The run's local profile."""
    return request.config.stash[LOCAL_PROFILE_KEY]


@pytest.fixture
def local_requirement(request: pytest.FixtureRequest, local_profile: LocalProfile) -> LocalRequirement:
    """The local requirement the current check judges (the first ID of its ``ics_local`` marker)."""
    info = marker_info(request.node)
    requirement = local_profile.get(info[0][0]) if info and info[0] else None
    if requirement is None:
        raise LookupError(f"{request.node.nodeid}: no ics_local marker naming a requirement of the profile")
    return requirement


@pytest.fixture(scope="session")
def _local_session(request: pytest.FixtureRequest) -> Iterator[tuple[RunContext, Client, EvidenceLog]]:
    from conformance.plugin import make_evidence_log, make_transport

    context = request.config.stash.get(CONTEXT_KEY, None)
    if context is None:
        pytest.exit("ics-conformance: no target configured (run with --ics-phase or --ics-target)", returncode=2)
    evidence = make_evidence_log(request.config)
    with Client(
        context.target_url,
        timeout=context.timeout,
        evidence=evidence,
        transport=make_transport(request.config),
        deadline=context.deadline,
        max_response_bytes=context.max_response_bytes,
    ) as client:
        yield context, client, evidence


@pytest.fixture(scope="session")
def _local_pool() -> dict[str, Practitioner]:
    return {}


@pytest.fixture
def local_world(
    request: pytest.FixtureRequest,
    _local_session: tuple[RunContext, Client, EvidenceLog],
    _local_pool: dict[str, Practitioner],
) -> World:
    """A World blaming the check's local requirements; the check's exchanges are kept as its evidence."""
    context, client, evidence = _local_session
    evidence.clear()
    request.node.stash[EVIDENCE_KEY] = evidence
    info = marker_info(request.node)
    return World(context, client, requirements=info[0] if info else (), pool=_local_pool)
