"""pytest plugin (``pytest11`` entry point ``ics_conformance``).

Cheap to import: only option registration and hooks live here; the heavy lifting is
imported inside the hooks, and only when a run asks for ICS conformance checks
(``--ics-phase``, ``--ics-target`` or ``--ics-export``, or the same in the ini file).

When enabled, the plugin

* runs the built-in suites (``conformance/suites``) unless paths are given explicitly;
* establishes the session's :class:`~conformance.world.RunContext` once (controller
  only under xdist: it starts the built-in reference, runs the pre-flight ``GET /about``
  and hands the context to the workers through ``workerinput``);
* loads the Hypothesis profile ``ics-quick`` / ``ics-certification``
  (:mod:`conformance._profiles`) seeded from ``--ics-seed`` (a random seed otherwise,
  recorded in ``result.json``);
* registers :class:`conformance._collect.VerdictCollector`, which maps every check's
  outcome to a verdict, marks items with their area and requirement IDs, and writes
  ``result.json`` at the end of the session.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx

    from conformance.client import EvidenceLog

PHASES = ("1A", "1B", "1C")
PROFILES = ("quick", "certification")
COLLECTOR_NAME = "ics-conformance-verdicts"

_REFERENCE_KEY = pytest.StashKey[Any]()
_INI_NAMES = {
    "ics_target",
    "ics_phase",
    "ics_profile",
    "ics_capabilities",
    "ics_report",
    "ics_token_env",
    "ics_token_file",
    "ics_timeout",
    "ics_seed",
    "ics_export",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ics-conformance", "ICS conformance checks")
    group.addoption("--ics-target", dest="ics_target", metavar="URL", help="base URL of the ICS API under test (default: the built-in reference service)")
    group.addoption("--ics-phase", dest="ics_phase", choices=PHASES, help="phase to check (cumulative): 1A, 1B or 1C")
    group.addoption("--ics-profile", dest="ics_profile", choices=PROFILES, help="Hypothesis budget: quick or certification")
    group.addoption("--ics-token-env", dest="ics_token_env", metavar="VAR", help="environment variable holding the admin bearer token (default ICS_ADMIN_TOKEN)")
    group.addoption("--ics-token-file", dest="ics_token_file", metavar="FILE", help="file holding the admin bearer token")
    group.addoption("--ics-capabilities", dest="ics_capabilities", metavar="FILE", help="capability statement (YAML/JSON) overriding the target's /about")
    group.addoption("--ics-report", dest="ics_report", metavar="DIR", help="write result.json into DIR")
    group.addoption("--ics-export", dest="ics_export", metavar="PATH", help="export directory or zip to validate")
    group.addoption("--ics-timeout", dest="ics_timeout", type=float, metavar="SECONDS", help="timeout of every HTTP call (default 10)")
    group.addoption("--ics-seed", dest="ics_seed", type=int, metavar="N", help="seed for Hypothesis (default: random, recorded in result.json)")
    group.addoption("--ics-reference-fault", dest="ics_reference_faults", action="append", default=[], metavar="NAME", help="inject a fault into the built-in reference service (repeatable)")
    for name, help_text in (
        ("ics_target", "base URL of the ICS API under test"),
        ("ics_phase", "phase to check: 1A, 1B or 1C"),
        ("ics_profile", "Hypothesis budget: quick or certification"),
        ("ics_capabilities", "capability statement file"),
        ("ics_report", "directory for result.json"),
        ("ics_token_env", "environment variable holding the admin token"),
        ("ics_token_file", "file holding the admin token"),
        ("ics_timeout", "timeout in seconds of every HTTP call"),
        ("ics_seed", "seed for Hypothesis"),
        ("ics_export", "export directory or zip to validate"),
    ):
        parser.addini(name, help_text, default=None)
    parser.addini(
        "ics_contract_waive",
        "Schemathesis check names waived for the contract checks (recorded in the result)",
        type="linelist",
        default=[],
    )


def _option(config: pytest.Config, name: str) -> Any:
    """An ``--ics-*`` option, falling back to the ini setting of the same name."""
    value = config.getoption(name, default=None)
    if value in (None, [], ""):
        value = config.getini(name) if name in _INI_NAMES else None
    return value or None


def ics_enabled(config: pytest.Config) -> bool:
    """True when this run asked for ICS conformance checks."""
    return any(_option(config, n) for n in ("ics_target", "ics_phase", "ics_export")) or bool(
        config.getoption("ics_reference_faults", default=None)
    )


def export_only(config: pytest.Config) -> bool:
    """True when the run judges an export file alone: ``--ics-export`` without a target.

    Then no reference service is started, no API is contacted, only the export checks
    are collected, and the verdict covers the export channel's requirements.
    """
    return bool(_option(config, "ics_export")) and not _option(config, "ics_target") and not config.getoption(
        "ics_reference_faults", default=None
    )


def suites_dir() -> Path:
    """Directory of the built-in conformance suites."""
    return Path(__file__).resolve().parent / "suites"


def _explicit_paths(config: pytest.Config) -> bool:
    """True when the command line named test paths (then they are run instead of the built-ins)."""
    source = getattr(config, "args_source", None)
    return source is not None and source == pytest.Config.ArgsSource.ARGS


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ics(requirements, kind): an ICS conformance check of the named requirements")
    if not ics_enabled(config):
        return
    if not _explicit_paths(config):
        config.args[:] = [str(suites_dir() / "test_export.py")] if export_only(config) else [str(suites_dir())]
    if config.getoption("dist", default="no") == "load":
        config.option.dist = "loadgroup"  # honour xdist_group marks (e.g. the export checks)
    from conformance import _collect, _session

    _collect.register_markers(config)
    collector = _collect.VerdictCollector(config)
    config.pluginmanager.register(collector, COLLECTOR_NAME)
    _session.configure(config)
    collector.session_configured()


def pytest_unconfigure(config: pytest.Config) -> None:
    if ics_enabled(config):
        from conformance import _session

        _session.unconfigure(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the run context (incl. the admin token, in memory only) to a worker."""
    config = node.config
    if ics_enabled(config):
        from conformance import _session

        _session.configure_node(config, node.workerinput)


def make_evidence_log(config: pytest.Config) -> EvidenceLog:
    """The evidence log for this session, redacting according to the target."""
    from conformance import _session

    return _session.make_evidence_log(config)


def make_transport(config: pytest.Config) -> httpx.BaseTransport:
    """The HTTP transport of the session's clients: fails fast once the target stopped answering."""
    from conformance import _session

    return _session.make_transport(config)
