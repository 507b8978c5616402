"""CheckResult: a requirement's contribution from a check, and the JSON round trip."""

from __future__ import annotations

from conformance.results.result import CheckResult
from conformance.results.verdicts import Verdict


def test_narrowed_failure_contributes_fail_pass_or_nothing() -> None:
    check = CheckResult(
        id="t",
        requirements=("A", "B", "C"),
        kind="scenario",
        verdict=Verdict.FAIL,
        failed_requirements=("A",),
        passed_requirements=("B",),
    )
    assert [check.verdict_for(r) for r in ("A", "B", "C", "D")] == [Verdict.FAIL, Verdict.PASS, None, None]
    again = CheckResult.from_json(check.to_json())
    assert again == check and again.to_json()["passed_requirements"] == ["B"]


def test_unnarrowed_failure_fails_everything_it_names() -> None:
    check = CheckResult(
        id="t", requirements=("A", "B"), kind="scenario", verdict=Verdict.FAIL, passed_requirements=("B",)
    )
    assert check.verdict_for("A") is check.verdict_for("B") is Verdict.FAIL  # passed only refines a narrowed FAIL
