"""Session set-up for the plugin: target, credentials, pre-flight, run context.

Imported only when a run asks for ICS checks, so that merely installing the plugin
costs nothing. Under xdist the controller does all of this once and hands the
serialisable context to the workers (:func:`configure_node`); the admin token travels
in memory over the xdist channel only, and is never printed nor written to disk.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.certificate.redaction import Redactor, set_active
from conformance.checking.client import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    Client,
    EvidenceLog,
    InFlight,
    TargetUnavailable,
    check_base_url,
    parse_size,
)
from conformance.checking.world import CONTEXT_KEY, RunContext, new_run_id
from conformance.plugin.options import PENDING_KEY

_REFERENCE_KEY = pytest.StashKey[Any]()
_PEER_REFERENCE_KEY = pytest.StashKey[Any]()
_TRANSPORT_KEY = pytest.StashKey[dict[str, httpx.BaseTransport]]()
_ADAPTER_KEY = pytest.StashKey[Any]()
DEFAULT_TOKEN_ENV = "ICS_ADMIN_TOKEN"
DEFAULT_PEER_TOKEN_ENV = "ICS_PEER_ADMIN_TOKEN"
#: Councils of the two built-in references of a pair run (named in their transfer packages).
PAIR_COUNCILS = ("Council A", "Council B")
DEFAULT_TIMEOUT = 10.0
#: Largest seed drawn when none is given (short enough to copy by hand).
_SEED_RANGE = 1_000_000


def _opt(config: pytest.Config, name: str) -> Any:
    from conformance.plugin.options import option as _option

    return _option(config, name)


def _admin_token(config: pytest.Config, prefix: str = "ics") -> str | None:
    """The admin token of the target (``prefix`` ``ics``) or of the peer (``ics_peer``): file, else environment."""
    token_file = _opt(config, f"{prefix}_token_file")
    option = "--" + prefix.replace("_", "-")
    if token_file:
        path = Path(token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise pytest.UsageError(f"{option}-token-file {path}: cannot read ({exc.strerror})") from None
        if not token:
            raise pytest.UsageError(f"{option}-token-file {path}: file is empty")
        return token
    default = DEFAULT_TOKEN_ENV if prefix == "ics" else DEFAULT_PEER_TOKEN_ENV
    env = _opt(config, f"{prefix}_token_env") or default
    return os.environ.get(env) or None


def timeout_of(config: pytest.Config) -> float:
    """``--ics-timeout`` / ini ``ics_timeout`` (default 10 s), validated."""
    raw = _opt(config, "ics_timeout")
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"ics_timeout: not a number of seconds: {raw!r}") from None
    if not value > 0:
        raise pytest.UsageError(f"ics_timeout: must be > 0 seconds, got {raw!r}")
    return value


def deadline_of(config: pytest.Config) -> float:
    """``--ics-deadline`` / ini ``ics_deadline`` (default 60 s), validated."""
    raw = _opt(config, "ics_deadline")
    if raw is None:
        return DEFAULT_DEADLINE
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"ics_deadline: not a number of seconds: {raw!r}") from None
    if not 0 < value < float("inf"):
        raise pytest.UsageError(f"ics_deadline: must be > 0 seconds, got {raw!r}")
    return value


def max_response_of(config: pytest.Config) -> int:
    """``--ics-max-response-bytes`` / ini ``ics_max_response_bytes`` (default 128M), validated."""
    raw = _opt(config, "ics_max_response_bytes")
    if raw is None:
        return DEFAULT_MAX_RESPONSE_BYTES
    try:
        return parse_size(raw)
    except ValueError as exc:
        raise pytest.UsageError(f"ics_max_response_bytes: {exc}") from None


#: Requests in flight to one target at once unless ``--ics-max-in-flight`` says otherwise: a browser's
#: connections per host, and enough for a quick run 50 ms away to take less than 1.5 times as long.
DEFAULT_MAX_IN_FLIGHT = 8


def max_in_flight_of(config: pytest.Config) -> int:
    """``--ics-max-in-flight`` / ini ``ics_max_in_flight`` (default 8), validated."""
    raw = _opt(config, "ics_max_in_flight")
    if raw is None:
        return DEFAULT_MAX_IN_FLIGHT
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"ics_max_in_flight: not a whole number: {raw!r}") from None
    if value < 1:
        raise pytest.UsageError(f"ics_max_in_flight: must be >= 1, got {raw!r}")
    return value


def seed_of(config: pytest.Config) -> int | None:
    """``--ics-seed`` / ini ``ics_seed``, validated (None: not given)."""
    raw = _opt(config, "ics_seed")
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"ics_seed: not an integer: {raw!r}") from None


def check_faults(faults: Sequence[str]) -> None:
    """Refuse unknown fault names (``pytest.UsageError`` naming them and the known ones)."""
    if not faults:
        return
    from conformance.reference import FAULTS

    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise pytest.UsageError(
            f"unknown reference fault(s): {', '.join(unknown)} (known: {', '.join(sorted(FAULTS))})"
        )


class PreflightError(Exception):
    """The target did not answer ``GET /about`` as an ICS API."""


class CredentialRefused(Exception):
    """The target refused the admin credential: a configuration error, not a finding."""


def preflight(
    url: str,
    timeout: float,
    admin_token: str | None = None,
    *,
    deadline: float = DEFAULT_DEADLINE,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """Read ``GET /about`` and, given an admin token, try it on ``GET /practitioners/me``.

    Raises :class:`PreflightError` if the target is unreachable or not an ICS API, and
    :class:`CredentialRefused` if it answers 401 to the admin token (every check would
    otherwise fail for a reason that is the operator's, not the supplier's).
    """
    try:
        with Client(
            url, timeout=timeout, deadline=deadline, max_response_bytes=max_response_bytes, transport=transport
        ) as client:
            response = client.get("/about")
            try:
                about = response.json()
            except ValueError:
                about = None
            if response.status_code != 200 or not isinstance(about, dict) or "spec_versions" not in about:
                raise PreflightError(
                    f"{url}/about answered HTTP {response.status_code} without an ICS about document; "
                    "is this an ICS API?"
                )
            if admin_token:
                me = client.get("/practitioners/me", token=admin_token)
                if me.status_code == 401:
                    raise CredentialRefused(
                        "the target refused the admin credential (GET /practitioners/me -> 401): "
                        "check ICS_ADMIN_TOKEN / the token file; no check was run"
                    )
    except TargetUnavailable as exc:
        raise PreflightError(f"target {url} unreachable: {exc}") from None
    return about


def configure(config: pytest.Config) -> None:
    """Establish the RunContext (starting the built-in reference when no target is given)."""
    if hasattr(config, "workerinput") and "ics_context" in config.workerinput:  # xdist worker
        data = dict(config.workerinput["ics_context"])
        from conformance.spec.capabilities import CapabilityStatement

        data["capabilities"] = CapabilityStatement(data["capabilities"])
        data["faults"] = tuple(data["faults"])
        data["peer_faults"] = tuple(data.get("peer_faults") or ())
        context = RunContext(**data)
        config.stash[CONTEXT_KEY] = context
        set_active(context.redactor())
        _load_profile(config, context)
        return
    timeout = timeout_of(config)
    deadline = deadline_of(config)
    max_response_bytes = max_response_of(config)
    phase = _opt(config, "ics_phase") or "1B"
    profile = _opt(config, "ics_profile") or "quick"
    seed = seed_of(config)
    if seed is None:
        seed = secrets.randbelow(_SEED_RANGE)
    url = _opt(config, "ics_target")
    if url is not None:
        try:
            url = check_base_url(url)
        except ValueError as exc:
            raise pytest.UsageError(f"--ics-target {exc}") from None
    faults = tuple(config.getoption("ics_reference_faults", default=None) or ())
    builtin = url is None
    run_id = new_run_id()
    pending: dict[str, Any] = {
        "run_id": run_id,
        "phase": phase,
        "profile": profile,
        "seed": seed,
        "faults": list(faults),
        "builtin_reference": builtin,
        "url": url,
        "started": time.time(),
    }
    config.stash[PENDING_KEY] = pending
    cap_file = _opt(config, "ics_capabilities")
    if cap_file and not Path(cap_file).is_file():
        raise pytest.UsageError(f"--ics-capabilities {cap_file}: no such file")
    from conformance.plugin.options import export_only

    adapter = _adapter(config, phase, builtin, export_only(config))
    if adapter is not None:
        pending["adapter"] = adapter.record
    if export_only(config):
        _configure_export_only(config, pending)
        return
    peer = _peer_plan(config, phase, builtin)
    token: str | None
    if builtin:
        check_faults(faults)
        from conformance.reference import serve

        token = secrets.token_urlsafe(24)
        manager = serve(faults=list(faults), admin_token=token, council=PAIR_COUNCILS[0] if peer else None)
        service = manager.__enter__()
        config.stash[_REFERENCE_KEY] = manager
        url = service.url
        pending["url"] = url
    else:
        if faults:
            raise pytest.UsageError("--ics-reference-fault applies only to the built-in reference (no --ics-target)")
        token = _admin_token(config)
        if not token:
            raise pytest.UsageError(
                "no admin credential: set the ICS_ADMIN_TOKEN environment variable or pass --ics-token-file FILE"
            )
    peer_fields = _start_peer(config, peer, timeout) if peer else {}
    try:
        about = preflight(
            url,
            timeout,
            None if builtin else token,
            deadline=deadline,
            max_response_bytes=max_response_bytes,
            transport=adapter.wrap(httpx.HTTPTransport(), max_response_bytes=max_response_bytes) if adapter else None,
        )
    except CredentialRefused as exc:
        raise pytest.UsageError(str(exc)) from None
    except PreflightError as exc:
        _inconclusive(config, f"pre-flight failed: {exc}")
    except Exception as exc:
        from conformance.adapters import AdapterError

        if not isinstance(exc, AdapterError):
            raise
        _inconclusive(config, f"pre-flight failed: {exc}")  # the adapter's failure, not the supplier's
    from conformance.errors import ConformanceError
    from conformance.spec.capabilities import (
        MAX_NOTIFICATION_LATENCY,
        from_about,
        load_capabilities,
        merge,
        weakening_refused,
    )

    try:
        statement = from_about(about.get("capabilities") or {})
        if cap_file:
            declared, statement = statement, merge(statement, load_capabilities(Path(cap_file)))
            refused = weakening_refused(declared, statement)
            if refused and not config.getoption("ics_allow_capability_override", default=False):
                raise pytest.UsageError(
                    _printable(f"capability statement refused: --ics-capabilities {cap_file}: {refused}")
                )
    except ConformanceError as exc:  # names the target's keys: escaped for the terminal
        raise pytest.UsageError(_printable(f"capability statement refused: {exc}")) from None
    latency = statement.get("notification_latency_seconds")
    if phase != "1A" and isinstance(latency, (int, float)) and latency > MAX_NOTIFICATION_LATENCY:
        _inconclusive(
            config,
            f"configuration refused: notification_latency_seconds {latency} is above the harness maximum of "
            f"{MAX_NOTIFICATION_LATENCY} s (the notification checks would wait that long per note); "
            "declare a smaller bound, or override it with --capabilities",
        )
    context = RunContext(
        target_url=url,
        admin_token=token,
        run_id=run_id,
        phase=phase,
        profile=profile,
        capabilities=statement,
        about=about,
        timeout=float(timeout),
        deadline=deadline,
        max_response_bytes=max_response_bytes,
        builtin_reference=builtin,
        faults=faults,
        seed=seed,
        max_in_flight=max_in_flight_of(config),
        adapter=adapter.record if adapter is not None else None,
        **peer_fields,
    )
    config.stash[CONTEXT_KEY] = context
    set_active(context.redactor())  # failure messages are redacted like evidence from the start
    _load_profile(config, context)


def _adapter(config: pytest.Config, phase: str, builtin: bool, export_alone: bool) -> Any:
    """The supplier adapter asked for with ``--ics-adapter`` (a ``LoadedAdapter``), or None."""
    name = _opt(config, "ics_adapter")
    if not name:
        return None
    if export_alone:
        raise pytest.UsageError("--ics-adapter translates API calls; an export judged alone (--ics-export) makes none")
    if builtin:
        raise pytest.UsageError(
            "--ics-adapter needs --ics-target: the built-in reference speaks the canonical API, not a native one"
        )
    from conformance.adapters.registry import load
    from conformance.errors import UsageError

    try:
        loaded = load(str(name), phase=phase)
    except UsageError as exc:
        raise pytest.UsageError(_printable(f"--ics-adapter: {exc}")) from None
    config.stash[_ADAPTER_KEY] = loaded
    return loaded


def _session_adapter(config: pytest.Config) -> Any:
    """The adapter of this process: the controller's, or (xdist worker) the same one loaded again and checked."""
    loaded = config.stash.get(_ADAPTER_KEY, None)
    if loaded is not None:
        return loaded
    context = config.stash.get(CONTEXT_KEY, None)
    record = getattr(context, "adapter", None)
    if not record:
        return None
    from conformance.adapters import AdapterError
    from conformance.adapters.registry import load

    loaded = load(str(record["name"]))
    if loaded.record["sha256"] != record["sha256"]:
        raise AdapterError(
            f"adapter {record['name']}: its source changed during the run (sha256 {loaded.record['sha256']}, "
            f"the run started with {record['sha256']})"
        )
    config.stash[_ADAPTER_KEY] = loaded
    return loaded


