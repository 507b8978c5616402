"""Verdict collection: the plugin object that turns pytest outcomes into check verdicts.

Registered by :mod:`conformance.plugin` only when a run asks for ICS checks (in the
manner of pytest-xdist's and pytest-html's plugin objects). Per design.md section 7:

=====================================================  ==================================
outcome                                                 verdict
=====================================================  ==================================
call passed                                             PASS
``RequirementFailure`` (any phase)                      FAIL, for the IDs it names
other ``AssertionError`` in the call                    FAIL, for all the check's IDs
Hypothesis group of failures (all assertions)           FAIL, union of the IDs
Hypothesis ``Flaky`` anywhere in the chain              ERROR (the target is unreliable)
any other exception, setup/teardown errors              ERROR
``not_applicable()`` skip (``NOT_APPLICABLE:`` prefix)  NOT_APPLICABLE
other skips                                             SKIPPED
=====================================================  ==================================

The verdict is computed where the check runs (``pytest_runtest_makereport``) and rides
on the teardown report: a short summary in ``report.user_properties`` (``ics_verdict``,
``ics_requirements``: visible in JUnit XML) and the full serialisable check result in
the report attribute ``ics_check`` (like pytest-html's ``report.extras``), which pytest
serialises with the report, so it travels from xdist workers. The controller collects
them in ``pytest_runtest_logreport`` and writes ``result.json`` at session finish.
"""

from __future__ import annotations

import re
import shlex
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conformance.checking.checks import NOT_APPLICABLE_PREFIX, RequirementFailure
from conformance.checking.world import CONTEXT_KEY, DURATION_KEY, EVIDENCE_KEY
from conformance.plugin.reproduce import Invocation, judges_export
from conformance.results.result import CheckResult, build_result, write_result
from conformance.results.verdicts import Verdict

#: The run's result document (``result.json`` content), once built.
RESULT_KEY = pytest.StashKey[dict[str, Any]]()
#: The signal that interrupted the run (set by ``certify``'s signal handler), e.g. ``"SIGTERM"``.
INTERRUPT_KEY = pytest.StashKey[str]()
#: Where a plain pytest run writes result.json and report.html without --ics-report.
DEFAULT_REPORTS = "reports"
REPORT_FILENAME = "report.html"
#: File beside result.json listing the practitioner accounts the run created on the target.
ACCOUNTS_FILENAME = "accounts-created.json"
#: How the run was invoked, for ``command`` and the reproduce lines (set by ``certify``).
INVOCATION_KEY = pytest.StashKey["Invocation"]()
_STATE_KEY = pytest.StashKey["_CheckState"]()

MESSAGE_LINES = 60
MESSAGE_CHARS = 8000
_REQ_ID = re.compile(r"ICS-[0-9][A-Z]-[A-Z]+-[0-9]{3}")
_BLOB = re.compile(r"@reproduce_failure\([^)]*\)")
_KINDS = ("scenario", "property", "contract", "export")


# --------------------------------------------------------------------------- markers


def register_markers(config: pytest.Config) -> None:
    """Register the area and kind markers so ``--strict-markers`` accepts them."""
    from conformance.spec.catalogue import AREAS

    for area in sorted(set(AREAS.values())):
        config.addinivalue_line("markers", f"{area}: ICS checks of the '{area}' area (added by ics-conformance)")
    for kind in _KINDS:
        if kind not in AREAS.values():
            config.addinivalue_line("markers", f"{kind}: ICS checks of kind '{kind}' (added by ics-conformance)")


# --------------------------------------------------------------------------- verdicts


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for inner in exc.exceptions:
            out.extend(_leaves(inner))
        return out
    return [exc]


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes/contexts and group members (bounded, cycle-safe)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 200:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    return seen


def _is_flaky(exc: BaseException) -> bool:
    try:
        from hypothesis.errors import Flaky
    except ImportError:  # pragma: no cover - hypothesis is a dependency
        return False
    return any(isinstance(e, Flaky) for e in _chain(exc))


def _text(exc: BaseException) -> str:
    if isinstance(exc, RequirementFailure):
        head = str(exc)
    elif isinstance(exc, AssertionError):
        head = str(exc) or "assertion failed"
    else:
        head = f"{type(exc).__name__}: {exc}"
    notes = [n for n in getattr(exc, "__notes__", ()) or () if isinstance(n, str)]
    return "\n".join([head, *notes]) if notes else head


def _text_without_notes(exc: BaseException) -> str:
    if isinstance(exc, RequirementFailure):
        return exc.message
    return str(exc) or type(exc).__name__


def _clip(text: str) -> str:
    lines = text.strip().splitlines()
    if len(lines) > MESSAGE_LINES:
        lines = lines[:MESSAGE_LINES] + [f"... ({len(lines) - MESSAGE_LINES} more lines)"]
    text = "\n".join(lines)
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS] + " ..."
    return text


def classify(exc: BaseException, when: str, requirements: tuple[str, ...]) -> tuple[Verdict, tuple[str, ...], str]:
    """Verdict, blamed requirement IDs (FAIL only) and message of an exception raised in ``when``."""
    if _is_flaky(exc):
        return Verdict.ERROR, (), "the target gave unreliable results (Hypothesis: Flaky): " + _text(exc)
    leaves = _leaves(exc)
    failures = [
        e for e in leaves if isinstance(e, RequirementFailure) or (when == "call" and isinstance(e, AssertionError))
    ]
    if not failures:
        texts = [_text(e) for e in leaves]
        prefix = "" if when == "call" else f"error in {when}: "
        return Verdict.ERROR, (), prefix + "\n\n".join(texts)
    blamed: list[str] = []
    for failure in failures:
        ids = failure.requirements if isinstance(failure, RequirementFailure) else requirements
        blamed.extend(i for i in ids if i not in blamed)
    others = [e for e in leaves if not any(e is f for f in failures)]
    text = "\n\n".join(_text(e) for e in failures)
    if others:
        text += "\n\nalso raised: " + "\n".join(_text(e) for e in others)
    if len(leaves) == 1 and getattr(exc, "__notes__", None) and exc is not leaves[0]:
        text += "\n" + "\n".join(exc.__notes__)
    return Verdict.FAIL, tuple(blamed), text


