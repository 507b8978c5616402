"""Progress of a conformance run for ``certify``: a line per area as it completes.

A pytest plugin object (passed to ``pytest.main(plugins=[...])``) that works on the
controller with or without xdist: it learns the selected checks from
``pytest_collection_finish`` (no xdist) or ``pytest_xdist_node_collection_finished``,
and the area of each check from the requirement IDs in its node ID. Each area's line
counts requirements, as the final summary does (a requirement's verdict from the
checks that judged it); the checks are named in brackets. On a terminal it also shows
a transient Rich progress bar; elsewhere (a CI log) it prints a line at least every
``heartbeat`` seconds, so that a quiet stretch is not taken for a hung run.

A plain ``pytest --ics-…`` run gets :class:`Heartbeat` instead (pytest prints its own
progress): the same "still running" line through pytest's terminal reporter when no
line was printed for ``--ics-heartbeat`` seconds (default 5 when the output is not a
terminal, as in a CI log; pytest's progress dots are not lines, ``-v``'s are).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any, TextIO

import pytest

_REQ_ID = re.compile(r"ICS-[0-9][A-Z]-(?P<area>[A-Z]+)-[0-9]{3}")
#: Seconds without output after which a non-terminal stream gets a "still running" line.
HEARTBEAT_SECONDS = 5.0
_LOCAL_ID = re.compile(r"LOCAL-[A-Z0-9-]+-[0-9]{3}")


def area_of(nodeid: str) -> str:
    """The area of the first requirement named in a check's node ID ("other" if none)."""
    from conformance.spec.catalogue import AREAS

    match = _REQ_ID.search(nodeid)
    if match is None and _LOCAL_ID.search(nodeid):
        return "local profile"
    return AREAS.get(match.group("area"), "other") if match else "other"