def _peer_plan(config: pytest.Config, phase: str, builtin_target: bool) -> dict[str, Any] | None:
    """The peer of a pair run: ``{"url": URL}`` (external), ``{"faults": (...)}`` (built-in), or None.

    A pair run is phase 1C: the default with the built-in reference as target, or asked
    for with ``--ics-peer-target`` / ``--ics-peer-reference`` / ``--ics-peer-reference-fault``.
    """
    url = _opt(config, "ics_peer_target")
    faults = tuple(config.getoption("ics_peer_reference_faults", default=None) or ())
    asked = bool(config.getoption("ics_peer_reference", default=False)) or bool(faults)
    if (url or asked) and phase != "1C":
        raise pytest.UsageError(
            "a peer (--ics-peer-target, --ics-peer-reference, --ics-peer-reference-fault) is for phase 1C pair runs "
            f"(inter-council transfer); this run is phase {phase}"
        )
    if url and asked:
        raise pytest.UsageError(
            "--ics-peer-reference and --ics-peer-reference-fault apply to the built-in peer (no --ics-peer-target)"
        )
    if url:
        if not str(url).startswith(("http://", "https://")):
            raise pytest.UsageError(f"--ics-peer-target {url!r}: expected an http:// or https:// URL")
        return {"url": str(url)}
    if asked or (builtin_target and phase == "1C"):
        check_faults(faults)
        return {"faults": faults}
    return None


