"""pytest plugin (``pytest11`` entry point ``ics_conformance``).

Cheap to import: only option registration and hooks live here; the heavy lifting is
imported inside the hooks, and only when a run asks for ICS conformance checks
(``--ics-phase``, ``--ics-target`` or ``--ics-export``, or the same in the ini file).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conformance.client import EvidenceLog

PHASES = ("1A", "1B", "1C")
PROFILES = ("quick", "certification")

_REFERENCE_KEY = pytest.StashKey[Any]()


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
    group.addoption("--ics-seed", dest="ics_seed", type=int, metavar="N", help="seed for generated data and Hypothesis")
    group.addoption("--ics-reference-fault", dest="ics_reference_faults", action="append", default=[], metavar="NAME", help="inject a fault into the built-in reference service (repeatable)")
    for name, help_text in (
        ("ics_target", "base URL of the ICS API under test"),
        ("ics_phase", "phase to check: 1A, 1B or 1C"),
        ("ics_profile", "Hypothesis budget: quick or certification"),
        ("ics_capabilities", "capability statement file"),
        ("ics_report", "directory for result.json"),
        ("ics_token_env", "environment variable holding the admin token"),
        ("ics_token_file", "file holding the admin token"),
    ):
        parser.addini(name, help_text, default=None)


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name, default=None)
    if value in (None, [], ""):
        value = config.getini(name) if name in _INI_NAMES else None
    return value or None


_INI_NAMES = {"ics_target", "ics_phase", "ics_profile", "ics_capabilities", "ics_report", "ics_token_env", "ics_token_file"}


def ics_enabled(config: pytest.Config) -> bool:
    """True when this run asked for ICS conformance checks."""
    return any(_option(config, n) for n in ("ics_target", "ics_phase", "ics_export")) or bool(
        config.getoption("ics_reference_faults", default=None)
    )


def suites_dir() -> Path:
    """Directory of the built-in conformance suites."""
    return Path(__file__).resolve().parent / "suites"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ics(requirements, kind): an ICS conformance check of the named requirements")
    if not ics_enabled(config):
        return
    if str(suites_dir()) not in config.args:
        config.args[:] = [str(suites_dir())]
    from conformance import _session

    _session.configure(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    if ics_enabled(config):
        from conformance import _session

        _session.unconfigure(config)


def make_evidence_log(config: pytest.Config) -> EvidenceLog:
    """The evidence log for this session, redacting according to the target."""
    from conformance import _session

    return _session.make_evidence_log(config)
