"""Checks run ahead on threads, so that a remote target's latency is waited out in parallel.

pytest runs one item at a time, and one xdist worker process per lane costs seconds of
start-up and a hundred megabytes; a check, though, mostly waits for its target. With
``--ics-max-in-flight N`` (N > 1) in a process that runs the whole session (no xdist
workers), :class:`Lanes` starts the body of every *independent* check on a pool of N
threads as soon as the session begins, in collection order, and pytest then walks the
items as usual: when it reaches a check that ran ahead it waits for that check's outcome
and reports it (:func:`pytest_pyfunc_call` re-raises the check's own exception, so the
verdict, message and traceback are those of the check). Each check's own requests stay
in order (one thread runs it); the requests of all checks together are bounded by the
target's :class:`~conformance.checking.client.InFlight` gate.

Independent: a check that asks for nothing but the run's context, its requirements, a
:class:`~conformance.checking.world.World` (whose practitioners are shared, created once
under a lock) and the date. Checks with fixtures of their own (the bulk export a module
takes once, the transfer runs of a pair) run on pytest's thread, as before, while the
others run around them; they judge only what they created, as every check does
(design.md section 3). Each check ran ahead records its exchanges into an evidence log of
its own (:func:`~conformance.checking.client.evidence_to`).

A suite module whose checks import something heavy lazily defines ``warm_up()``, which the
lanes call on pytest's thread before any check starts (a package imported on one thread
while another uses it can be seen half-initialised: Hypothesis looks for ``numpy`` in
``sys.modules`` while the export validator imports it). Hypothesis (>= 6.136) supports different tests on different threads; the settings
profile is process-wide and every test is seeded by the run's seed, so a check draws the
same examples whichever thread runs it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conformance.checking.client import Client, EvidenceLog, evidence_to
from conformance.checking.threadsafe import serialise_ast_parse
from conformance.checking.world import CONTEXT_KEY, DURATION_KEY, EVIDENCE_KEY, Practitioner, RunContext, World

#: Fixtures a check may ask for and still run ahead: the lanes supply each of them.
INDEPENDENT_FIXTURES = frozenset(
    {
        "world",
        "today",
        "ics_context",
        "ics_requirements",
        "request",
        "ics_client",
        "ics_evidence",
        "_capture_evidence",
        "_practitioner_pool",
    }
)
_OUTCOME_KEY = pytest.StashKey["Future[tuple[BaseException | None, float, EvidenceLog]]"]()


def independent(item: pytest.Item) -> bool:
    """True for a conformance check that needs no fixture of its own (it may run ahead)."""
    if item.get_closest_marker("ics") is None or not isinstance(item, pytest.Function):
        return False
    return set(item.fixturenames) <= INDEPENDENT_FIXTURES


class Lanes:
    """The plugin object running independent checks ahead on ``threads`` threads."""

    def __init__(self, config: pytest.Config, threads: int) -> None:
        self.config = config
        self.threads = threads
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopped = threading.Event()
        self._client: Client | None = None
        self._practitioners: dict[str, Practitioner] = {}

    # -- the session -------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Start every independent check on the pool, in the order pytest will report them."""
        context = self.config.stash.get(CONTEXT_KEY, None)
        if context is None or context.export_only or self.config.option.collectonly:
            return
        ahead = [item for item in session.items if isinstance(item, pytest.Function) and independent(item)]
        if not ahead:
            return
        serialise_ast_parse()
        for module in dict.fromkeys(getattr(item, "module", None) for item in session.items):
            warm_up = getattr(module, "warm_up", None)
            if callable(warm_up):
                warm_up()  # lazy imports on one thread: a module half-imported by another is not seen
        self._client = self._make_client(context)
        today = datetime.now(ZoneInfo("Europe/London")).date()
        for item in ahead:
            future: Future[Any] = Future()
            item.stash[_OUTCOME_KEY] = future
            self._queue.put((future, item, context, today))
        for number in range(self.threads):
            # daemon threads: an interrupted run (Ctrl-C, a hung target) exits without waiting for them
            threading.Thread(target=self._lane, name=f"ics-lane-{number}", daemon=True).start()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._stopped.set()
        for _ in range(self.threads):
            self._queue.put(None)
        if self._client is not None:
            self._client.close()

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Report a check that ran ahead: its evidence, its duration, its outcome (re-raised)."""
        future = pyfuncitem.stash.get(_OUTCOME_KEY, None)
        if future is None:
            return None
        error, seconds, log = _wait(future)
        pyfuncitem.stash[EVIDENCE_KEY] = log
        pyfuncitem.stash[DURATION_KEY] = seconds
        if error is not None:
            raise error
        return True

    # -- one check ---------------------------------------------------------------------------
    def _make_client(self, context: RunContext) -> Client:
        from conformance.plugin import make_transport

        return Client(
            context.target_url,
            timeout=context.timeout,
            transport=make_transport(self.config),
            deadline=context.deadline,
            max_response_bytes=context.max_response_bytes,
        )

    def _lane(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            future, item, context, today = job
            if self._stopped.is_set():
                future.cancel()  # the session is over (interrupted): checks not started never start
            elif future.set_running_or_notify_cancel():
                future.set_result(self._run(item, context, today))

    def _run(
        self, item: pytest.Function, context: RunContext, today: Any
    ) -> tuple[BaseException | None, float, EvidenceLog]:
        from conformance.plugin import make_evidence_log

        assert self._client is not None
        marker = item.get_closest_marker("ics")
        requirements: tuple[str, ...] = tuple(marker.kwargs["requirements"]) if marker else ()
        log = make_evidence_log(self.config)
        world = World(context, self._client, requirements=requirements, pool=self._practitioners)
        supplied: dict[str, Any] = {
            "world": world,
            "today": today,
            "ics_context": context,
            "ics_requirements": requirements,
            "request": item._request,
            "ics_client": self._client,
            "ics_evidence": log,
            "_practitioner_pool": self._practitioners,
        }
        arguments = {name: supplied[name] for name in _argnames(item)}
        began = time.perf_counter()
        with evidence_to(log):
            try:
                item.obj(**arguments)
            except BaseException as exc:  # reported on pytest's thread, as if raised there
                return exc, time.perf_counter() - began, log
        return None, time.perf_counter() - began, log


def _argnames(item: pytest.Function) -> Sequence[str]:
    return tuple(item._fixtureinfo.argnames)


def _wait(
    future: Future[tuple[BaseException | None, float, EvidenceLog]],
) -> tuple[BaseException | None, float, EvidenceLog]:
    """The outcome of a check run ahead; waits in short slices so that Ctrl-C stays prompt."""
    while True:
        try:
            return future.result(timeout=0.5)
        except FutureTimeout:
            continue


def configure(config: pytest.Config, max_in_flight: int | None) -> None:
    """Register :class:`Lanes` when more than one request may be in flight and this process runs every check."""
    if not max_in_flight or max_in_flight < 2:
        return
    if hasattr(config, "workerinput") or _distributed(config):
        return  # xdist: each worker runs its checks one after another; the workers are the lanes
    config.pluginmanager.register(Lanes(config, max_in_flight), "ics-conformance-lanes")


def _distributed(config: pytest.Config) -> bool:
    numprocesses = config.getoption("numprocesses", default=None)
    return bool(numprocesses) and config.getoption("dist", default="no") != "no"