def passed_siblings(exc: BaseException, requirements: tuple[str, ...], blamed: tuple[str, ...]) -> tuple[str, ...]:
    """The check's requirements a lone :class:`RequirementFailure` declares judged and met.

    Only a single failure can vouch for its siblings; when several failures were raised
    (a Hypothesis group) nothing is vouched for.
    """
    leaves = _leaves(exc)
    if len(leaves) != 1 or not isinstance(leaves[0], RequirementFailure):
        return ()
    return tuple(r for r in leaves[0].passed if r in requirements and r not in blamed)


@dataclass
class _CheckState:
    """What one check accumulated over its setup, call and teardown."""

    requirements: tuple[str, ...]
    kind: str
    verdict: Verdict | None = None
    failed: tuple[str, ...] = ()
    passed: tuple[str, ...] = ()  # of a FAIL: siblings the check judged in full and found met
    messages: list[str] = field(default_factory=list)
    duration: float = 0.0
    evidence: list[dict[str, Any]] = field(default_factory=list)
    blob: str | None = None
    details: list[Any] = field(default_factory=list)
    #: a check of the run's local profile (``ics_local`` marker): it may blame local requirements only
    local: bool = False

    def settle(self, verdict: Verdict, failed: tuple[str, ...], message: str | None) -> None:
        """Record a phase outcome; the first FAIL/ERROR/skip decides, later problems only add text."""
        if message:
            self.messages.append(message)
        if self.verdict is None or self.verdict is Verdict.PASS:
            self.verdict = verdict
            self.failed = failed


def _marker_info(item: pytest.Item) -> tuple[tuple[str, ...], str] | None:
    marker = item.get_closest_marker("ics")
    if marker is None:
        return None
    return tuple(marker.kwargs.get("requirements", ())), str(marker.kwargs.get("kind", "scenario"))


def canonical_nodeid(nodeid: str) -> str:
    """A node ID without the ``@group`` suffix xdist's ``loadgroup`` adds (same IDs with -n 0 and -n N)."""
    head, sep, group = nodeid.rpartition("@")
    return head if sep and "::" in head and not any(ch in group for ch in "/:[]") else nodeid


#: Scheduling weight of a check kind under xdist: heavier kinds are handed out first.
_KIND_WEIGHT = {"contract": 2, "property": 1}


def _selector(item: pytest.Item) -> str:
    """A ``-k`` expression selecting exactly this check."""
    module = Path(str(getattr(item, "path", "") or "")).name
    return f"{module} and {item.name}" if module else item.name


# --------------------------------------------------------------------------- the plugin


