"""``ics-conformance certify``: run the built-in conformance suites and certify a phase.

Runs the suites in-process through ``pytest.main`` with the plugin (no test files of the
user's own; a user's ``conftest.py`` or ini file in the working directory is ignored),
shows progress, prints the phase verdict with a per-area summary, and writes the run
directory ``OUTPUT/ics-<phase>-<UTC timestamp>-<run id>/`` holding ``result.json``,
``pytest.log`` (credentials removed) and, when the bundle module is available, the
certification bundle (signed with ``--sign-key``; waivers applied with ``--waivers``).

Exit codes: 0 CERTIFIED, 1 NOT CERTIFIED, 2 usage or configuration error, 3 INCONCLUSIVE,
130 interrupted by SIGINT (Ctrl-C), 143 interrupted by SIGTERM.

Every output and key argument is checked before the first check runs (a bad ``--output``
or ``--sign-key`` is a usage error, not 40 seconds of work thrown away). An interrupted
run says so on the terminal and in ``result.json``, writes no bundle, and leaves no
temporary files (pytest's temporary directories live inside the run's own temporary
directory, removed however the run ends) and no worker processes behind.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PHASES = ("1A", "1B", "1C")
PROFILES = ("quick", "certification")
TOKEN_ENV = "ICS_ADMIN_TOKEN"
PEER_TOKEN_ENV = "ICS_PEER_ADMIN_TOKEN"
#: Default xdist workers against the built-in reference: the checks run in worker processes,
#: the reference in this one, so client and server do not share one interpreter lock.
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))
#: Default requests in flight to a target at once (``--max-in-flight``).
DEFAULT_MAX_IN_FLIGHT = 8


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "certify",
        help="run the conformance suites against a target and certify a phase",
        description=(
            "Run the built-in conformance checks of a phase (cumulative: 1B includes 1A) against an ICS API "
            "and compute the phase verdict. With no --target the built-in reference service is certified "
            "(--reference-fault injects faults into it). The admin credential of a --target comes from "
            f"--token-file or the {TOKEN_ENV} environment variable and is never printed or written."
        ),
        epilog=(
            "Exit codes: 0 CERTIFIED, 1 NOT CERTIFIED, 2 usage or configuration error (also a refused admin "
            "credential), 3 INCONCLUSIVE, 130/143 interrupted (SIGINT/SIGTERM; no bundle is written)."
        ),
    )
    parser.add_argument(
        "--target", metavar="URL", help="base URL of the ICS API (default: the built-in reference service)"
    )
    parser.add_argument(
        "--adapter",
        metavar="NAME",
        help="reach the --target through the installed supplier adapter NAME, which maps the canonical API onto "
        "the target's native one (recorded on the certificate; `ics-conformance adapters` lists them)",
    )
    parser.add_argument("--phase", default="1B", choices=PHASES, help="phase to certify (default 1B)")
    parser.add_argument("--profile", default="quick", choices=PROFILES, help="Hypothesis budget (default quick)")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="where the run directory goes (default reports/)",
    )
    parser.add_argument(
        "--reference-fault",
        action="append",
        default=[],
        metavar="NAME",
        help="inject a fault into the built-in reference (repeatable)",
    )
    parser.add_argument(
        "--seed", type=int, metavar="N", help="seed for Hypothesis (default: random; recorded in result.json)"
    )
    parser.add_argument(
        "--capabilities", type=Path, metavar="FILE", help="capability statement overriding the target's /about"
    )
    parser.add_argument(
        "--allow-capability-override",
        action="store_true",
        help="run even when --capabilities switches off a capability the target declares (recorded on the certificate)",
    )
    parser.add_argument(
        "--token-file", type=Path, metavar="FILE", help=f"file holding the admin bearer token (else ${TOKEN_ENV})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="timeout of each network operation of an HTTP call (default 10)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        metavar="SECONDS",
        help="total time one HTTP exchange may take, body included (default 60); beyond it the check is ERROR",
    )
    parser.add_argument(
        "--max-response-size",
        metavar="BYTES",
        help="largest response accepted, e.g. 64M (default 128M); beyond it the check is ERROR",
    )
    pair = parser.add_argument_group(
        "pair runs (phase 1C)",
        "Transfer children between the target and a peer system both ways and judge both ends; every "
        "verdict names the side that broke the requirement. With no --target and no --peer-target, two "
        "built-in reference services are paired.",
    )
    pair.add_argument("--peer-target", metavar="URL", help="base URL of the peer ICS API")
    pair.add_argument(
        "--peer-token-env",
        metavar="VAR",
        help=f"environment variable holding the peer's admin bearer token (default {PEER_TOKEN_ENV})",
    )
    pair.add_argument("--peer-token-file", type=Path, metavar="FILE", help="file holding the peer's admin bearer token")
    pair.add_argument(
        "--peer-reference",
        action="store_true",
        help="pair the --target with the built-in reference service as peer",
    )
    pair.add_argument(
        "--peer-reference-fault",
        action="append",
        default=[],
        metavar="NAME",
        help="inject a fault into the built-in peer reference (repeatable; implies --peer-reference)",
    )
    parser.add_argument(
        "-n",
        "--workers",
        dest="workers",
        default=None,
        metavar="N",
        help="parallel worker processes (pytest-xdist; 'auto' or a number; 0 runs in this process; default "
        f"{DEFAULT_WORKERS} for the built-in reference, 0 for a --target, whose checks run on threads instead)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=DEFAULT_MAX_IN_FLIGHT,
        metavar="N",
        help="most HTTP requests in flight to the target at once (default "
        f"{DEFAULT_MAX_IN_FLIGHT}); with -n 0 independent checks run concurrently on N threads, each check's "
        "own steps in order, so a target far away costs little more time; 1 runs one check at a time",
    )
    parser.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="only checks matching the pytest -k expression (the verdict then covers only those)",
    )
    parser.add_argument("--sign-key", type=Path, metavar="FILE", help="Ed25519 private key (PEM) signing the bundle")
    parser.add_argument("--waivers", type=Path, metavar="FILE", help="signed waiver file")
    parser.add_argument("--waiver-key", type=Path, metavar="PUBFILE", help="certifier public key verifying --waivers")
    parser.add_argument(
        "--keyring",
        type=Path,
        metavar="FILE",
        help="trusted keys: names the --sign-key's party and role on the certificate (its assurance level) "
        "and finds the department key verifying --waivers",
    )
    parser.add_argument(
        "--council", metavar="NAME", help="council the run is for (recorded on the certificate; scopes waivers)"
    )
    local = parser.add_argument_group(
        "council local profile",
        "A council's local requirements, judged beside the national catalogue: the run reports the national "
        "phase verdict and the local verdict side by side, never merged (the exit code is the national verdict's).",
    )
    local.add_argument(
        "--local-profile",
        type=Path,
        metavar="FILE",
        help="council local profile (YAML, specs/schemas/local-profile.schema.json); recorded on the certificate",
    )
    local.add_argument(
        "--local-checks",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="the council's own pytest checks (file or directory), marked @pytest.mark.ics_local('LOCAL-...'); repeatable",
    )
    parser.add_argument(
        "--pdf", action="store_true", help="also write report.pdf: an A4 summary with page numbers (needs Chromium)"
    )
    parser.add_argument(
        "--pdf-evidence",
        action="store_true",
        help="with --pdf: add the failing checks' requests and responses to report.pdf as an appendix",
    )
    parser.add_argument("--no-bundle", action="store_true", help="write result.json only, no bundle")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


# --------------------------------------------------------------------------- checks


def _usage(message: str) -> Exception:
    from conformance.errors import UsageError

    return UsageError(message)


def _readable(path: Path | None, option: str) -> None:
    if path is not None and not path.is_file():
        raise _usage(f"{option} {path}: no such file")


def _validate_local(args: argparse.Namespace) -> None:
    """A bad local profile, or a council check naming an ID it does not define, is refused before anything runs."""
    if args.local_checks and args.local_profile is None:
        raise _usage("--local-checks needs --local-profile (the local requirements they judge)")
    if args.local_profile is None:
        return
    from conformance.plugin.local import undefined_ids
    from conformance.profiles import load_profile

    profile = load_profile(args.local_profile)
    for path in args.local_checks:
        undefined_ids(path.absolute(), profile.ids)


def _validate(args: argparse.Namespace) -> str | None:
    """Refuse a bad configuration before anything runs; return the external admin token, if any."""
    if args.reference_fault:
        if args.target:
            raise _usage("--reference-fault applies only to the built-in reference service (no --target)")
        try:
            from conformance.reference import FAULTS
        except ImportError:
            raise _usage("the built-in reference service is not part of this build") from None
        unknown = [f for f in args.reference_fault if f not in FAULTS]
        if unknown:
            raise _usage(f"unknown reference fault(s): {', '.join(unknown)} (known: {', '.join(sorted(FAULTS))})")
    _validate_peer(args)
    if args.workers is None:
        args.workers = "0" if args.target else str(DEFAULT_WORKERS)
    if args.max_in_flight < 1:
        raise _usage(f"--max-in-flight {args.max_in_flight}: must be >= 1")
    if args.adapter is not None:
        if not args.target:
            raise _usage("--adapter needs --target: the built-in reference speaks the canonical API, not a native one")
        from conformance.adapters.registry import load

        args.adapter_record = load(args.adapter, phase=args.phase).record  # UsageError: unknown, broken, phase
    if args.workers not in ("auto", "logical"):
        try:
            if int(args.workers) < 0:
                raise ValueError
        except ValueError:
            raise _usage(f"-n {args.workers}: expected a number of workers or 'auto'") from None
    if args.timeout is not None and not args.timeout > 0:
        raise _usage(f"--timeout {args.timeout}: must be > 0 seconds")
    if args.deadline is not None and not 0 < args.deadline < float("inf"):
        raise _usage(f"--deadline {args.deadline}: must be > 0 seconds")
    if args.max_response_size is not None:
        from conformance.checking.client import parse_size

        try:
            parse_size(args.max_response_size)
        except ValueError as exc:
            raise _usage(f"--max-response-size {exc}") from None
    for path, option in (
        (args.capabilities, "--capabilities"),
        (args.sign_key, "--sign-key"),
        (args.waivers, "--waivers"),
        (args.waiver_key, "--waiver-key"),
        (args.keyring, "--keyring"),
        (args.token_file, "--token-file"),
    ):
        _readable(path, option)
    _validate_local(args)
    if args.waiver_key and not args.waivers:
        raise _usage("--waiver-key verifies --waivers: give the waiver file too")
    if args.waivers and not (args.waiver_key or args.keyring):
        raise _usage("--waivers needs --waiver-key or --keyring (the waiver file is verified with the certifier's key)")
    if args.sign_key is not None:
        from conformance.certificate.signing import load_private_key

        load_private_key(args.sign_key)  # UsageError: wrong type, public key, encrypted, unreadable
    from conformance.cli import check_output_dir

    check_output_dir(args.output)
    if args.capabilities is not None:
        from conformance.spec.capabilities import load_capabilities

        load_capabilities(args.capabilities)  # UsageError when invalid
    token: str | None = None
    if args.target:
        from conformance.checking.client import check_base_url
        from conformance.results.text import printable

        try:
            args.target = check_base_url(args.target)
        except ValueError as exc:
            raise _usage(f"--target {printable(exc)}") from None
        if args.token_file is not None:
            token = args.token_file.read_text(encoding="utf-8").strip()
            if not token:
                raise _usage(f"--token-file {args.token_file}: file is empty")
        else:
            token = os.environ.get(TOKEN_ENV) or None
            if not token:
                raise _usage(f"no admin credential for --target: set {TOKEN_ENV} or pass --token-file FILE")
    return token


def _trust(args: argparse.Namespace) -> tuple[Any, Any]:
    """The keyring (if any) and the verified waiver file (if any), refused before anything runs."""
    from conformance.certificate.keyring import CERTIFIER_ROLE, load_keyring
    from conformance.certificate.signing import key_id, load_private_key, load_public_key
    from conformance.certificate.waivers import load_waivers, signer_key_id

    keyring = load_keyring(args.keyring) if args.keyring is not None else None
    if keyring is not None and args.sign_key is not None:
        ident = key_id(load_private_key(args.sign_key).public_key())
        if keyring.get(ident) is None:
            raise _usage(f"--sign-key {args.sign_key}: key {ident} is not in the keyring {args.keyring}")
    if args.waivers is None:
        return keyring, None
    if keyring is not None:
        ident = key_id(load_public_key(args.waiver_key)) if args.waiver_key else signer_key_id(args.waivers)
        entry = keyring.get(ident)
        if entry is None or entry.role != CERTIFIER_ROLE:
            who = entry.describe() if entry else f"key {ident}, which is not in the keyring"
            raise _usage(f"--waivers {args.waivers}: signed by {who}; only a {CERTIFIER_ROLE} key signs waivers")
        return keyring, load_waivers(args.waivers, entry.public_key)
    return keyring, load_waivers(args.waivers, args.waiver_key)


def _validate_peer(args: argparse.Namespace) -> None:
    """Refuse a pair-run configuration that cannot work (the peer's token is read by the plugin)."""
    asked = args.peer_target or args.peer_reference or args.peer_reference_fault
    if not asked:
        return
    if args.phase != "1C":
        raise _usage(
            "--peer-target, --peer-reference and --peer-reference-fault are for phase 1C pair runs (--phase 1C)"
        )
    if args.peer_target and (args.peer_reference or args.peer_reference_fault):
        raise _usage("--peer-reference and --peer-reference-fault apply to the built-in peer (no --peer-target)")
    if args.peer_reference_fault:
        from conformance.reference import FAULTS

        unknown = [f for f in args.peer_reference_fault if f not in FAULTS]
        if unknown:
            raise _usage(f"unknown reference fault(s): {', '.join(unknown)} (known: {', '.join(sorted(FAULTS))})")
    if args.peer_target:
        if not args.peer_target.startswith(("http://", "https://")):
            raise _usage(f"--peer-target {args.peer_target!r}: expected an http:// or https:// URL")
        _readable(args.peer_token_file, "--peer-token-file")
        env = args.peer_token_env or PEER_TOKEN_ENV
        if args.peer_token_file is None and not os.environ.get(env):
            raise _usage(f"no admin credential for --peer-target: set {env} or pass --peer-token-file FILE")


def _peer_args(args: argparse.Namespace, prefix: str) -> list[str]:
    """The pair-run options as ``--ics-peer-*`` (``prefix`` ``--ics-peer``) or as certify's own (``--peer``)."""
    out: list[str] = []
    if args.peer_target:
        out += [f"{prefix}-target", args.peer_target]
        if args.peer_token_file is not None:
            out += [f"{prefix}-token-file", str(args.peer_token_file)]
        if args.peer_token_env:
            out += [f"{prefix}-token-env", args.peer_token_env]
    if args.peer_reference:
        out += [f"{prefix}-reference"]
    for fault in args.peer_reference_fault:
        out += [f"{prefix}-reference-fault", fault]
    return out


def _pytest_args(args: argparse.Namespace, seed: int, report_dir: Path, work: Path) -> list[str]:
    from conformance.plugin.options import suites_dir

    ini = work / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    suites = str(suites_dir())
    argv = [
        suites,
        "-c",
        str(ini),
        "--rootdir",
        str(work),
        "--confcutdir",
        suites,
        "-p",
        "no:cacheprovider",
        "-q",
        "--tb=short",
        "--basetemp",
        str(work / "tmp"),  # pytest's temporary files (the bulk export among them) go with the run's
        "-o",
        "console_output_style=classic",
        # pytest plugins the suites do not need: each costs start-up time in every process
        "-p",
        "no:faker",
        "-p",
        "no:anyio",
        "-p",
        "no:schemathesis",
        "-p",
        "no:allure_pytest",
        "--ics-phase",
        args.phase,
        "--ics-profile",
        args.profile,
        "--ics-seed",
        str(seed),
        "--ics-report",
        str(report_dir),
        "--ics-heartbeat",
        "0",  # certify's own Progress keeps the terminal alive; pytest's output goes to a log
    ]
    if args.target:
        argv += ["--ics-target", args.target]
        if args.token_file is not None:
            argv += ["--ics-token-file", str(args.token_file)]
    if args.adapter is not None:
        argv += ["--ics-adapter", args.adapter]
    for fault in args.reference_fault:
        argv += ["--ics-reference-fault", fault]
    argv += _peer_args(args, "--ics-peer")
    if args.capabilities is not None:
        argv += ["--ics-capabilities", str(args.capabilities)]
    if args.allow_capability_override:
        argv += ["--ics-allow-capability-override"]
    argv += _local_args(args, "--ics-local")
    if args.timeout is not None:
        argv += ["--ics-timeout", str(args.timeout)]
    if args.deadline is not None:
        argv += ["--ics-deadline", str(args.deadline)]
    if args.max_response_size is not None:
        argv += ["--ics-max-response-bytes", str(args.max_response_size)]
    argv += ["--ics-max-in-flight", str(args.max_in_flight)]
    if args.keyword:
        argv += ["-k", args.keyword]
    if args.workers not in ("0", 0):
        argv += ["-n", str(args.workers)]
    return argv


def _reproduce_args(args: argparse.Namespace, seed: int) -> tuple[str, ...]:
    from conformance.certificate.redaction import Redactor

    out = ["--phase", args.phase, "--profile", args.profile, "--seed", str(seed)]
    if args.target:
        out += ["--target", Redactor("none").text(args.target)]
        if args.token_file is not None:
            out += ["--token-file", str(args.token_file)]
    if args.adapter is not None:
        out += ["--adapter", args.adapter]
    for fault in args.reference_fault:
        out += ["--reference-fault", fault]
    out += [Redactor("none").text(a) for a in _peer_args(args, "--peer")]
    if args.capabilities is not None:
        out += ["--capabilities", str(args.capabilities)]
    if args.allow_capability_override:
        out += ["--allow-capability-override"]
    out += _local_args(args, "--local")
    return tuple(out)


def _local_args(args: argparse.Namespace, prefix: str) -> list[str]:
    """``--local-profile`` / ``--local-checks`` (``prefix`` ``--local``) or their ``--ics-local-*`` twins, absolute."""
    out: list[str] = []
    if args.local_profile is not None:
        out += [f"{prefix}-profile", str(args.local_profile.absolute())]
    for path in args.local_checks:
        out += [f"{prefix}-checks", str(path.absolute())]
    return out


def _invocation_plugin(invocation: Any, interruption: _Interruption) -> Any:
    """A plugin object telling the verdict collector how ``certify`` was invoked (before configure)."""
    import pytest

    from conformance.plugin.collect import INVOCATION_KEY

    class InvocationPlugin:
        @pytest.hookimpl(tryfirst=True)
        def pytest_cmdline_main(self, config: pytest.Config) -> None:
            config.stash[INVOCATION_KEY] = invocation
            interruption.config = config

    return InvocationPlugin()


class _Interruption:
    """SIGINT / SIGTERM while certify runs: remembered, then raised as KeyboardInterrupt.

    pytest turns the KeyboardInterrupt into an interrupted session (its fixtures torn
    down, the built-in reference and xdist workers stopped); the collector records the
    signal's name in ``result.json``; ``certify`` exits 130 / 143 without a bundle.
    """

    CODES = {"SIGINT": 130, "SIGTERM": 143}

    def __init__(self) -> None:
        self.signal: str | None = None
        self.config: Any = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interruption:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (e.g. embedded): leave signals alone
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        first = self.signal is None
        self.signal = self.signal or signal.Signals(signum).name
        if self.config is not None:
            from conformance.plugin.collect import INTERRUPT_KEY

            self.config.stash[INTERRUPT_KEY] = self.signal
        if first:
            raise KeyboardInterrupt(self.signal)

    @property
    def exit_code(self) -> int:
        return self.CODES.get(self.signal or "SIGINT", 130)


def _scrub(text: str, secret: str | None, *, external: bool = False) -> str:
    """Free text for an artefact: the admin token and every token seen removed; for an external
    target also redacted like evidence (keyed-hash allow-list)."""
    from conformance.certificate.redaction import Redactor, scrub_secrets

    text = scrub_secrets(text, [secret] if secret else [])
    if secret:
        text = text.replace(secret, "[removed]")
    return Redactor.for_target(builtin_reference=not external).text(text)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


# --------------------------------------------------------------------------- running


def run(args: argparse.Namespace) -> int:
    """Entry point of ``ics-conformance certify``."""
    from conformance.plugin.collect import Invocation

    token = _validate(args)
    keyring, waiver_set = _trust(args)
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    command = " ".join(["ics-conformance certify", *(shlex.quote(a) for a in _rebuild_argv(args, seed))])
    invocation = Invocation(tool="certify", args=_reproduce_args(args, seed), command=_scrub(command, token))
    with _Interruption() as interruption:
        try:
            return _certify(args, token, seed, invocation, keyring, waiver_set, interruption)
        except KeyboardInterrupt:
            print(
                f"\nics-conformance: interrupted ({interruption.signal or 'SIGINT'}): no bundle written",
                file=sys.stderr,
            )
            return interruption.exit_code


def _certify(
    args: argparse.Namespace,
    token: str | None,
    seed: int,
    invocation: Any,
    keyring: Any,
    waiver_set: Any,
    interruption: _Interruption,
) -> int:
    import pytest

    from conformance.plugin.collect import ACCOUNTS_FILENAME, accounts_lines, summary_lines
    from conformance.plugin.progress import Progress
    from conformance.results.result import read_result, write_result

    out = sys.stdout
    external = bool(args.target)
    with tempfile.TemporaryDirectory(prefix="ics-certify-") as tmp:
        work = Path(tmp)
        staging = work / "report"
        log_path = work / "pytest.log"
        argv = _pytest_args(args, seed, staging, work)
        target = args.target or "the built-in reference service" + (
            f" with fault(s) {', '.join(args.reference_fault)}" if args.reference_fault else ""
        )
        target += _pair_text(args)
        if args.local_profile is not None:
            target += f", with the local profile {args.local_profile.name}"
        record = getattr(args, "adapter_record", None)
        if record is not None:
            from conformance.adapters.registry import describe_record

            target += f" through adapter {describe_record(record)}"
        if not args.quiet:
            print(
                f"certifying phase {args.phase} of {_scrub(target, token)} (profile {args.profile}, seed {seed})",
                file=out,
                flush=True,
            )
        progress = Progress(out, bar=False if args.quiet else None)
        plugins: list[Any] = [_invocation_plugin(invocation, interruption)]
        if not args.quiet:
            plugins.append(progress)
        saved = sys.stdout, sys.stderr
        with open(log_path, "w", encoding="utf-8") as log:
            sys.stdout = sys.stderr = log
            try:
                code = int(pytest.main(argv, plugins=plugins))
            finally:
                sys.stdout, sys.stderr = saved
        raw_log = log_path.read_text(encoding="utf-8", errors="replace")
        log_text = _scrub(raw_log, token, external=external)  # an artefact: redacted like evidence
        result_file = staging / "result.json"
        interrupted = interruption.signal is not None or code == pytest.ExitCode.INTERRUPTED
        if not result_file.is_file():
            if interrupted:
                raise KeyboardInterrupt
            return _no_result(code, _scrub(raw_log, token))  # the operator's terminal: credentials removed
        result = read_result(result_file)
        result["council"] = args.council
        if interrupted:
            result["verdict"] = "INCONCLUSIVE"
            if not any("interrupted" in str(e) for e in result.get("errors") or []):
                result.setdefault("errors", []).append(f"interrupted ({interruption.signal or 'SIGINT'})")
        elif waiver_set is not None:
            from conformance.certificate.waivers import apply_waivers

            finished = datetime.fromisoformat(str(result.get("finished_at")).replace("Z", "+00:00")).date()
            result = apply_waivers(
                result,
                waiver_set,
                target_about=(result.get("target") or {}).get("about") or {},
                council=args.council,
                today=finished,
            )
        run_dir = args.output / f"ics-{args.phase}-{_stamp()}-{result.get('run_id') or 'run'}"
        try:
            run_dir.mkdir(mode=0o700, parents=True, exist_ok=False)
            run_dir.chmod(0o700)  # evidence of a real target stays with the operator
        except OSError as exc:
            raise _usage(f"cannot create run directory {run_dir}: {exc.strerror}") from None
        write_result(result, run_dir)
        (run_dir / "pytest.log").write_text(log_text, encoding="utf-8")
        accounts = staging / ACCOUNTS_FILENAME
        if accounts.is_file():
            (run_dir / ACCOUNTS_FILENAME).write_bytes(accounts.read_bytes())
        bundle = None
        if not (args.no_bundle or interrupted):
            try:
                bundle = _write_bundle(result, run_dir, args, keyring, waiver_set)
            except KeyboardInterrupt:  # while the bundle was being written: none is left
                _drop_bundle(run_dir, result, interruption)
                raise
    print("", file=out)
    for line in summary_lines(result):
        print(line, file=out)
    if (run_dir / ACCOUNTS_FILENAME).is_file():
        import json

        listed = json.loads((run_dir / ACCOUNTS_FILENAME).read_text(encoding="utf-8")).get("accounts") or []
        for line in accounts_lines(listed):
            print(line, file=out)
    print(f"run directory: {run_dir}", file=out)
    if bundle is not None:
        signing = bundle.manifest.get("signing") or {}
        who = f" by {signing['party']} ({signing['role']})" if signing.get("party") else ""
        signed = f"{signing.get('assurance')}: signed{who}, key {bundle.key_id}" if bundle.signed else "unsigned"
        print(f"bundle: {bundle.directory} ({signed}); {bundle.zip_path}", file=out)
        print(f"report: {bundle.directory / 'report.html'}", file=out)
        if (bundle.directory / "report.pdf").is_file():
            print(f"report (PDF): {bundle.directory / 'report.pdf'}", file=out)
    out.flush()
    if interrupted:
        print(f"ics-conformance: interrupted ({interruption.signal or 'SIGINT'}): no bundle written", file=sys.stderr)
        return interruption.exit_code
    from conformance.results.verdicts import PhaseVerdict

    return PhaseVerdict(result.get("verdict", "INCONCLUSIVE")).exit_code


def _pair_text(args: argparse.Namespace) -> str:
    """How the start line names the peer of a pair run ("" when there is none)."""
    if args.phase != "1C":
        return ""
    if args.peer_target:
        return f", paired with {args.peer_target}"
    faults = f" with fault(s) {', '.join(args.peer_reference_fault)}" if args.peer_reference_fault else ""
    if args.peer_reference or args.peer_reference_fault or not args.target:
        return f", paired with a built-in reference service{faults}"
    return " (no peer: it imports its own transfer packages)"


def _drop_bundle(run_dir: Path, result: dict[str, Any], interruption: _Interruption) -> None:
    """An interruption while the bundle was written: remove what was written of it, and say so in result.json."""
    import shutil

    from conformance.plugin.collect import ACCOUNTS_FILENAME
    from conformance.results.result import write_result

    for entry in run_dir.iterdir():
        if entry.name in ("result.json", "pytest.log", ACCOUNTS_FILENAME):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    result["verdict"] = "INCONCLUSIVE"
    result.setdefault("errors", []).append(
        f"interrupted ({interruption.signal or 'SIGINT'}) while the bundle was written"
    )
    write_result(result, run_dir)


def _rebuild_argv(args: argparse.Namespace, seed: int) -> list[str]:
    """The command line of this run (with the seed actually used), for ``result.json``."""
    out = ["--phase", args.phase, "--profile", args.profile, "--seed", str(seed)]
    for option, value in (
        ("--target", args.target),
        ("--adapter", args.adapter),
        ("--capabilities", args.capabilities),
        ("--token-file", args.token_file),
        ("--output", args.output),
        ("-k", args.keyword),
        ("--sign-key", args.sign_key),
        ("--waivers", args.waivers),
        ("--waiver-key", args.waiver_key),
        ("--keyring", args.keyring),
        ("--council", args.council),
    ):
        if value is not None:
            out += [option, str(value)]
    for fault in args.reference_fault:
        out += ["--reference-fault", fault]
    if args.allow_capability_override:
        out += ["--allow-capability-override"]
    out += _peer_args(args, "--peer")
    for option, value in (("--local-profile", args.local_profile), *(("--local-checks", p) for p in args.local_checks)):
        if value is not None:
            out += [option, str(value)]
    if str(args.workers) != ("0" if args.target else str(DEFAULT_WORKERS)):
        out += ["-n", str(args.workers)]
    if args.max_in_flight != DEFAULT_MAX_IN_FLIGHT:
        out += ["--max-in-flight", str(args.max_in_flight)]
    return out


def _no_result(code: int, log_text: str) -> int:
    """pytest ended without a result.json: a configuration error (2) or a harness failure."""
    from conformance.results.text import printable

    lines = [line for line in log_text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR:", "E ", "Exit:", "INTERNALERROR>"))] or lines[-15:]
    detail = printable("\n".join(errors[-15:]), keep_newlines=True)
    if code == 4:  # pytest usage error
        print(f"ics-conformance: error: {detail}", file=sys.stderr)
        return 2
    print(f"ics-conformance: INCONCLUSIVE: the run produced no result (pytest exit {code}):\n{detail}", file=sys.stderr)
    return 3


def _write_bundle(
    result: dict[str, Any], run_dir: Path, args: argparse.Namespace, keyring: Any, waiver_set: Any
) -> Any:
    try:
        from conformance.certificate.bundle import write_bundle
    except ImportError:
        return None
    return write_bundle(
        result,
        run_dir,
        sign_key=args.sign_key,
        pdf=args.pdf or args.pdf_evidence,
        pdf_evidence=args.pdf_evidence,
        keyring=keyring,
        waiver_file=waiver_set.raw if waiver_set is not None else None,
        local_profile=_local_profile_bytes(args, result),
    )


def _local_profile_bytes(args: argparse.Namespace, result: dict[str, Any]) -> bytes | None:
    """The exact bytes of the local profile the run judged (they travel in the bundle), or None."""
    import hashlib

    block = result.get("local_profile")
    if args.local_profile is None or not isinstance(block, dict):
        return None
    try:
        raw = args.local_profile.read_bytes()
    except OSError as exc:
        raise _usage(f"--local-profile {args.local_profile}: cannot read it again ({exc.strerror})") from None
    if hashlib.sha256(raw).hexdigest() != block.get("sha256"):
        raise _usage(f"--local-profile {args.local_profile}: the file changed during the run; no bundle written")
    return raw
