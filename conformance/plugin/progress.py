"""Progress of a conformance run for ``certify``: a line per area as it completes.

A pytest plugin object (passed to ``pytest.main(plugins=[...])``) that works on the
controller with or without xdist: it learns the selected checks from
``pytest_collection_finish`` (no xdist) or ``pytest_xdist_node_collection_finished``,
and the area of each check from the requirement IDs in its node ID. On a terminal it
also shows a transient Rich progress bar.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from typing import Any, TextIO

import pytest

_REQ_ID = re.compile(r"ICS-[0-9][A-Z]-(?P<area>[A-Z]+)-[0-9]{3}")


def area_of(nodeid: str) -> str:
    """The area of the first requirement named in a check's node ID ("other" if none)."""
    from conformance.spec.catalogue import AREAS

    match = _REQ_ID.search(nodeid)
    return AREAS.get(match.group("area"), "other") if match else "other"


class Progress:
    """Reports completed checks to ``stream`` (never pytest's own output)."""

    def __init__(self, stream: TextIO, *, bar: bool | None = None) -> None:
        self.stream = stream
        self.use_bar = stream.isatty() if bar is None else bar
        self.total: Counter[str] = Counter()
        self.done: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        self.started = time.monotonic()
        self._known = False
        self._bar: Any = None
        self._task: Any = None

    # -- learning what will run ---------------------------------------------------------
    def _expect(self, nodeids: list[str]) -> None:
        if self._known:
            return
        self._known = True
        for nodeid in nodeids:
            self.total[area_of(nodeid)] += 1
        count = sum(self.total.values())
        self._line(f"running {count} checks in {len(self.total)} areas: {', '.join(sorted(self.total))}")
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
        area = area_of(report.nodeid)
        verdict = "?"
        for name, value in report.user_properties:
            if name == "ics_verdict":
                verdict = str(value)
        self.done[area] += 1
        self.outcomes[area][verdict] += 1
        if self._bar is not None:
            self._bar.advance(self._task)
        if self.total and self.done[area] == self.total[area]:
            tally = ", ".join(f"{v} {n}" for v, n in sorted(self.outcomes[area].items()))
            self._line(f"  {area:<14} {self.done[area]:>3} checks  {tally}  ({time.monotonic() - self.started:.1f} s)")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)
