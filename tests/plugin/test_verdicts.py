"""Verdict mapping of the plugin (design.md section 7) on tiny synthetic check modules."""

from __future__ import annotations

import subprocess
import time

from plugin_support import TOKEN, checks_by_name, dump, requirement_verdicts
from stub import stub_target

MAPPING = """
import pytest
from hypothesis import given, strategies as st
from conformance.checking.checks import check, fail, not_applicable, prerequisite_missing

@check("ICS-1B-SRCH-001")
def test_pass(world):
    assert world.client.get("/about").status_code == 200

@check("ICS-1B-SRCH-002", "ICS-1B-SRCH-003")
def test_requirement_failure(world):
    world.client.get("/about")
    fail("ICS-1B-SRCH-003", "search missed the child")

@check("ICS-1B-SRCH-004")
def test_plain_assert():
    assert 1 == 2, "plain assertion"

@check("ICS-1B-NOTIF-001")
def test_key_error():
    {}["missing"]

@check("ICS-1B-ACC-003")
def test_not_applicable():
    not_applicable("audit not declared")

@check("ICS-1B-GATE-001")
def test_skipped():
    prerequisite_missing("no assessment to gate")

@check("ICS-1B-GATE-002", kind="property")
@given(st.integers())
def test_property(x):
    assert x < 3

@pytest.fixture
def broken_setup():
    raise RuntimeError("fixture exploded")

@check("ICS-1B-GATE-003")
def test_setup_error(broken_setup):
    pass

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown exploded")

@check("ICS-1B-GATE-004")
def test_teardown_error(broken_teardown):
    pass
"""


def test_outcomes_map_to_verdicts(run_checks, stub_url) -> None:
    run, result = run_checks(MAPPING, target=stub_url)
    assert result is not None, run.stdout.str()
    checks = checks_by_name(result)
    verdicts = {name: c["verdict"] for name, c in checks.items()}
    assert verdicts == {
        "test_pass": "PASS",
        "test_requirement_failure": "FAIL",
        "test_plain_assert": "FAIL",
        "test_key_error": "ERROR",
        "test_not_applicable": "NOT_APPLICABLE",
        "test_skipped": "SKIPPED",
        "test_property": "FAIL",
        "test_setup_error": "ERROR",
        "test_teardown_error": "ERROR",
    }, dump(result)
    by_req = requirement_verdicts(result)
    # a RequirementFailure fails only the IDs it names
    assert checks["test_requirement_failure"]["failed_requirements"] == ["ICS-1B-SRCH-003"]
    assert by_req["ICS-1B-SRCH-003"] == "FAIL"
    assert by_req["ICS-1B-SRCH-002"] == "NOT_RUN"  # its only check failed on another requirement
    assert by_req["ICS-1B-SRCH-004"] == "FAIL" and by_req["ICS-1B-NOTIF-001"] == "ERROR"
    assert result["verdict"] == "INCONCLUSIVE"  # any ERROR
    # failures carry evidence, the message and a copy-paste reproduction
    failed = checks["test_requirement_failure"]
    assert failed["evidence"] and failed["evidence"][0]["request"]["url"].endswith("/about")
    assert "search missed the child" in failed["message"]
    assert "does not hold" not in failed["message"]  # that prefix is for unknown IDs only (an ERROR)
    assert failed["reproduce"].startswith("pytest --ics-target ")
    assert f"--ics-seed {result['seed']}" in failed["reproduce"]
    assert "test_checks.py::test_requirement_failure" in failed["reproduce"]
    assert checks["test_pass"]["evidence"] == [] and checks["test_pass"]["reproduce"] is None
    assert "KeyError" in checks["test_key_error"]["message"]
    assert "fixture exploded" in checks["test_setup_error"]["message"]
    assert "audit not declared" == checks["test_not_applicable"]["message"]
    # Hypothesis: the shrunk example and the @reproduce_failure blob
    prop = checks["test_property"]
    assert "assert 3 < 3" in prop["message"] and "@reproduce_failure(" in prop["hypothesis_blob"]
    # the reproduce command is one shell command line (the seed replays the example), never prose
    assert "\n" not in prop["reproduce"] and "reproduce_failure" not in prop["reproduce"]
    assert subprocess.run(["bash", "-n"], input=prop["reproduce"], text=True).returncode == 0
    # the admin token is never written nor printed
    text = dump(result) + (result and str(result)) + run.stdout.str() + run.stderr.str()
    assert TOKEN not in text


JUDGED_SIBLINGS = """
from conformance.checking.checks import RequirementFailure, check, fail

@check("ICS-1B-NOTIF-001", "ICS-1B-NOTIF-002", "ICS-1B-NOTIF-003")
def test_collects_every_violation():  # judged all three, found only 002 broken
    fail("ICS-1B-NOTIF-002", "author notified", passed=("ICS-1B-NOTIF-001", "ICS-1B-NOTIF-003", "ICS-1B-NOTIF-007"))

@check("ICS-1B-NOTIF-004", "ICS-1B-NOTIF-005")
def test_stops_at_first():  # vouches for nothing else
    fail("ICS-1B-NOTIF-004", "duplicate")

@check("ICS-1B-SRCH-001", "ICS-1B-SRCH-002", kind="property")
def test_group_vouches_for_nothing():  # as Hypothesis reports two distinct bugs
    raise ExceptionGroup("two bugs", [RequirementFailure("ICS-1B-SRCH-001", "leaked", passed=("ICS-1B-SRCH-002",)), KeyError(3)])
"""


