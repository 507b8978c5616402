"""The two sides of a phase 1C pair run, for the checks that talk to both.

A pair run has a target and a peer (:class:`~conformance.checking.world.Side`); without a
peer the target plays both parts (it imports its own packages). :class:`Sides` gives each
side its client (its own circuit breaker) and a :class:`World` acting with its admin;
:func:`on_side` records which system a check judged, so that its verdict is counted for
that side only (``result.json``: the target's requirements, or ``peer``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.checking.client import Client, EvidenceLog
from conformance.checking.world import CONTEXT_KEY, PEER, TARGET, Practitioner, RunContext, Side, World


def sides_of(config: pytest.Config) -> list[str]:
    """The systems judged as senders or receivers: both in a pair run, else the target."""
    context = config.stash.get(CONTEXT_KEY, None)
    return [TARGET, PEER] if context is not None and context.paired else [TARGET]


def directions_of(config: pytest.Config) -> list[tuple[str, str]]:
    """(sender, receiver) of each transfer: both ways in a pair run, else the target to itself."""
    context = config.stash.get(CONTEXT_KEY, None)
    if context is not None and context.paired:
        return [(TARGET, PEER), (PEER, TARGET)]
    return [(TARGET, TARGET)]


def on_side(request: pytest.FixtureRequest, context: RunContext, side: str) -> None:
    """Count the current check's verdict for ``side`` (only a pair run tells the sides apart)."""
    if context.paired:
        request.node.user_properties.append(("ics_side", side))


class Sides:
    """Clients and worlds of the run's sides, shared by the checks of one module."""

    def __init__(self, config: pytest.Config, context: RunContext, evidence: EvidenceLog) -> None:
        self.config = config
        self.context = context
        self.evidence = evidence
        self._clients: dict[str, Client] = {}
        self._pools: dict[str, dict[str, Practitioner]] = {}

    def side(self, name: str) -> Side:
        return self.context.side(name)

    def client(self, name: str) -> Client:
        if name not in self._clients:
            from conformance.plugin import make_transport

            side = self.side(name)
            self._clients[name] = Client(
                side.url,
                timeout=self.context.timeout,
                evidence=self.evidence,
                transport=make_transport(self.config, name),
                deadline=self.context.deadline,
                max_response_bytes=self.context.max_response_bytes,
            )
        return self._clients[name]

    def world(self, name: str, *requirements: str) -> World:
        """A world acting on side ``name`` with its admin, blaming ``requirements`` when that side refuses."""
        side = self.side(name)
        pool = self._pools.setdefault(name, {})
        return World(
            self.context, self.client(name), requirements=requirements, pool=pool, admin_token=side.admin_token
        )

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


@pytest.fixture(scope="session")
def ics_sides(request: pytest.FixtureRequest, ics_context: RunContext, ics_evidence: EvidenceLog) -> Iterator[Sides]:
    """The sides of the run (session-wide; each module importing this fixture gets its own)."""
    sides = Sides(request.config, ics_context, ics_evidence)
    yield sides
    sides.close()


def describe_side(context: RunContext, name: str) -> str:
    """How failure messages name a side: ``target (Council A)`` (just ``target`` when not paired)."""
    return context.side(name).label if context.paired else name


__all__ = ["Sides", "describe_side", "directions_of", "ics_sides", "on_side", "sides_of"]
