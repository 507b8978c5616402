"""The plugin's options (``--ics-*`` and their ini twins) and the questions asked of them.

Imported by the hooks (:mod:`conformance.plugin`), the session set-up and the verdict
collector alike; it imports nothing of theirs, so the plugin has no import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

PHASES = ("1A", "1B", "1C")
#: The suites an export judged alone runs (``--ics-export`` without a target): the 1A export
#: rules, and the phase 1C content of the export (audit log, chronology).
EXPORT_SUITES = ("test_export.py", "test_export_1c.py")
#: Built-in suite modules holding only checks of a later phase than 1A/1B, by phase: a run of an
#: earlier phase does not even collect them.
PHASE_SUITES: dict[str, tuple[str, ...]] = {
    "1C": (
        "test_transfer.py",
        "test_audit.py",
        "test_shielding.py",
        "test_seen_alone.py",
        "test_chronology.py",
        "test_chronology_stateful.py",
        "test_export_1c.py",
    ),
}


def suite_phase(name: str) -> str | None:
    """The phase a built-in suite module belongs to, when it holds only checks of one later phase."""
    return next((phase for phase, names in PHASE_SUITES.items() if name in names), None)


PROFILES = ("quick", "certification")
COLLECTOR_NAME = "ics-conformance-verdicts"

_INI_NAMES = {
    "ics_target",
    "ics_phase",
    "ics_profile",
    "ics_capabilities",
    "ics_report",
    "ics_token_env",
    "ics_token_file",
    "ics_timeout",
    "ics_deadline",
    "ics_max_response_bytes",
    "ics_max_in_flight",
    "ics_seed",
    "ics_export",
    "ics_export_format",
    "ics_peer_target",
    "ics_peer_token_env",
    "ics_peer_token_file",
    "ics_local_profile",
    "ics_adapter",
}


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--ics-*`` options (one group) and their ini settings."""
    group = parser.getgroup("ics-conformance", "ICS conformance checks")
    group.addoption(
        "--ics-target",
        dest="ics_target",
        metavar="URL",
        help="base URL of the ICS API under test (default: the built-in reference service)",
    )
    group.addoption("--ics-phase", dest="ics_phase", choices=PHASES, help="phase to check (cumulative): 1A, 1B or 1C")
    group.addoption(
        "--ics-profile", dest="ics_profile", choices=PROFILES, help="Hypothesis budget: quick or certification"
    )
    group.addoption(
        "--ics-token-env",
        dest="ics_token_env",
        metavar="VAR",
        help="environment variable holding the admin bearer token (default ICS_ADMIN_TOKEN)",
    )
    group.addoption(
        "--ics-token-file", dest="ics_token_file", metavar="FILE", help="file holding the admin bearer token"
    )
    group.addoption(
        "--ics-capabilities",
        dest="ics_capabilities",
        metavar="FILE",
        help="capability statement (YAML/JSON) overriding the target's /about",
    )
    group.addoption(
        "--ics-allow-capability-override",
        dest="ics_allow_capability_override",
        action="store_true",
        default=False,
        help="run even when --ics-capabilities switches off a capability the target declares (recorded in the result)",
    )
    group.addoption(
        "--ics-adapter",
        dest="ics_adapter",
        metavar="NAME",
        help="reach the target through the installed supplier adapter NAME (entry-point group ics_conformance.adapters)",
    )
    group.addoption(
        "--ics-report",
        dest="ics_report",
        metavar="DIR",
        help="write result.json and report.html into DIR (default: reports/pytest-<phase>-<run id>/)",
    )
    group.addoption(
        "--ics-hypothesis-dir",
        dest="ics_hypothesis_dir",
        metavar="DIR",
        help="keep Hypothesis' files in DIR (default: a temporary directory, nothing in the working directory)",
    )
    group.addoption("--ics-export", dest="ics_export", metavar="PATH", help="export directory or zip to validate")
    group.addoption(
        "--ics-export-format",
        dest="ics_export_format",
        metavar="NAME|FILE",
        help="--ics-export is in a mapped export format (a published format's name or a mapping file), "
        "as validate-export --format",
    )
    group.addoption(
        "--ics-timeout",
        dest="ics_timeout",
        type=float,
        metavar="SECONDS",
        help="timeout of each network operation of an HTTP call (default 10)",
    )
    group.addoption(
        "--ics-deadline",
        dest="ics_deadline",
        type=float,
        metavar="SECONDS",
        help="total time one HTTP exchange may take, body included (default 60); beyond it the check is ERROR",
    )
    group.addoption(
        "--ics-max-response-bytes",
        dest="ics_max_response_bytes",
        metavar="BYTES",
        help="largest response accepted, e.g. 128M (default 128M); beyond it the check is ERROR",
    )
    group.addoption(
        "--ics-max-in-flight",
        dest="ics_max_in_flight",
        type=int,
        metavar="N",
        help="most HTTP requests in flight to the target at once (default 8); above 1, in a run without xdist "
        "workers, independent checks run concurrently on N threads (each check's own steps stay in order)",
    )
    group.addoption(
        "--ics-heartbeat",
        dest="ics_heartbeat",
        type=float,
        metavar="SECONDS",
        help="print a 'still running' line when no check has finished for SECONDS (default 5 when the output is "
        "not a terminal, e.g. a CI log; 0 turns it off)",
    )
    group.addoption(
        "--ics-seed",
        dest="ics_seed",
        type=int,
        metavar="N",
        help="seed for Hypothesis (default: random, recorded in result.json)",
    )
    group.addoption(
        "--ics-reference-fault",
        dest="ics_reference_faults",
        action="append",
        default=[],
        metavar="NAME",
        help="inject a fault into the built-in reference service (repeatable)",
    )
    group.addoption(
        "--ics-peer-target",
        dest="ics_peer_target",
        metavar="URL",
        help="phase 1C pair run: base URL of a second ICS API the target transfers children to and from",
    )
    group.addoption(
        "--ics-peer-token-env",
        dest="ics_peer_token_env",
        metavar="VAR",
        help="environment variable holding the peer's admin bearer token (default ICS_PEER_ADMIN_TOKEN)",
    )
    group.addoption(
        "--ics-peer-token-file", dest="ics_peer_token_file", metavar="FILE", help="file holding the peer's admin token"
    )
    group.addoption(
        "--ics-peer-reference",
        dest="ics_peer_reference",
        action="store_true",
        default=False,
        help="phase 1C pair run with the built-in reference service as the peer (the default with no --ics-target)",
    )
    group.addoption(
        "--ics-peer-reference-fault",
        dest="ics_peer_reference_faults",
        action="append",
        default=[],
        metavar="NAME",
        help="inject a fault into the built-in peer reference service (repeatable; implies --ics-peer-reference)",
    )
    group.addoption(
        "--ics-local-profile",
        dest="ics_local_profile",
        metavar="FILE",
        help="council local profile (YAML): its local requirements are judged too and give a local verdict, "
        "reported beside the national verdict and never merged into it",
    )
    group.addoption(
        "--ics-local-checks",
        dest="ics_local_checks",
        action="append",
        default=[],
        metavar="PATH",
        help="the council's own checks (a file or directory of pytest modules), each marked "
        "@pytest.mark.ics_local('LOCAL-...') with a requirement of --ics-local-profile; repeatable",
    )
    for name, help_text in (
        ("ics_target", "base URL of the ICS API under test"),
        ("ics_phase", "phase to check: 1A, 1B or 1C"),
        ("ics_profile", "Hypothesis budget: quick or certification"),
        ("ics_capabilities", "capability statement file"),
        ("ics_report", "directory for result.json and report.html"),
        ("ics_token_env", "environment variable holding the admin token"),
        ("ics_token_file", "file holding the admin token"),
        ("ics_timeout", "timeout in seconds of each network operation of an HTTP call"),
        ("ics_deadline", "total seconds one HTTP exchange may take"),
        ("ics_max_response_bytes", "largest response accepted (bytes; K/M/G suffixes)"),
        ("ics_max_in_flight", "most HTTP requests in flight to the target at once"),
        ("ics_seed", "seed for Hypothesis"),
        ("ics_export", "export directory or zip to validate"),
        ("ics_export_format", "export format of ics_export (a published format's name or a mapping file)"),
        ("ics_peer_target", "phase 1C pair run: base URL of the peer ICS API"),
        ("ics_peer_token_env", "environment variable holding the peer's admin token"),
        ("ics_peer_token_file", "file holding the peer's admin token"),
        ("ics_local_profile", "council local profile (YAML)"),
        ("ics_adapter", "installed supplier adapter the target is reached through"),
    ):
        parser.addini(name, help_text, default=None)
    parser.addini(
        "ics_contract_waive",
        "Schemathesis check names waived for the contract checks (recorded in the result)",
        type="linelist",
        default=[],
    )


