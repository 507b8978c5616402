"""Request counting, the in-flight bound and reproduce commands (harness units: no network)."""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from datetime import UTC, datetime

import httpx

from conformance.checking.client import Client, EvidenceLog, InFlight, evidence_to
from conformance.plugin.reproduce import Invocation, judges_export
from conformance.results.result import CheckResult, build_result, result_problems
from conformance.results.verdicts import Verdict


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


def test_evidence_log_counts_requests_until_taken() -> None:
    log = EvidenceLog()
    with Client("http://target.test", transport=httpx.MockTransport(_ok), evidence=log) as client:
        client.get("/about")
        client.get("/about")
        log.clear()  # a new check's evidence; the count runs on until taken
        client.get("/about")
        log.count(5)  # requests sent outside the client (Schemathesis' session)
    assert log.take_requests() == 8
    assert log.take_requests() == 0
    assert len(log.items()) == 1


def test_a_thread_records_into_its_own_log() -> None:
    shared, own = EvidenceLog(), EvidenceLog()
    with Client("http://target.test", transport=httpx.MockTransport(_ok), evidence=shared) as client:

        def check() -> None:
            with evidence_to(own):
                client.get("/about")
                client.get("/about")

        thread = threading.Thread(target=check)
        thread.start()
        thread.join()
        client.get("/about")
    assert own.take_requests() == 2 and shared.take_requests() == 1


def test_in_flight_bound_holds_across_threads() -> None:
    active, peak, lock = 0, 0, threading.Lock()

    def slow(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1
        return httpx.Response(200, json={})

    transport = httpx.MockTransport(slow)
    transport.in_flight = InFlight(3)  # type: ignore[attr-defined]  # as BreakerTransport carries it
    with Client("http://target.test", transport=transport) as client:
        threads = [threading.Thread(target=lambda: [client.get("/x") for _ in range(4)]) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert 1 < peak <= 3


def _check(check_id: str, requirement: str, requests: int | None) -> CheckResult:
    return CheckResult(
        id=check_id, requirements=(requirement,), kind="scenario", verdict=Verdict.PASS, requests=requests
    )


def test_result_counts_requests_per_area_and_in_total() -> None:
    checks = [
        _check("test_search.py::a", "ICS-1B-SRCH-001", 40),
        _check("test_search.py::b", "ICS-1B-SRCH-002", 2),
        _check("test_records.py::c", "ICS-1A-REC-001", 7),
        _check("test_records.py::d", "ICS-1A-REC-002", None),  # not counted
    ]
    now = datetime.now(UTC)
    result = build_result(
        phase="1B",
        channels=["api", "export"],
        checks=checks,
        target={"url": "http://t", "builtin_reference": True, "faults": [], "about": None, "export": None},
        started_at=now,
        finished_at=now,
        command="pytest",
    )
    assert result["requests"] == {"total": 49, "areas": {"records": 7, "search": 42}}
    assert result_problems(result) == []
    check = next(c for r in result["requirements"] for c in r["checks"] if c["id"] == "test_search.py::a")
    assert check["requests"] == 40 and CheckResult.from_json(check).requests == 40


def test_reproduce_command_is_one_shell_line() -> None:
    invocation = Invocation(
        tool="certify", args=("--phase", "1B", "--seed", "7", "--reference-fault", "gating-off"), command=""
    )
    export = "test_export.py::test_due_dates[ICS-1A-EXP-008]"
    assert judges_export(export) and not judges_export("test_gating.py::test_x[ICS-1B-GATE-001]")
    alone = invocation.reproduce("test_export.py and test_due_dates[ICS-1A-EXP-008]", export)
    together = invocation.reproduce(
        "test_export.py and test_due_dates[ICS-1A-EXP-008]",
        export,
        together=[("test_gating.py and test_x[ICS-1B-GATE-001]", "test_gating.py::test_x[ICS-1B-GATE-001]")],
    )
    for command in (alone, together):
        assert "\n" not in command
        assert subprocess.run(["bash", "-n"], input=command, text=True).returncode == 0
    argv = shlex.split(together)
    assert argv[:2] == ["ics-conformance", "certify"] and argv[-2:] == ["-n", "0"]
    assert argv[argv.index("-k") + 1] == (
        "(test_export.py and test_due_dates[ICS-1A-EXP-008]) or (test_gating.py and test_x[ICS-1B-GATE-001])"
    )
