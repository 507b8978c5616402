"""What the terminal says: progress counted in requirements, a heartbeat in CI logs, one line per failure
with the first line of its message (side effects marked), "interrupted" when it was, a subset's verdict."""

from __future__ import annotations

import io
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conformance.plugin.collect import summary_lines
from conformance.plugin.progress import Heartbeat, Progress

EXPORTS = Path(__file__).resolve().parents[2] / "fixtures" / "exports"


def _teardown(nodeid: str, requirements: list[str], verdict: str, failed: list[str] | None = None) -> Any:
    check = {
        "id": nodeid,
        "requirements": requirements,
        "kind": "scenario",
        "verdict": verdict,
        "failed_requirements": failed or [],
        "message": None,
        "duration": 0.1,
        "reproduce": None,
        "evidence": [],
    }
    return SimpleNamespace(when="teardown", nodeid=nodeid, ics_check=check, user_properties=[])


def test_progress_counts_requirements_like_the_summary() -> None:
    stream = io.StringIO()
    progress = Progress(stream, bar=False, heartbeat=None)
    ids = [
        "test_gating.py::test_a[ICS-1B-GATE-001]",
        "test_gating.py::test_model[ICS-1B-GATE-001+ICS-1B-GATE-006]",
    ]
    progress._expect(ids)
    progress.pytest_runtest_logreport(_teardown(ids[0], ["ICS-1B-GATE-001"], "FAIL"))
    progress.pytest_runtest_logreport(
        _teardown(ids[1], ["ICS-1B-GATE-001", "ICS-1B-GATE-006"], "FAIL", ["ICS-1B-GATE-001"])
    )
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("running 2 checks of 2 requirements in 1 areas")
    # GATE-006's only check failed on GATE-001 first: NOT_RUN, as the summary will say
    assert "gating" in lines[1] and "2 requirements  FAIL 1, NOT_RUN 1  [2 checks]" in lines[1], lines[1]


def test_progress_prints_a_heartbeat_on_a_non_terminal_stream() -> None:
    stream = io.StringIO()
    progress = Progress(stream, bar=False, heartbeat=0.2)
    progress._expect(["test_search.py::test_x[ICS-1B-SRCH-001]"])
    deadline = time.monotonic() + 10
    while "still running" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    progress.pytest_sessionfinish(SimpleNamespace())  # type: ignore[arg-type]
    assert "... 0 of 1 checks done" in stream.getvalue() and "still running: search" in stream.getvalue()
    assert progress._thread is None  # stopped with the session


def test_plain_pytest_heartbeat_goes_through_the_terminal_reporter_and_only_on_silence() -> None:
    written: list[str] = []
    reporter = SimpleNamespace(write_line=lambda text, **_kw: written.append(text), isatty=lambda: False, verbosity=0)
    beat = Heartbeat(lambda: reporter, 0.2)
    ids = ["test_search.py::test_x[ICS-1B-SRCH-001]", "test_search.py::test_y[ICS-1B-SRCH-002]"]
    beat._expect(ids)
    assert written == []  # pytest prints its own "collected" line: no "running N checks" here
    beat.pytest_runtest_logreport(_teardown(ids[0], ["ICS-1B-SRCH-001"], "PASS"))
    assert written == []  # no area line either: pytest printed the outcome (a dot: not a line)
    deadline = time.monotonic() + 10
    while not written and time.monotonic() < deadline:
        time.sleep(0.05)
    beat.pytest_sessionfinish(SimpleNamespace())  # type: ignore[arg-type]
    assert written and written[0].startswith("... 1 of 2 checks done"), written
    assert "still running: search" in written[0]


@pytest.mark.parametrize(
    ("tty", "verbosity", "seconds", "beats", "per_check"),
    [
        (False, 0, None, 5.0, False),  # a CI log: on by default; dots are not lines
        (False, 1, None, 5.0, True),  # -v: each finished check is a line of output
        (True, 0, None, None, False),  # a terminal: pytest's own progress is enough
        (True, 0, 2.0, 2.0, False),  # asked for: on even on a terminal
    ],
)
def test_plain_pytest_heartbeat_defaults(
    tty: bool, verbosity: int, seconds: float | None, beats: float | None, per_check: bool
) -> None:
    reporter = SimpleNamespace(write_line=lambda *_a, **_k: None, isatty=lambda: tty, verbosity=verbosity)
    beat = Heartbeat(lambda: reporter, seconds)
    beat._expect(["test_search.py::test_x[ICS-1B-SRCH-001]"])
    beat.pytest_sessionfinish(SimpleNamespace())  # type: ignore[arg-type]
    assert (beat.heartbeat, beat.lines_per_check) == (beats, per_check)


