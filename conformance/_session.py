"""Session set-up for the plugin: target, credentials, pre-flight, run context.

Imported only when a run asks for ICS checks, so that merely installing the plugin
costs nothing.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from conformance.client import Client, EvidenceLog, TargetUnavailable
from conformance.world import CONTEXT_KEY, RunContext, new_run_id

_REFERENCE_KEY = pytest.StashKey[Any]()
DEFAULT_TOKEN_ENV = "ICS_ADMIN_TOKEN"
DEFAULT_TIMEOUT = 10.0


def _opt(config: pytest.Config, name: str) -> Any:
    from conformance.plugin import _option

    return _option(config, name)


def _admin_token(config: pytest.Config) -> str | None:
    token_file = _opt(config, "ics_token_file")
    if token_file:
        path = Path(token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise pytest.UsageError(f"--ics-token-file {path}: cannot read ({exc.strerror})") from None
        if not token:
            raise pytest.UsageError(f"--ics-token-file {path}: file is empty")
        return token
    env = _opt(config, "ics_token_env") or DEFAULT_TOKEN_ENV
    return os.environ.get(env) or None


def preflight(url: str, timeout: float) -> dict[str, Any]:
    """Read ``GET /about``; exit INCONCLUSIVE (3) if the target is unreachable or not an ICS API."""
    try:
        with Client(url, timeout=timeout) as client:
            response = client.get("/about")
    except TargetUnavailable as exc:
        pytest.exit(f"ics-conformance: INCONCLUSIVE: target {url} unreachable: {exc}", returncode=3)
    try:
        about = response.json()
    except ValueError:
        about = None
    if response.status_code != 200 or not isinstance(about, dict) or "spec_versions" not in about:
        pytest.exit(
            f"ics-conformance: INCONCLUSIVE: {url}/about answered HTTP {response.status_code} "
            "without an ICS about document; is this an ICS API?",
            returncode=3,
        )
    return about


def configure(config: pytest.Config) -> None:
    """Establish the RunContext (starting the built-in reference when no target is given)."""
    if hasattr(config, "workerinput") and "ics_context" in config.workerinput:  # xdist worker
        data = dict(config.workerinput["ics_context"])
        from conformance.capabilities import CapabilityStatement

        data["capabilities"] = CapabilityStatement(data["capabilities"])
        data["faults"] = tuple(data["faults"])
        config.stash[CONTEXT_KEY] = RunContext(**data)
        return
    timeout = config.getoption("ics_timeout", default=None) or DEFAULT_TIMEOUT
    url = _opt(config, "ics_target")
    faults = tuple(config.getoption("ics_reference_faults", default=None) or ())
    builtin = url is None
    if builtin:
        from conformance.reference import serve

        token = secrets.token_urlsafe(24)
        manager = serve(faults=faults, admin_token=token)
        service = manager.__enter__()
        config.stash[_REFERENCE_KEY] = manager
        url = service.url
    else:
        if faults:
            raise pytest.UsageError("--ics-reference-fault applies only to the built-in reference (no --ics-target)")
        token = _admin_token(config)
        if not token:
            raise pytest.UsageError(
                "no admin credential: set the ICS_ADMIN_TOKEN environment variable or pass --ics-token-file FILE"
            )
    about = preflight(url, timeout)
    from conformance.capabilities import from_about, load_capabilities, merge

    statement = from_about(about.get("capabilities") or {})
    cap_file = _opt(config, "ics_capabilities")
    if cap_file:
        statement = merge(statement, load_capabilities(Path(cap_file)))
    seed = config.getoption("ics_seed", default=None)
    config.stash[CONTEXT_KEY] = RunContext(
        target_url=url,
        admin_token=token,
        run_id=new_run_id(),
        phase=_opt(config, "ics_phase") or "1B",
        profile=_opt(config, "ics_profile") or "quick",
        capabilities=statement,
        about=about,
        timeout=float(timeout),
        builtin_reference=builtin,
        faults=faults,
        seed=seed,
    )


def unconfigure(config: pytest.Config) -> None:
    manager = config.stash.get(_REFERENCE_KEY, None)
    if manager is not None:
        manager.__exit__(None, None, None)


def make_evidence_log(config: pytest.Config) -> EvidenceLog:
    """Evidence redacted at capture: credentials always, personal data unless the target is the built-in reference."""
    context = config.stash.get(CONTEXT_KEY, None)
    try:
        from conformance.redaction import Redactor
    except ImportError:
        return EvidenceLog()
    redactor = Redactor.for_target(builtin_reference=bool(context and context.builtin_reference))
    return EvidenceLog(redact_body=redactor.body, redact_headers=redactor.headers, redact_text=redactor.text)