def _start_peer(config: pytest.Config, peer: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Start (built-in) or reach (external) the peer; the RunContext fields describing it."""
    pending = config.stash[PENDING_KEY]
    if "url" in peer:
        url = peer["url"]
        token = _admin_token(config, "ics_peer")
        if not token:
            raise pytest.UsageError(
                "no admin credential for the peer: set the ICS_PEER_ADMIN_TOKEN environment variable "
                "(or --ics-peer-token-env VAR) or pass --ics-peer-token-file FILE"
            )
        builtin, faults = False, ()
    else:
        from conformance.reference import serve

        token = secrets.token_urlsafe(24)
        faults = tuple(peer["faults"])
        manager = serve(faults=list(faults), admin_token=token, council=PAIR_COUNCILS[1])
        url = manager.__enter__().url
        config.stash[_PEER_REFERENCE_KEY] = manager
        builtin = True
    pending["peer"] = {"url": url, "builtin_reference": builtin, "faults": list(faults)}
    try:
        about = preflight(url, timeout, None if builtin else token)
    except CredentialRefused as exc:
        raise pytest.UsageError(f"the peer: {exc}") from None
    except PreflightError as exc:
        message = f"INCONCLUSIVE: pre-flight of the peer failed: {exc}"
        from conformance.plugin import collect as _collect

        _collect.preflight_failed(config, message)
        pytest.exit(f"ics-conformance: {message}", returncode=3)
    from conformance.errors import ConformanceError
    from conformance.spec.capabilities import from_about

    try:
        statement = from_about(about.get("capabilities") or {})
    except ConformanceError as exc:
        raise pytest.UsageError(f"the peer's capability statement refused: {exc}") from None
    return {
        "peer_url": url,
        "peer_admin_token": token,
        "peer_about": about,
        "peer_capabilities": statement.to_dict(),
        "peer_builtin_reference": builtin,
        "peer_faults": faults,
    }


def _inconclusive(config: pytest.Config, reason: str) -> None:
    """End the session before any check: an INCONCLUSIVE result naming ``reason`` (exit 3)."""
    message = f"INCONCLUSIVE: {reason}"
    from conformance.plugin import collect as _collect

    _collect.preflight_failed(config, message)
    pytest.exit(f"ics-conformance: {_printable(message)}", returncode=3)


def _printable(text: str) -> str:
    from conformance.results.text import printable

    return printable(text)


def _configure_export_only(config: pytest.Config, pending: dict[str, Any]) -> None:
    """An export file judged alone: no target, no reference service, no credential."""
    export = Path(str(_opt(config, "ics_export")))
    if not export.exists():
        raise pytest.UsageError(f"--ics-export {export}: no such file or directory")
    if _opt(config, "ics_export_format"):
        from conformance.errors import UsageError
        from conformance.export.mapping import load_format

        try:
            load_format(str(_opt(config, "ics_export_format")))  # a bad mapping is a usage error, before any check
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None
    from conformance.export.extensions import declared_capabilities
    from conformance.spec.capabilities import CapabilityStatement

    pending["url"] = None
    context = RunContext(
        target_url="",
        admin_token="",
        run_id=pending["run_id"],
        phase=pending["phase"],
        profile=pending["profile"],
        capabilities=CapabilityStatement(declared_capabilities(export)),
        about={},
        timeout=timeout_of(config),
        deadline=deadline_of(config),
        max_response_bytes=max_response_of(config),
        builtin_reference=False,
        faults=(),
        seed=pending["seed"],
        export_only=True,
    )
    config.stash[CONTEXT_KEY] = context
    _load_profile(config, context)


def _load_profile(config: pytest.Config, context: RunContext) -> None:
    from conformance.plugin import profiles as _profiles

    _profiles.activate(config, context.profile, context.seed)


def configure_node(config: pytest.Config, workerinput: dict[str, Any]) -> None:
    """Put the serialisable run context into an xdist worker's ``workerinput``."""
    context = config.stash.get(CONTEXT_KEY, None)
    if context is None:
        return
    data = {f.name: getattr(context, f.name) for f in fields(context)}
    data["capabilities"] = context.capabilities.to_dict()
    data["faults"] = list(context.faults)
    data["peer_faults"] = list(context.peer_faults)
    workerinput["ics_context"] = data
    from conformance.plugin import profiles as _profiles

    storage = _profiles.storage_dir(config)
    if storage is not None:
        workerinput[_profiles.STORAGE_INPUT] = storage


def unconfigure(config: pytest.Config) -> None:
    from conformance.plugin import profiles as _profiles

    _profiles.deactivate(config)
    for key in (_REFERENCE_KEY, _PEER_REFERENCE_KEY):
        manager = config.stash.get(key, None)
        if manager is not None:
            del config.stash[key]
            manager.__exit__(None, None, None)


def make_evidence_log(config: pytest.Config) -> EvidenceLog:
    """Evidence redacted at capture: credentials always, personal data unless the target is the built-in reference."""
    context = config.stash.get(CONTEXT_KEY, None)
    redactor = run_redactor(context)
    set_active(redactor)
    return EvidenceLog(redact_body=redactor.body, redact_headers=redactor.headers, redact_text=redactor.text)


def run_redactor(context: RunContext | None) -> Redactor:
    """The run's redactor (:meth:`RunContext.redactor`; credentials only before a context exists)."""
    return context.redactor() if context is not None else Redactor("none")


def make_transport(config: pytest.Config, side: str = "target") -> httpx.BaseTransport:
    """The session's (per process) circuit-breaking transport to the target, or to the peer (``side="peer"``).

    With ``--ics-adapter`` the target's is the supplier adapter wrapping the circuit breaker.
    """
    transports = config.stash.get(_TRANSPORT_KEY, None)
    if transports is None:
        transports = config.stash[_TRANSPORT_KEY] = {}
    if side not in transports:
        context = config.stash.get(CONTEXT_KEY, None)
        limit = context.max_in_flight if context is not None else None
        workers = int(getattr(config, "workerinput", {}).get("workercount", 1) or 1)
        if limit is not None and workers > 1:
            limit = max(1, limit // workers)  # xdist: the workers share the target's bound
        adapter = _session_adapter(config) if side == "target" else None
        breaker = BreakerTransport(in_flight=InFlight(limit))
        transports[side] = (
            adapter.wrap(breaker, max_response_bytes=max_response_of(config)) if adapter is not None else breaker
        )
    return transports[side]


class BreakerTransport(httpx.BaseTransport):
    """An httpx transport that stops waiting on a target that stopped answering.

    After ``threshold`` consecutive transport errors (refused, reset, timed out) the
    circuit opens: requests fail at once with ``httpx.ConnectError`` (hence
    :class:`TargetUnavailable`, hence ERROR) instead of each waiting for its timeout, so
    a dead or hanging target cannot stall the run (nor Hypothesis' shrinking). Every
    ``probe_interval`` seconds one request is let through; a success closes the circuit.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        *,
        threshold: int = 3,
        probe_interval: float = 5.0,
        in_flight: InFlight | None = None,
    ) -> None:
        self._inner = inner or httpx.HTTPTransport()
        #: the bound on requests in flight to this side (the clients using this transport share it)
        self.in_flight = in_flight or InFlight()
        self.threshold = threshold
        self.probe_interval = probe_interval
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._opened_at is not None:
                if time.monotonic() - self._opened_at < self.probe_interval:
                    raise httpx.ConnectError(
                        f"target stopped answering ({self._failures} consecutive transport errors); not retried",
                        request=request,
                    )
                self._opened_at = time.monotonic()  # let this one through as a probe
        try:
            response = self._inner.handle_request(request)
        except httpx.TransportError:
            with self._lock:
                self._failures += 1
                if self._failures >= self.threshold:
                    self._opened_at = time.monotonic()
            raise
        with self._lock:
            self._failures = 0
            self._opened_at = None
        return response

    def note_failure(self) -> None:
        """Count a failure the client saw above the transport (a deadline or size bound exceeded)."""
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold:
                self._opened_at = time.monotonic()

    def close(self) -> None:
        self._inner.close()
