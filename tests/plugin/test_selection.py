"""Selection by requirement ID / area marker / phase, ini options, profiles, and xdist."""

from __future__ import annotations

from plugin_support import checks_by_name, dump, requirement_verdicts

MIXED = """
from hypothesis import given, settings, strategies as st
from conformance.checking.checks import check, fail

@check("ICS-1A-REC-001")
def test_records(world):
    world.client.get("/about")

@check("ICS-1B-SRCH-001")
def test_search_one():
    pass

@check("ICS-1B-SRCH-002")
def test_search_two():
    fail("ICS-1B-SRCH-002", "no match")

@check("ICS-1B-NOTIF-001")
def test_notifications():
    pass

@check("ICS-1C-AUD-001")
def test_phase_1c():
    pass

@check("ICS-1B-GATE-001", kind="property")
@given(st.integers())
def test_profile(x):
    s = settings.default
    assert (s.max_examples, s.deadline, s.database, s.print_blob) == (10, None, None, True), s
"""


def _ran(result) -> set[str]:
    return set(checks_by_name(result))


def test_keyword_selects_by_requirement_id(run_checks, stub_url) -> None:
    run, result = run_checks(MIXED, "-k", "ICS-1B-SRCH", "--strict-markers", target=stub_url)
    assert _ran(result) == {"test_search_one", "test_search_two"}, run.stdout.str()
    assert requirement_verdicts(result)["ICS-1B-SRCH-002"] == "FAIL"
    assert result["verdict"] == "NOT_CERTIFIED"
    selection = result["selection"]
    assert selection["keyword"] == "ICS-1B-SRCH" and selection["markexpr"] is None
    assert (selection["judged"], selection["in_scope"], selection["verdict"]) == (2, 62, "NOT_CERTIFIED")
    assert "subset result: NOT CERTIFIED   (2 of 62 in-scope requirements judged)" in run.stdout.str()


def test_marker_selects_by_area(run_checks, stub_url) -> None:
    run, result = run_checks(MIXED, "-m", "notifications or records", "--strict-markers", target=stub_url)
    assert _ran(result) == {"test_notifications", "test_records"}, run.stdout.str()
    # a subset's phase verdict is INCONCLUSIVE by design; its own result is reported beside it
    assert result["verdict"] == "INCONCLUSIVE"
    assert result["selection"]["verdict"] == "CERTIFIED" and result["selection"]["judged"] == 2
    out = run.stdout.str()
    assert "Phase 1B: INCONCLUSIVE" in out and "INCONCLUSIVE by design" in out, out
    assert "subset result: CERTIFIED" in out, out
    # the in-scope requirements do not depend on which checks ran (export included)
    whole_run, whole = run_checks(MIXED, target=stub_url)
    assert "selection" not in whole
    assert len(result["requirements"]) == len(whole["requirements"]) == 62
    assert result["channels"] == whole["channels"] == ["api", "export"]


def test_phase_deselects_later_phases(run_checks, stub_url) -> None:
    run, result = run_checks(MIXED, "--ics-phase", "1A", target=stub_url)
    assert _ran(result) == {"test_records"}, run.stdout.str()
    assert result["phase"] == "1A"
    run, result = run_checks(MIXED, target=stub_url)  # 1B: 1A and 1B checks, never 1C
    assert "test_phase_1c" not in _ran(result) and {"test_records", "test_notifications"} <= _ran(result)


def test_ini_options_and_profile(run_checks, stub_url, pytester) -> None:
    pytester.makeini(
        f"[pytest]\nics_phase = 1B\nics_target = {stub_url}\nics_seed = 4242\nics_timeout = 2.5\nics_profile = quick\n"
    )
    pytester.makepyfile(test_checks=MIXED)
    report = pytester.path / "report"
    run = pytester.runpytest_inprocess(
        str(pytester.path / "test_checks.py"),
        "-p",
        "no:cacheprovider",
        "--ics-report",
        str(report),
        "-k",
        "profile or records",
    )
    import json

    result = json.loads((report / "result.json").read_text())
    assert result["seed"] == 4242 and result["profile"] == "quick" and result["phase"] == "1B"
    assert result["target"]["url"] == stub_url
    assert checks_by_name(result)["test_profile"]["verdict"] == "PASS", dump(result)
    run.assert_outcomes(passed=2, deselected=4)


def test_xdist_gives_the_same_verdicts(run_checks, stub_url) -> None:
    verdicts = {}
    for workers in ("0", "2"):
        run, result = run_checks(
            MIXED,
            "-n",
            workers,
            "--ics-seed",
            "7",
            "-p",
            "no:faker",
            "-p",
            "no:schemathesis",
            "-p",
            "no:allure_pytest",
            "-p",
            "no:anyio",
            target=stub_url,
            subprocess=workers != "0",
        )
        assert result is not None, run.stdout.str() + run.stderr.str()
        verdicts[workers] = (
            result["verdict"],
            requirement_verdicts(result),
            {k: c["verdict"] for k, c in checks_by_name(result).items()},
        )
    assert verdicts["0"] == verdicts["2"]
    assert verdicts["2"][2]["test_search_two"] == "FAIL" and verdicts["2"][2]["test_records"] == "PASS"