def test_a_failing_check_may_vouch_for_siblings_it_judged(run_checks, stub_url) -> None:
    """``fail(..., passed=...)``: siblings judged in full PASS; others of a narrowed FAIL are NOT_RUN."""
    run, result = run_checks(JUDGED_SIBLINGS, target=stub_url)
    verdicts = requirement_verdicts(result)
    assert verdicts["ICS-1B-NOTIF-002"] == "FAIL", dump(result)
    assert verdicts["ICS-1B-NOTIF-001"] == verdicts["ICS-1B-NOTIF-003"] == "PASS"
    assert "ICS-1B-NOTIF-007" not in {
        c["id"] for c in result["requirements"] if c["checks"]
    }  # not the check's: ignored
    check = checks_by_name(result)["test_collects_every_violation"]
    assert check["failed_requirements"] == ["ICS-1B-NOTIF-002"]
    assert check["passed_requirements"] == ["ICS-1B-NOTIF-001", "ICS-1B-NOTIF-003"]
    assert (verdicts["ICS-1B-NOTIF-004"], verdicts["ICS-1B-NOTIF-005"]) == ("FAIL", "NOT_RUN")
    assert (
        verdicts["ICS-1B-SRCH-001"] == "FAIL" and verdicts["ICS-1B-SRCH-002"] == "NOT_RUN"
    )  # two failures: no vouching
    assert result["verdict"] == "NOT_CERTIFIED"


HYPOTHESIS_GROUPS = """
from hypothesis import given, settings, strategies as st
from conformance.checking.checks import RequirementFailure, check, fail

@check("ICS-1B-NOTIF-002", "ICS-1B-NOTIF-003", "ICS-1B-NOTIF-004", kind="property")
@given(st.integers())
def test_two_bugs(x):  # two raise sites: Hypothesis reports two distinct bugs in a group
    if x > 10:
        raise RequirementFailure("ICS-1B-NOTIF-002", "author notified")
    if x < -10:
        raise RequirementFailure("ICS-1B-NOTIF-003", "unrelated notified")

calls = []

@check("ICS-1B-NOTIF-005", kind="property")
@given(st.integers())
def test_flaky(x):
    calls.append(x)
    if len(calls) == 2:
        fail("ICS-1B-NOTIF-005", "late, once")

@check("ICS-1B-NOTIF-006", kind="property")
@given(st.integers())
def test_failure_and_crash(x):
    if x > 10:
        fail("ICS-1B-NOTIF-006", "leaked")
    if x < -10:
        raise KeyError(x)
"""


def test_hypothesis_groups_and_flaky(run_checks, stub_url) -> None:
    run, result = run_checks(HYPOTHESIS_GROUPS, target=stub_url)
    checks = checks_by_name(result)
    two = checks["test_two_bugs"]
    assert two["verdict"] == "FAIL", dump(result)
    assert sorted(two["failed_requirements"]) == ["ICS-1B-NOTIF-002", "ICS-1B-NOTIF-003"]
    assert requirement_verdicts(result)["ICS-1B-NOTIF-004"] == "NOT_RUN"
    assert checks["test_flaky"]["verdict"] == "ERROR" and "unreliable" in checks["test_flaky"]["message"]
    mixed = checks["test_failure_and_crash"]
    assert mixed["verdict"] == "FAIL" and "KeyError" in mixed["message"]


def test_unknown_requirement_is_a_collection_error(run_checks, stub_url) -> None:
    source = 'from conformance.checking.checks import check\n\n@check("ICS-1B-SRCH-999")\ndef test_typo():\n    pass\n'
    run, result = run_checks(source, target=stub_url)
    out = run.stdout.str()
    assert "ERROR collecting" in out and "ICS-1B-SRCH-999" in out and "did you mean" in out
    assert result is not None and result["verdict"] == "INCONCLUSIVE" and result["errors"]


def test_unreachable_target_at_preflight_is_inconclusive(run_checks) -> None:
    started = time.monotonic()
    run, result = run_checks("def test_x():\n    pass\n", target="http://127.0.0.1:9")
    assert run.ret == 3
    assert (
        "INCONCLUSIVE" in run.stdout.str() + run.stderr.str() and "unreachable" in run.stdout.str() + run.stderr.str()
    )
    assert result is not None and result["verdict"] == "INCONCLUSIVE" and "unreachable" in result["errors"][0]
    assert time.monotonic() - started < 10


HANGING = """
from conformance.checking.checks import check

@check("ICS-1B-SRCH-001")
def test_first(world):
    world.client.get("/about")

@check("ICS-1B-SRCH-002")
def test_second(world):
    for _ in range(20):
        world.client.get("/about")

@check("ICS-1B-SRCH-003")
def test_third(world):
    for _ in range(20):
        world.client.get("/about")
"""


def test_hanging_target_gives_error_not_a_hang(run_checks) -> None:
    with stub_target(hang_after=2) as url:  # answers pre-flight (about, credential), then never again
        started = time.monotonic()
        run, result = run_checks(HANGING, "--ics-timeout", "0.5", target=url)
        elapsed = time.monotonic() - started
    verdicts = {name: c["verdict"] for name, c in checks_by_name(result).items()}
    assert verdicts == {"test_first": "ERROR", "test_second": "ERROR", "test_third": "ERROR"}, dump(result)
    assert result["verdict"] == "INCONCLUSIVE"
    assert "did not answer" in checks_by_name(result)["test_first"]["message"]
    assert elapsed < 8, f"the run took {elapsed:.1f} s against a hanging target"