class VerdictCollector:
    """Collects check verdicts and writes ``result.json`` (controller side)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: dict[str, CheckResult] = {}
        #: the ``-k`` selector of each check that reported (for reproduce commands)
        self.selectors: dict[str, str] = {}
        self.started: dict[str, dict[str, Any]] = {}
        self.collection_errors: list[str] = []
        #: problems of the local part alone (they never touch the national verdict)
        self.local_errors: list[str] = []
        #: IDs of the checks that judged local requirements (``ics_local`` marker)
        self._local_nodeids: set[str] = set()
        self.deselected_out_of_phase = 0
        #: built-in checks of the phase deselected by the user (-k, -m, --deselect, addopts)
        self.deselected_checks: set[str] = set()
        self._phase_drops: set[int] = set()
        self.started_at = datetime.now(UTC)
        self._catalogue: Any = None
        self._redactor: Any = None
        #: practitioner accounts the checks created on the target (id, role), from every worker
        self.accounts: list[dict[str, Any]] = []

    # -- helpers ------------------------------------------------------------------------
    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def catalogue(self) -> Any:
        if self._catalogue is None:
            from conformance.spec.catalogue import load_catalogue

            self._catalogue = load_catalogue()
        return self._catalogue

    def phase(self) -> str:
        context = self.config.stash.get(CONTEXT_KEY, None)
        if context is not None:
            return context.phase
        from conformance.plugin.options import option as _option

        return _option(self.config, "ics_phase") or "1B"

    def session_configured(self) -> None:
        """Called by the plugin once the run context is established."""

    def _secrets(self) -> tuple[str, ...]:
        context = self.config.stash.get(CONTEXT_KEY, None)
        return (context.admin_token, context.peer_admin_token) if context is not None else ()

    def redactor(self) -> Any:
        """The run's redactor (keyed-hash allow-list for an external target)."""
        if self._redactor is None:
            from conformance.certificate.redaction import Redactor

            context = self.config.stash.get(CONTEXT_KEY, None)
            self._redactor = context.redactor() if context is not None else Redactor("none")
        return self._redactor

    def _scrub(self, text: str) -> str:
        """Free text from a check or the target: the admin tokens and seen tokens removed, redacted as evidence."""
        from conformance.certificate.redaction import scrub_secrets

        secrets = [s for s in self._secrets() if s]
        text = scrub_secrets(text, secrets)
        for secret in secrets:  # a short admin token: still never shown
            if secret in text:
                text = text.replace(secret, "[removed]")
        return self.redactor().text(text)

    def _redact_report(self, report: pytest.TestReport) -> None:
        """pytest's own account of a check (traceback, captured output) redacted like its message."""
        longrepr = report.longrepr
        if longrepr is not None:
            if isinstance(longrepr, tuple) and len(longrepr) == 3:
                report.longrepr = (longrepr[0], longrepr[1], self._scrub(str(longrepr[2])))
            else:
                report.longrepr = self._scrub(str(report.longreprtext))
        if report.sections:
            report.sections = [(title, self._scrub(content)) for title, content in report.sections]

    # -- collection ---------------------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        marker = metafunc.definition.get_closest_marker("ics")
        if marker is None:
            return
        reqs = tuple(marker.kwargs.get("requirements", ()))
        unknown = [r for r in reqs if r not in self.catalogue]
        if not reqs or unknown:
            hints = []
            for rid in unknown:
                close = self.catalogue.suggest(rid)
                hints.append(f"{rid!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
            what = "names unknown requirement(s) " + ", ".join(hints) if unknown else "names no requirement"
            raise pytest.Collector.CollectError(
                f"ICS check {metafunc.definition.nodeid} {what} (spec {self.catalogue.spec_version})"
            )

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """Do not even collect a built-in suite module of a later phase than the run's (1C checks in a 1B run)."""
        from conformance.plugin.options import suite_phase, suites_dir
        from conformance.spec.catalogue import phase_includes

        if collection_path.parent != suites_dir():
            return None
        from conformance.plugin.local import LOCAL_SUITE, profile_of

        if collection_path.name == LOCAL_SUITE and profile_of(self.config) is None:
            return True  # no local profile: no local checks
        later = suite_phase(collection_path.name)
        return True if later is not None and not phase_includes(self.phase(), later) else None

    @pytest.hookimpl(tryfirst=True)  # before -k / -m deselection, which reads the markers added here
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        phase = self.phase()

        keep: list[pytest.Item] = []
        drop: list[pytest.Item] = []
        from conformance.plugin.local import LOCAL_SUITE, marker_info

        for item in items:
            info = _marker_info(item)
            if info is None:
                if Path(str(getattr(item, "path", ""))).name == LOCAL_SUITE and marker_info(item) is None:
                    continue  # a generic local check with no requirement of its kind in the profile
                keep.append(item)
                continue
            requirements, kind = info
            known = [self.catalogue.get(r) for r in requirements if r in self.catalogue]
            if known and not any(r.in_phase(phase) for r in known):
                drop.append(item)
                continue
            for req in known:
                item.add_marker(req.area)
            item.add_marker(kind)
            item.extra_keyword_matches.update(requirements)
            keep.append(item)
        if drop:
            self.deselected_out_of_phase += len(drop)
            self._phase_drops = {id(item) for item in drop}
            config.hook.pytest_deselected(items=drop)
            self._phase_drops = set()
        # Start the long checks (Schemathesis, stateful machines) first so that they do not end
        # up as the run's tail, and take the bulk export last, after the records of every other
        # check (a reproduce command relies on it). Every xdist worker sorts identically (stable
        # sort), as xdist requires.
        keep.sort(
            key=lambda it: (
                judges_export(it.nodeid),
                -_KIND_WEIGHT.get((_marker_info(it) or ((), ""))[1], 0),
            )
        )
        items[:] = keep

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        """Checks of the phase deselected by -k / -m / --deselect make the run a subset."""
        for item in items:
            if id(item) not in self._phase_drops and _marker_info(item) is not None:
                self.deselected_checks.add(item.nodeid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist: a worker's deselections (it collected; the controller did not)."""
        output = getattr(node, "workeroutput", None) or {}
        self.deselected_checks.update(output.get("ics_deselected", ()))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            text = str(report.longreprtext or "").strip().splitlines()
            message = f"collection error in {report.nodeid or 'session'}: {' | '.join(text[-5:])}"
            if self._is_local_path(report.nodeid):
                self.local_errors.append(message)  # the council's own checks: the local verdict's problem
            else:
                self.collection_errors.append(message)

    def _is_local_path(self, nodeid: str) -> bool:
        from conformance.plugin.local import local_check_paths

        where = (self.config.rootpath / nodeid.split("::")[0]).resolve()
        return any(where == p or p in where.parents for p in (q.resolve() for q in local_check_paths(self.config)))

    # -- running (where the check runs: -n 0 or an xdist worker) ------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        from conformance.plugin.local import marker_info as local_marker_info

        info = _marker_info(item)
        local = info is None and local_marker_info(item) is not None
        if local:
            info = local_marker_info(item)
        if info is None:
            return report
        state = item.stash.get(_STATE_KEY, None)
        if state is None:
            state = item.stash[_STATE_KEY] = _CheckState(*info, local=local)
            if local:
                self._local_ids_known(state)
        ran_ahead = item.stash.get(DURATION_KEY, None) if report.when == "call" else None
        state.duration += float(ran_ahead if ran_ahead is not None else report.duration or 0.0)
        self._judge_phase(item, call, report, state)
        if report.when == "call" and report.failed and state.verdict is Verdict.FAIL and call.excinfo is not None:
            self._explain_failure(item, report, state, call.excinfo.value)
        if report.when == "setup":
            report.user_properties.append(("ics_requirements", " ".join(state.requirements)))
        if report.when == "teardown":
            result = self._finish(item, state)
            report.ics_check = result
            report.user_properties.extend(
                [("ics_requirements", " ".join(result["requirements"])), ("ics_verdict", result["verdict"])]
            )
            from conformance.certificate.redaction import seen_secrets
            from conformance.checking.client import drain_accounts

            # in memory only (the xdist channel): the controller scrubs its own output with them
            report.ics_seen = {"secrets": sorted(seen_secrets()), "accounts": drain_accounts()}
        self._redact_report(report)
        return report

    def _judge_phase(
        self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport, state: _CheckState
    ) -> None:
        when = report.when
        if hasattr(report, "wasxfail"):
            state.settle(Verdict.ERROR, (), "xfail is not used by conformance checks")
            return
        if report.skipped:
            reason = self._skip_reason(call, report)
            if reason.startswith(NOT_APPLICABLE_PREFIX):
                state.settle(Verdict.NOT_APPLICABLE, (), reason[len(NOT_APPLICABLE_PREFIX) :])
            else:
                state.settle(Verdict.SKIPPED, (), reason)
            return
        if report.passed:
            if when == "call":
                state.settle(Verdict.PASS, (), None)
            return
        exc = call.excinfo.value if call.excinfo is not None else None
        if exc is None:  # failed without an exception object (should not happen)
            state.settle(Verdict.ERROR, (), f"{when} failed: {report.longreprtext[:2000]}")
            return
        verdict, blamed, message = classify(exc, when, state.requirements)
        if verdict is Verdict.FAIL:
            attributed = self._attribute(state, blamed)
            if attributed is None:
                verdict, blamed = Verdict.ERROR, ()
                held = "the local profile" if state.local else "the catalogue"
                message = f"the check blamed requirement IDs {held} does not hold:\n" + message
            else:
                blamed = attributed
        if state.verdict in (None, Verdict.PASS):
            log = item.stash.get(EVIDENCE_KEY, None)
            if log is not None:
                state.evidence = log.items()
            blob = _BLOB.search("\n".join(str(n) for e in _chain(exc) for n in (getattr(e, "__notes__", None) or ())))
            state.blob = blob.group(0) if blob else None
            details = [getattr(e, "details", None) for e in _leaves(exc)]
            state.details = [d for d in details if d is not None]
        first = state.verdict in (None, Verdict.PASS)
        state.settle(verdict, blamed or (), message)
        if first and verdict is Verdict.FAIL:
            state.passed = passed_siblings(exc, state.requirements, blamed or ())

    def _explain_failure(
        self, item: pytest.Item, report: pytest.TestReport, state: _CheckState, exc: BaseException
    ) -> None:
        """A FAILed check's report shows the requirement, the observation, the steps and a rerun command
        (:mod:`conformance.plugin.failure_view`), unless ``--tb=long`` / ``--tb=native`` asks for the traceback."""
        from conformance.plugin.failure_view import FULL_TRACEBACK_STYLES, failure_text

        if str(self.config.getoption("tbstyle", "auto")) in FULL_TRACEBACK_STYLES:
            return
        failures: list[BaseException] = [e for e in _leaves(exc) if isinstance(e, AssertionError)] or [exc]
        notes = [n for e in _chain(exc) for n in (getattr(e, "__notes__", None) or ()) if isinstance(n, str)]
        requirements = []
        for rid in state.failed or state.requirements:
            if rid in self.catalogue:
                req = self.catalogue.get(rid)
                requirements.append((rid, req.level, req.title, req.statement))
        log = item.stash.get(EVIDENCE_KEY, None)
        report.longrepr = failure_text(
            nodeid=canonical_nodeid(item.nodeid),
            requirements=requirements,
            observed="\n\n".join(_text_without_notes(e) for e in failures),
            notes=list(dict.fromkeys(notes)),
            evidence=log.items() if log is not None else [],
            rerun=self.invocation().reproduce(_selector(item), canonical_nodeid(item.nodeid)),
        )

    def _local_ids(self) -> frozenset[str]:
        from conformance.plugin.local import profile_of

        profile = profile_of(self.config)
        return profile.ids if profile is not None else frozenset()

    def _local_ids_known(self, state: _CheckState) -> None:
        """A local check naming no ID, or one its profile does not define, is an ERROR of the local part."""
        unknown = [r for r in state.requirements if r not in self._local_ids()]
        if unknown or not state.requirements:
            what = f"names local requirement(s) {', '.join(unknown)}" if unknown else "names no local requirement"
            state.settle(Verdict.ERROR, (), f"the check {what} the profile does not define")

    def _attribute(self, state: _CheckState, blamed: tuple[str, ...]) -> tuple[str, ...] | None:
        """Blamed IDs, adding known ones the check did not declare; None if any is unknown.

        A national check blames catalogue requirements only, a local check local ones only.
        """
        known = self._local_ids() if state.local else self.catalogue
        if any(r not in known for r in blamed):
            return None
        extra = tuple(r for r in blamed if r not in state.requirements)
        if extra:
            state.requirements = state.requirements + extra
        return blamed

    @staticmethod
    def _skip_reason(call: pytest.CallInfo[None], report: pytest.TestReport) -> str:
        exc = call.excinfo.value if call.excinfo is not None else None
        msg = getattr(exc, "msg", None)
        if isinstance(msg, str):
            return msg
        longrepr = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            return str(longrepr[2]).removeprefix("Skipped: ")
        return str(longrepr or "skipped")

    def _finish(self, item: pytest.Item, state: _CheckState) -> dict[str, Any]:
        verdict = state.verdict or Verdict.ERROR
        messages = (
            state.messages if state.verdict is not None else [*state.messages, "the check did not run to completion"]
        )
        message = _clip(self._scrub("\n\n".join(messages))) if messages else None
        failed = state.failed if verdict is Verdict.FAIL else ()
        evidence = state.evidence if verdict in (Verdict.FAIL, Verdict.ERROR) else []
        properties = {k: str(v) for k, v in item.user_properties if isinstance(k, str) and k.startswith("ics_")}
        side = properties.pop("ics_side", None)
        log = item.stash.get(EVIDENCE_KEY, None)
        context = self.config.stash.get(CONTEXT_KEY, None)
        counted = log is not None and not (context is not None and context.export_only)
        result = CheckResult(
            id=canonical_nodeid(item.nodeid),
            requirements=state.requirements,
            kind=state.kind,
            verdict=verdict,
            failed_requirements=failed if set(failed) != set(state.requirements) else (),
            passed_requirements=state.passed
            if verdict is Verdict.FAIL and set(failed) != set(state.requirements)
            else (),
            message=message,
            duration=round(state.duration, 3),
            reproduce=None,
            evidence=evidence,
            side=side,
            requests=log.take_requests() if counted and log is not None else None,
        ).to_json()
        result["selector"] = _selector(item)
        if state.local:
            result["local"] = True
        if state.blob and verdict in (Verdict.FAIL, Verdict.ERROR):
            result["hypothesis_blob"] = state.blob
        if state.details and verdict in (Verdict.FAIL, Verdict.ERROR):
            result["details"] = self.redactor().details(state.details)
        if properties:
            result["properties"] = properties
        return result

    # -- controller ---------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        data = getattr(report, "ics_check", None)
        seen = getattr(report, "ics_seen", None)
        if isinstance(seen, dict):
            from conformance.certificate.redaction import remember_secret

            for secret in seen.get("secrets") or ():
                remember_secret(secret)
            self.accounts.extend(a for a in seen.get("accounts") or () if isinstance(a, dict))
        if report.when == "setup":
            for name, value in report.user_properties:
                if name == "ics_requirements":
                    self.started[report.nodeid] = {
                        "requirements": tuple(str(value).split()),
                        "duration": report.duration,
                    }
        if isinstance(data, dict):
            check = self._to_check(data)
            if data.get("local"):
                self._local_nodeids.add(check.id)
            self.results[check.id] = check
            self.started.pop(report.nodeid, None)

    def _reproduce_export_failures(self, checks: Sequence[CheckResult]) -> None:
        """An export check's failure may come from records other checks made: its reproduce command runs the
        run's failing checks with it (:mod:`conformance.plugin.reproduce`)."""
        failing = [c for c in checks if c.verdict is Verdict.FAIL and not judges_export(c.id)]
        together = [(self.selectors.get(c.id, c.id), c.id) for c in failing]
        for check in checks:
            if check.verdict in (Verdict.FAIL, Verdict.ERROR) and judges_export(check.id) and together:
                check.reproduce = self.invocation().reproduce(
                    self.selectors.get(check.id, check.id), check.id, together=together
                )

    def _to_check(self, data: dict[str, Any]) -> CheckResult:
        check = CheckResult.from_json(data)
        self.selectors[check.id] = str(data.get("selector") or check.id)
        if check.verdict in (Verdict.FAIL, Verdict.ERROR):
            check.reproduce = self.invocation().reproduce(self.selectors[check.id], check.id)
        extra = data.get("properties")
        if extra:
            note = "; ".join(f"{k}={v}" for k, v in sorted(extra.items()))
            check.message = f"{check.message}\n[{note}]" if check.message else f"[{note}]"
        return check

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """xdist: a worker died while running ``crashitem``: that check is ERROR."""
        started = self.started.pop(crashitem, None)
        requirements = tuple(started["requirements"]) if started else tuple(dict.fromkeys(_REQ_ID.findall(crashitem)))
        if requirements:
            self.results[canonical_nodeid(crashitem)] = CheckResult(
                id=canonical_nodeid(crashitem),
                requirements=requirements,
                kind="scenario",
                verdict=Verdict.ERROR,
                message="the xdist worker running this check crashed",
                reproduce=self.invocation().reproduce(crashitem.rsplit("::", 1)[-1], crashitem),
            )

    def invocation(self) -> Invocation:
        invocation = self.config.stash.get(INVOCATION_KEY, None)
        if invocation is None:
            invocation = self.config.stash[INVOCATION_KEY] = pytest_invocation(self.config)
        return invocation

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            self.config.workeroutput["ics_deselected"] = sorted(self.deselected_checks)  # type: ignore[attr-defined]
            return
        if RESULT_KEY in self.config.stash:
            return
        context = self.config.stash.get(CONTEXT_KEY, None)
        if context is None:
            return
        for nodeid, started in self.started.items():  # began but never reported a verdict
            self.results.setdefault(
                canonical_nodeid(nodeid),
                CheckResult(
                    id=canonical_nodeid(nodeid),
                    requirements=tuple(started["requirements"]),
                    kind="scenario",
                    verdict=Verdict.ERROR,
                    message="the check did not finish (session interrupted)",
                ),
            )
        checks = sorted(self.results.values(), key=lambda c: c.id)
        local_ids = self._local_ids()
        local_checks = [c for c in checks if c.requirements and set(c.requirements) <= local_ids]
        for check in checks:  # never in the national roll-up, whatever they name
            if check.id in self._local_nodeids and check not in local_checks:
                self.local_errors.append(
                    f"local check {check.id} names {', '.join(check.requirements) or 'nothing'}: "
                    "not requirement(s) of the local profile"
                )
        checks = [c for c in checks if c not in local_checks and c.id not in self._local_nodeids]
        self._reproduce_export_failures(checks)
        # The channels judged are those of the run, not of the checks that happened to run:
        # a run against a target always has the export channel in scope (its bulk export is
        # fetched through the API; without bulk_export those requirements are NOT_APPLICABLE),
        # so that a -k / -m subset keeps the same in-scope requirements as the whole run.
        channels = ["export"] if context.export_only else ["api", "export"]
        errors = list(self.collection_errors)
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        if interrupted:
            signal_name = self.config.stash.get(INTERRUPT_KEY, None) or "KeyboardInterrupt"
            errors.append(f"interrupted ({signal_name}): the run was stopped before every check had finished")
        elif session.shouldfail or session.shouldstop:
            errors.append(f"session stopped early: {session.shouldfail or session.shouldstop}")
        result = build_result(
            phase=context.phase,
            channels=channels,
            checks=checks,
            target=_target(context, self.config),
            capabilities=context.capabilities.to_dict(),
            profile=context.profile,
            seed=context.seed,
            run_id=context.run_id,
            started_at=self.started_at,
            finished_at=datetime.now(UTC),
            command=self.invocation().command,
            errors=[self._scrub(e) for e in errors],
            peer=_peer(context),
        )
        if context.adapter:
            result["adapter"] = dict(context.adapter)
        selection = subset_selection(self.config, len(self.deselected_checks))
        if selection is not None:
            result["selection"] = dict(selection, **subset_result(result["requirements"]))
        if interrupted:
            result["verdict"] = "INCONCLUSIVE"  # a partial run is never judged
        from conformance.plugin.side_effects import side_effects

        effects = side_effects(result)
        if effects:
            result["side_effects"] = effects
        result["target"]["about"] = self._about(result["target"].get("about"))
        from conformance.plugin.local import profile_of

        profile = profile_of(self.config)
        if profile is not None:
            from conformance.profiles.verdict import local_block

            local_errors = [self._scrub(e) for e in dict.fromkeys(self.local_errors)]
            if interrupted:
                local_errors.append("interrupted: the local checks did not all finish")
            result["local_profile"] = local_block(profile, local_checks, result, local_errors)
        self.config.stash[RESULT_KEY] = result
        report_dir = _report_dir(self.config)
        if report_dir is not None:
            write_result(result, report_dir)
            if self.accounts and not context.builtin_reference:
                write_accounts(self.accounts, report_dir)
            if self.invocation().tool == "pytest":  # certify renders its report into the bundle
                _write_report(result, report_dir, str(self.redactor().policy))

    def _about(self, about: Any) -> Any:
        """The target's ``/about``: its identity as sent, anything else redacted like evidence."""
        if not isinstance(about, dict):
            return about
        known = ("supplier", "product", "version", "spec_versions", "capabilities")
        out = {k: about[k] for k in known if k in about}
        extra = {k: v for k, v in about.items() if k not in known}
        if extra:
            out.update(self.redactor().body(extra))
        return out

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        result = config.stash.get(RESULT_KEY, None)
        if result is None or self.is_worker:
            return
        terminalreporter.section("ICS conformance", sep="=")
        for line in summary_lines(result):
            terminalreporter.write_line(line)
        context = config.stash.get(CONTEXT_KEY, None)
        if context is not None and not context.builtin_reference:
            for line in accounts_lines(self.accounts):
                terminalreporter.write_line(line)
        report_dir = _report_dir(config)
        if report_dir is not None:
            terminalreporter.write_line(f"result: {(report_dir / 'result.json').resolve()}")
            if (report_dir / REPORT_FILENAME).is_file():
                terminalreporter.write_line(f"report: {(report_dir / REPORT_FILENAME).resolve()}")


# --------------------------------------------------------------------------- shared


def pytest_invocation(config: pytest.Config) -> Invocation:
    """The invocation of a plain ``pytest`` run (what to type to re-run a check)."""
    from conformance.certificate.redaction import Redactor
    from conformance.plugin.options import option as _option

    context = config.stash.get(CONTEXT_KEY, None)
    args: list[str] = []
    if context is not None:
        if context.export_only:
            args += ["--ics-export", str(_option(config, "ics_export"))]
            if _option(config, "ics_export_format"):
                args += ["--ics-export-format", str(_option(config, "ics_export_format"))]
        elif not context.builtin_reference:
            args += ["--ics-target", Redactor("none").text(context.target_url)]
        if context.adapter:
            args += ["--ics-adapter", str(context.adapter["name"])]
        args += ["--ics-phase", context.phase, "--ics-profile", context.profile]
        for fault in context.faults:
            args += ["--ics-reference-fault", fault]
        caps = _option(config, "ics_capabilities")
        if caps:
            args += ["--ics-capabilities", str(caps)]
        local_profile = _option(config, "ics_local_profile")
        if local_profile:
            args += ["--ics-local-profile", str(local_profile)]
        for path in config.getoption("ics_local_checks", default=None) or ():
            args += ["--ics-local-checks", str(path)]
        if context.seed is not None:
            args += ["--ics-seed", str(context.seed)]
    raw = " ".join(shlex.quote(str(a)) for a in config.invocation_params.args)
    command = Redactor("none").text(f"pytest {raw}".strip())
    from conformance.plugin.options import explicit_paths as _explicit_paths

    return Invocation(tool="pytest", args=tuple(args), command=command, explicit_paths=_explicit_paths(config))


def _report_dir(config: pytest.Config) -> Path | None:
    """``--ics-report DIR``; by default ``reports/pytest-<phase>-<run id>/`` (under the current directory)."""
    from conformance.plugin.options import PENDING_KEY
    from conformance.plugin.options import option as _option

    value = _option(config, "ics_report")
    if value:
        return Path(value)
    pending = config.stash.get(PENDING_KEY, None)
    if pending is None or not pending.get("run_id"):
        return None
    return Path(DEFAULT_REPORTS) / f"pytest-{pending.get('phase', '1B')}-{pending['run_id']}"


def _write_report(result: dict[str, Any], directory: Path, redaction: str) -> None:
    """``report.html`` beside ``result.json`` for a plain pytest run (as in a bundle, unsigned).

    The result is already redacted at capture (evidence, messages), so is its report.
    """
    from conformance.certificate.report import render_html

    (directory / REPORT_FILENAME).write_text(
        render_html(result, bundle_info={"redaction": redaction}), encoding="utf-8"
    )


def _target(context: Any, config: pytest.Config) -> dict[str, Any]:
    from conformance.certificate.redaction import Redactor
    from conformance.plugin.options import option as _option

    export = _option(config, "ics_export")
    return {
        "url": None if context.export_only else Redactor("none").text(context.target_url),
        "builtin_reference": bool(context.builtin_reference),
        "faults": list(context.faults),
        "about": context.about,
        "export": str(export) if export else None,
    }


def _peer(context: Any) -> dict[str, Any] | None:
    """The peer of a pair run for ``build_result`` (None: no pair)."""
    from conformance.certificate.redaction import Redactor

    if not context.paired:
        return None
    return {
        "target": {
            "url": Redactor("none").text(context.peer_url),
            "builtin_reference": bool(context.peer_builtin_reference),
            "faults": list(context.peer_faults),
            "about": context.peer_about,
            "export": None,
        },
        "capabilities": dict(context.peer_capabilities),
    }


def preflight_failed(config: pytest.Config, message: str) -> dict[str, Any]:
    """Record an INCONCLUSIVE result for a target that failed pre-flight (and write it)."""
    from conformance.certificate.redaction import Redactor
    from conformance.plugin.options import PENDING_KEY

    pending = config.stash.get(PENDING_KEY, {})
    invocation = config.stash.get(INVOCATION_KEY, None) or pytest_invocation(config)
    started = datetime.fromtimestamp(pending.get("started", time.time()), UTC)
    url = pending.get("url")
    result = build_result(
        phase=pending.get("phase", "1B"),
        channels=["api"],
        checks=[],
        target={
            "url": Redactor("none").text(url) if url else None,
            "builtin_reference": bool(pending.get("builtin_reference")),
            "faults": list(pending.get("faults", [])),
            "about": None,
            "export": None,
        },
        capabilities={},
        profile=pending.get("profile"),
        seed=pending.get("seed"),
        run_id=pending.get("run_id"),
        started_at=started,
        finished_at=datetime.now(UTC),
        command=invocation.command,
        errors=[message],
    )
    result["verdict"] = "INCONCLUSIVE"
    if pending.get("adapter"):
        result["adapter"] = dict(pending["adapter"])
    from conformance.plugin.local import profile_of

    profile = profile_of(config)
    if profile is not None:  # the local part could not be judged either
        from conformance.profiles.verdict import local_block

        result["local_profile"] = local_block(profile, [], result, ["no local check ran: " + message])
    config.stash[RESULT_KEY] = result
    report_dir = _report_dir(config)
    if report_dir is not None:
        write_result(result, report_dir)
    return result


def subset_selection(config: pytest.Config, deselected: int) -> dict[str, Any] | None:
    """How ``-k`` / ``-m`` / ``--deselect`` narrowed the checks (``deselected`` of them), or None for a whole run."""
    if not deselected:
        return None
    keyword = str(config.getoption("keyword", "") or "")
    markexpr = str(config.getoption("markexpr", "") or "")
    deselect = [str(d) for d in (config.getoption("deselect", None) or [])]
    return {"subset": True, "keyword": keyword or None, "markexpr": markexpr or None, "deselect": deselect}


def subset_result(requirements: list[dict[str, Any]]) -> dict[str, Any]:
    """The subset's own result: the roll-up over the requirements its checks judged.

    The phase verdict of a subset stays the roll-up over every in-scope requirement, so it
    is INCONCLUSIVE by design (MUSTs no check reached are NOT_RUN) unless a MUST failed.
    """
    from conformance.results.result import roll_up

    judged = [r for r in requirements if r.get("checks")]
    verdict, counts, _ = roll_up(judged)
    value = verdict.value if judged else "INCONCLUSIVE"  # nothing judged proves nothing
    return {"judged": len(judged), "in_scope": len(requirements), "verdict": value, "counts": counts}


def write_accounts(accounts: list[dict[str, Any]], directory: Path) -> Path:
    """Write the accounts the run created (``id``, ``role``; never a token) beside result.json."""
    import json

    path = Path(directory) / ACCOUNTS_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "note": (
            "practitioner accounts this run created on the target. The canonical ICS API has no operation to "
            "disable or delete an account, so the harness could not disable them: ask the target's "
            "administrator to disable them (their tokens were never written anywhere)."
        ),
        "disabled": False,
        "accounts": accounts,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def accounts_lines(accounts: list[dict[str, Any]]) -> list[str]:
    """What the operator is told about the accounts the run created (empty when none)."""
    if not accounts:
        return []
    from conformance.results.text import printable

    roles = Counter(str(a.get("role")) for a in accounts)
    summary = ", ".join(f"{n} {printable(role)}" for role, n in sorted(roles.items()))
    return [
        f"  accounts: the run created {len(accounts)} practitioner account(s) on the target ({summary}); "
        "the ICS API offers no way to disable them, so they were NOT disabled: "
        f"they are listed (id and role) in {ACCOUNTS_FILENAME} for the target's administrator"
    ]


def area_table(result: dict[str, Any]) -> list[tuple[str, dict[str, int]]]:
    """Per-area requirement verdict counts, in area order."""
    return [(area, dict(counts)) for area, counts in sorted((result.get("areas") or {}).items())]


_EXPORT_WORDS = {"CERTIFIED": "CONFORMANT", "NOT CERTIFIED": "NOT CONFORMANT"}
_ORDER = ("PASS", "FAIL", "ERROR", "WAIVED", "NOT_APPLICABLE", "SKIPPED", "NOT_RUN")


def _system(target: dict[str, Any]) -> str:
    about = target.get("about") or {}
    council = about.get("council") if isinstance(about, dict) else None
    where = target.get("url") or "?"
    faults = target.get("faults") or []
    extra = f", fault(s) {', '.join(faults)}" if faults else ""
    return f"{where}{f' ({council})' if council else ''}{extra}"


def adapter_lines(result: dict[str, Any]) -> list[str]:
    """The supplier adapter the target was reached through (empty without one)."""
    from conformance.results.result import adapter_text
    from conformance.results.text import printable

    text = adapter_text(result)
    if not text:
        return []
    return [f"  tested through adapter {printable(text)}: the target's native API, translated by the adapter"]


def pair_lines(result: dict[str, Any]) -> list[str]:
    """A pair run: each side with its verdict and, per side, the requirements it broke."""
    peer = result.get("peer")
    if not isinstance(peer, dict):
        return []

    def broke(requirements: list[dict[str, Any]]) -> str:
        failed = [r["id"] for r in requirements if r.get("verdict") in ("FAIL", "ERROR")]
        return f" - broke {', '.join(failed)}" if failed else ""

    target_verdict = str(result.get("verdict", "")).replace("_", " ")
    peer_verdict = str(peer.get("verdict", "")).replace("_", " ")
    return [
        "  pair run (transfers both ways, each side judged on its own part):",
        f"    target {_system(result.get('target') or {})}: {target_verdict}{broke(result.get('requirements') or [])}",
        f"    peer   {_system(peer.get('target') or {})}: {peer_verdict}{broke(peer.get('requirements') or [])}",
    ]


def failure_lines(result: dict[str, Any]) -> list[str]:
    """One line per failing requirement (root causes first, side effects marked) and the first line of its message."""
    from conformance.results.result import blamed_checks
    from conformance.results.text import headline, printable

    effects = result.get("side_effects") or {}
    failing = [r for r in result.get("requirements") or [] if r.get("verdict") in ("FAIL", "ERROR")]
    failing.sort(key=lambda r: (r["id"] in effects, r.get("verdict") != "FAIL"))
    lines: list[str] = []
    for req in failing:
        rid = str(req["id"])
        cause = f"  [side effect of {', '.join(effects[rid])}]" if rid in effects else ""
        lines.append(f"  {req['verdict']}: {rid}  {printable(req.get('title'))}{cause}")
        message = next((c.get("message") for c in blamed_checks(req) if c.get("message")), None)
        if message:
            lines.append(f"      {printable(headline(message))}")
    return lines


def request_lines(result: dict[str, Any]) -> list[str]:
    """The run's HTTP request count, with the busiest areas (empty when none was counted)."""
    requests = result.get("requests")
    if not isinstance(requests, dict) or not isinstance(requests.get("total"), int):
        return []
    areas = sorted((requests.get("areas") or {}).items(), key=lambda kv: (-int(kv[1]), kv[0]))
    busiest = ", ".join(f"{area} {count:,}" for area, count in areas[:4])
    return [f"  HTTP requests: {requests['total']:,}" + (f" (most: {busiest})" if busiest else "")]


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The verdict, then one line per area, then the failing and erroring requirements."""
    verdict = str(result.get("verdict", "INCONCLUSIVE")).replace("_", " ")
    scope = f"Phase {result.get('phase')}" + (" (DRAFT)" if result.get("draft") else "")
    if result.get("channels") == ["export"]:
        # An export judged alone is not a certification of the system: the same word
        # as `ics-conformance validate-export` (CONFORMANT / NOT CONFORMANT).
        scope += " export"
        verdict = _EXPORT_WORDS.get(verdict, verdict)
    if any(str(e).startswith("interrupted") for e in result.get("errors") or []):
        verdict += " (interrupted: the run was stopped before every check had finished)"
    lines = [
        f"{scope}: {verdict}   (run {result.get('run_id')}, profile {result.get('profile')}, seed {result.get('seed')})"
    ]
    selection = result.get("selection")
    if selection:
        given = [
            f"{flag} {value!r}"
            for flag, value in (("-k", selection.get("keyword")), ("-m", selection.get("markexpr")))
            if value
        ]
        given += [f"--deselect {d}" for d in selection.get("deselect") or []]
        if result.get("verdict") == "NOT_CERTIFIED":
            why = "NOT CERTIFIED, because a MUST failed (without that it would be INCONCLUSIVE by design)"
        else:
            why = "INCONCLUSIVE by design (the requirements no selected check covers are NOT RUN)"
        lines.append(f"  subset ({', '.join(given)}): a subset never certifies the phase; its phase verdict is {why}")
        lines.append(
            f"  subset result: {str(selection.get('verdict')).replace('_', ' ')}   "
            f"({selection.get('judged')} of {selection.get('in_scope')} in-scope requirements judged)"
        )
    if result.get("draft"):
        lines.append("  DRAFT: phase requirements still being specified; no sign-off applies to this verdict")
    lines.extend(adapter_lines(result))
    lines.extend(pair_lines(result))
    from conformance.profiles.verdict import local_lines

    lines.extend(local_lines(result))
    judged = any(req.get("checks") for req in result.get("requirements", []))
    from conformance.results.text import printable

    if not judged:
        lines.extend(
            f"  error: {printable(error, keep_newlines=True)}" for error in result.get("errors") or ["no check ran"]
        )
        return lines
    width = max([len(a) for a in (result.get("areas") or {})] + [8])
    lines.append(f"  {'area':<{width}}  " + "  ".join(f"{v:>5}" for v in ("PASS", "FAIL", "ERROR", "other")))
    for area, counts in area_table(result):
        other = sum(n for v, n in counts.items() if v not in ("PASS", "FAIL", "ERROR"))
        lines.append(
            f"  {area:<{width}}  {counts.get('PASS', 0):>5}  {counts.get('FAIL', 0):>5}  {counts.get('ERROR', 0):>5}  {other:>5}"
        )
    tally = Counter(result.get("counts") or {})
    lines.append("  requirements: " + ", ".join(f"{v} {tally[v]}" for v in _ORDER if tally.get(v)))
    lines.extend(request_lines(result))
    lines.extend(failure_lines(result))
    for error in result.get("errors") or []:
        lines.append(f"  error: {printable(error, keep_newlines=True)}")
    return lines