class Progress:
    """Reports completed checks to ``stream`` (never pytest's own output)."""

    #: Print the "running N checks" line and a line per completed area (pytest prints its own otherwise).
    area_lines = True
    #: pytest prints a whole line per finished check (``-v``): that line is output enough.
    lines_per_check = False

    def __init__(self, stream: TextIO, *, bar: bool | None = None, heartbeat: float | None = HEARTBEAT_SECONDS) -> None:
        self.stream = stream
        self.use_bar = stream.isatty() if bar is None else bar
        self.total: Counter[str] = Counter()
        self.done: Counter[str] = Counter()
        #: area -> requirement ID -> the check results (JSON form) that named it
        self.judged: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        self.requirements: dict[str, set[str]] = defaultdict(set)
        self.started = time.monotonic()
        self.heartbeat = None if self.use_bar else heartbeat
        self._last_output = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._known = False
        self._bar: Any = None
        self._task: Any = None

    # -- learning what will run ---------------------------------------------------------
    def _expect(self, nodeids: list[str]) -> None:
        if self._known:
            return
        self._known = True
        from conformance.spec.catalogue import AREAS

        for nodeid in nodeids:
            self.total[area_of(nodeid)] += 1
            for match in _REQ_ID.finditer(nodeid):
                self.requirements[AREAS.get(match.group("area"), "other")].add(match.group(0))
        count = sum(self.total.values())
        named = sum(len(ids) for ids in self.requirements.values())
        if self.area_lines:
            self._line(
                f"running {count} checks of {named} requirements in {len(self.total)} areas: "
                f"{', '.join(sorted(self.total))}"
            )
        if self.use_bar and count:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("[bold]checks"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("checks", total=count)
        if self.heartbeat and count:
            self._thread = threading.Thread(target=self._beat, name="ics-progress-heartbeat", daemon=True)
            self._thread.start()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not hasattr(session.config, "workerinput") and session.config.pluginmanager.getplugin("dsession") is None:
            self._expect([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._expect(list(ids))

    # -- following the run --------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        from conformance.spec.catalogue import AREAS

        area = area_of(report.nodeid)
        check = getattr(report, "ics_check", None)
        if isinstance(check, dict):
            for rid in check.get("requirements") or ():
                match = _REQ_ID.fullmatch(str(rid))
                if match:
                    self.judged[AREAS.get(match.group("area"), "other")][str(rid)].append(check)
        self.done[area] += 1
        if not self.area_lines:
            if self.lines_per_check:
                self._last_output = time.monotonic()  # pytest printed this check's outcome on a line
            return
        if self._bar is not None:
            self._bar.advance(self._task)
        if self.total and self.done[area] == self.total[area]:
            self._line(f"  {area:<14} {self._tally(area)}  ({time.monotonic() - self.started:.1f} s)")

    def _tally(self, area: str) -> str:
        """``"6 requirements: FAIL 5, NOT_RUN 1 (13 checks)"``: the area's requirements by verdict."""
        from conformance.results.result import derive_requirement_verdict
        from conformance.results.verdicts import Verdict

        from_checks = {rid: checks for rid, checks in self.judged[area].items()}
        verdicts: Counter[str] = Counter()
        for rid in sorted(self.requirements[area] | set(from_checks)):
            checks = []
            for data in from_checks.get(rid, []):
                try:
                    from conformance.results.result import CheckResult

                    checks.append(CheckResult.from_json(data))
                except (KeyError, TypeError, ValueError):
                    continue
            verdict = derive_requirement_verdict(rid, checks) if checks else Verdict.NOT_RUN
            verdicts[verdict.value] += 1
        count = sum(verdicts.values())
        tally = ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items()))
        checks_done = self.done[area]
        return f"{count:>3} requirement{'s' if count != 1 else ' '}  {tally}  [{checks_done} check{'s' if checks_done != 1 else ''}]"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _beat(self) -> None:
        """A line at least every ``heartbeat`` seconds while checks run (non-terminal streams only)."""
        assert self.heartbeat is not None
        while not self._stop.wait(min(1.0, self.heartbeat)):
            if time.monotonic() - self._last_output < self.heartbeat:
                continue
            done, total = sum(self.done.values()), sum(self.total.values())
            waiting = sorted(a for a in self.total if self.done[a] < self.total[a])
            areas = ", ".join(waiting[:4]) + (f" and {len(waiting) - 4} more areas" if len(waiting) > 4 else "")
            self._line(
                f"  ... {done} of {total} checks done ({time.monotonic() - self.started:.0f} s); "
                f"still running: {areas or 'teardown'}"
            )

    def _line(self, text: str) -> None:
        with self._lock:
            self._last_output = time.monotonic()
            if self._bar is not None:
                self._bar.console.print(text, markup=False, highlight=False)
            else:
                print(text, file=self.stream, flush=True)


class Heartbeat(Progress):
    """Plain pytest's keep-alive line: written through pytest's terminal reporter when no
    line was printed for ``seconds`` (pytest's own output says everything else)."""

    area_lines = False

    def __init__(self, reporter_of: Callable[[], Any], seconds: float | None) -> None:
        super().__init__(sys.stdout, bar=False, heartbeat=seconds)
        self._reporter_of = reporter_of  # pytest's terminal reporter exists only after configure
        self._reporter: Any = None

    def _expect(self, nodeids: list[str]) -> None:
        if not self._known:
            reporter = self._reporter_of()
            if reporter is None or (self.heartbeat is None and reporter.isatty()):
                self.heartbeat = None
            else:
                self.heartbeat = self.heartbeat or HEARTBEAT_SECONDS
                # pytest's progress dots end their line only every 80 or so checks: a CI log,
                # read line by line, sees nothing until then, so only -v's lines count as output
                self.lines_per_check = reporter.verbosity > 0
            self._reporter = reporter
        super()._expect(nodeids)

    def _line(self, text: str) -> None:
        with self._lock:
            self._last_output = time.monotonic()
            self._reporter.write_line(text.strip(), flush=True)


def register_heartbeat(config: pytest.Config) -> None:
    """On the controller of a plain pytest run, keep a CI log alive (``certify`` has :class:`Progress`).

    ``--ics-heartbeat SECONDS`` (0 turns it off); by default 5 s when pytest's output is
    not a terminal (decided once pytest's terminal reporter exists).
    """
    if hasattr(config, "workerinput"):
        return
    if any(isinstance(plugin, Progress) for plugin in config.pluginmanager.get_plugins()):
        return
    seconds = config.getoption("ics_heartbeat", default=None)
    if seconds is not None and seconds < 0:
        raise pytest.UsageError(f"--ics-heartbeat {seconds:g}: must be 0 (off) or a positive number of seconds")
    if seconds == 0:
        return
    beat = Heartbeat(lambda: config.pluginmanager.get_plugin("terminalreporter"), seconds)
    config.pluginmanager.register(beat, "ics-conformance-heartbeat")