def option(config: pytest.Config, name: str) -> Any:
    """An ``--ics-*`` option, falling back to the ini setting of the same name."""
    value = config.getoption(name, default=None)
    if value in (None, [], ""):
        value = config.getini(name) if name in _INI_NAMES else None
    return value or None


def ics_enabled(config: pytest.Config) -> bool:
    """True when this run asked for ICS conformance checks."""
    return any(option(config, n) for n in ("ics_target", "ics_phase", "ics_export")) or bool(
        config.getoption("ics_reference_faults", default=None)
    )


def export_only(config: pytest.Config) -> bool:
    """True when the run judges an export file alone: ``--ics-export`` without a target.

    Then no reference service is started, no API is contacted, only the export checks
    are collected, and the verdict covers the export channel's requirements.
    """
    return (
        bool(option(config, "ics_export"))
        and not option(config, "ics_target")
        and not config.getoption("ics_reference_faults", default=None)
    )


def suites_dir() -> Path:
    """Directory of the built-in conformance suites."""
    return Path(__file__).resolve().parent.parent / "suites"


def explicit_paths(config: pytest.Config) -> bool:
    """True when the command line named test paths (then they are run instead of the built-ins)."""
    source = getattr(config, "args_source", None)
    return source is not None and source == pytest.Config.ArgsSource.ARGS


#: Facts about the session kept even when pre-flight fails (run ID, target, start time).
PENDING_KEY = pytest.StashKey[dict[str, Any]]()