def test_plain_pytest_run_prints_a_heartbeat_and_0_turns_it_off(pytester: pytest.Pytester) -> None:
    args = ("-p", "no:cacheprovider", "-n", "0", "--ics-report", str(pytester.path / "r"), "--ics-export")
    beating = pytester.runpytest_subprocess(*args, str(EXPORTS / "valid"), "--ics-heartbeat", "0.01", timeout=300)
    assert beating.ret == 0, beating.stdout.str()
    assert any("checks done" in line and "still running" in line for line in beating.outlines), beating.stdout.str()
    quiet = pytester.runpytest_subprocess(*args, str(EXPORTS / "valid"), "--ics-heartbeat", "0", timeout=300)
    assert quiet.ret == 0 and not any("still running" in line for line in quiet.outlines), quiet.stdout.str()
    refused = pytester.runpytest_subprocess(*args, str(EXPORTS / "valid"), "--ics-heartbeat", "-1", timeout=300)
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    assert "--ics-heartbeat -1: must be 0 (off) or a positive number of seconds" in refused.stderr.str()


def _result(**extra: Any) -> dict[str, Any]:
    def req(rid: str, verdict: str, message: str | None = None, failed: list[str] | None = None) -> dict[str, Any]:
        check = {"id": f"t::{rid}", "verdict": verdict, "failed_requirements": failed or [], "message": message}
        return {"id": rid, "title": f"title of {rid}", "verdict": verdict, "area": "gating", "checks": [check]}

    base = {
        "verdict": "NOT_CERTIFIED",
        "phase": "1B",
        "run_id": "r1",
        "profile": "quick",
        "seed": 1,
        "channels": ["api", "export"],
        "areas": {"gating": {"FAIL": 1}, "export": {"FAIL": 1}},
        "counts": {"FAIL": 2},
        "requirements": [
            req("ICS-1A-EXP-008", "FAIL", "[ICS-1A-EXP-008] 2 finding(s)\nassessments.jsonl:1 ..."),
            req(
                "ICS-1B-GATE-001",
                "FAIL",
                "[ICS-1B-GATE-001] completion accepted with no visit: POST /assessments/a/complete -> 200 {}",
            ),
        ],
        "side_effects": {"ICS-1A-EXP-008": ["ICS-1B-GATE-001"]},
        "errors": [],
    }
    return {**base, **extra}


def test_summary_lists_each_failure_with_its_first_line_causes_first() -> None:
    lines = summary_lines(_result())
    gate = lines.index("  FAIL: ICS-1B-GATE-001  title of ICS-1B-GATE-001")
    assert lines[gate + 1] == "      completion accepted with no visit"
    export = lines.index("  FAIL: ICS-1A-EXP-008  title of ICS-1A-EXP-008  [side effect of ICS-1B-GATE-001]")
    assert gate < export and lines[export + 1] == "      2 finding(s)"


def test_summary_says_interrupted() -> None:
    lines = summary_lines(_result(verdict="INCONCLUSIVE", errors=["interrupted (SIGINT): the run was stopped"]))
    assert lines[0].startswith("Phase 1B: INCONCLUSIVE (interrupted: the run was stopped before every check")


def test_subset_says_inconclusive_by_design_and_its_own_result() -> None:
    selection = {"keyword": "gating", "markexpr": None, "deselect": [], "judged": 6, "in_scope": 62}
    lines = summary_lines(_result(verdict="INCONCLUSIVE", selection=dict(selection, verdict="CERTIFIED")))
    assert "its phase verdict is INCONCLUSIVE by design" in lines[1]
    assert lines[2].strip().startswith("subset result: CERTIFIED") and "6 of 62 in-scope requirements" in lines[2]
