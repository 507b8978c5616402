"""pytest plugin (``pytest11`` entry point ``ics_conformance``).

Cheap to import: only option registration and hooks live here; the heavy lifting is
imported inside the hooks, and only when a run asks for ICS conformance checks
(``--ics-phase``, ``--ics-target`` or ``--ics-export``, or the same in the ini file).

When enabled, the plugin

* runs the built-in suites (``conformance/suites``) unless paths are given explicitly;
* establishes the session's :class:`~conformance.checking.world.RunContext` once (controller
  only under xdist: it starts the built-in reference, runs the pre-flight ``GET /about``
  and hands the context to the workers through ``workerinput``);
* loads the Hypothesis profile ``ics-quick`` / ``ics-certification``
  (:mod:`conformance.plugin.profiles`) seeded from ``--ics-seed`` (a random seed otherwise,
  recorded in ``result.json``);
* registers :class:`conformance.plugin.collect.VerdictCollector`, which maps every check's
  outcome to a verdict, marks items with their area and requirement IDs, and writes
  ``result.json`` at the end of the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx

    from conformance.checking.client import EvidenceLog

from conformance.plugin.options import (
    COLLECTOR_NAME,
    EXPORT_SUITES,
    add_options,
    explicit_paths,
    export_only,
    ics_enabled,
    suites_dir,
)

__all__ = [
    "make_evidence_log",
    "make_transport",
    "pytest_addoption",
    "pytest_configure",
    "pytest_configure_node",
    "pytest_unconfigure",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ics(requirements, kind): an ICS conformance check of the named requirements")
    config.addinivalue_line(
        "markers", "ics_local(*ids, kind): a check of local requirements of the run's --ics-local-profile"
    )
    if not ics_enabled(config):
        return
    if not explicit_paths(config):
        config.args[:] = (
            [str(suites_dir() / name) for name in EXPORT_SUITES] if export_only(config) else [str(suites_dir())]
        )
    if config.getoption("dist", default="no") == "load":
        config.option.dist = "loadgroup"  # honour xdist_group marks (e.g. the export checks)
    from conformance.plugin import collect, local, session

    local.configure(config)  # a bad local profile is refused before anything starts
    if local.profile_of(config) is not None:
        from conformance.plugin import local_fixtures

        if not config.pluginmanager.is_registered(local_fixtures):
            config.pluginmanager.register(local_fixtures, "ics-conformance-local-fixtures")
    collect.register_markers(config)
    from conformance.plugin import progress

    progress.register_heartbeat(config)
    collector = collect.VerdictCollector(config)
    config.pluginmanager.register(collector, COLLECTOR_NAME)
    session.configure(config)
    collector.session_configured()
    from conformance.checking.world import CONTEXT_KEY
    from conformance.plugin import lanes

    context = config.stash.get(CONTEXT_KEY, None)
    if context is not None:
        lanes.configure(config, context.max_in_flight)


def pytest_unconfigure(config: pytest.Config) -> None:
    if ics_enabled(config):
        from conformance.plugin import session

        session.unconfigure(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the run context (incl. the admin token, in memory only) to a worker."""
    config = node.config
    if ics_enabled(config):
        from conformance.plugin import session

        session.configure_node(config, node.workerinput)


def make_evidence_log(config: pytest.Config) -> EvidenceLog:
    """The evidence log for this session, redacting according to the target."""
    from conformance.plugin import session

    return session.make_evidence_log(config)


def make_transport(config: pytest.Config, side: str = "target") -> httpx.BaseTransport:
    """The HTTP transport of the session's clients: fails fast once the target (or the peer) stopped answering."""
    from conformance.plugin import session

    return session.make_transport(config, side)
