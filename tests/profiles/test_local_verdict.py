"""The local verdict: rolled up from local checks and capability settings only, and re-derivable by verify."""

from __future__ import annotations

import copy
from pathlib import Path

from conformance.profiles import local_block, local_problem, parse_profile
from conformance.results.result import CheckResult
from conformance.results.verdicts import Verdict

PROFILE = b"""format: ics-conformance/local-profile/1
council: {name: Kirklees, code: "382"}
local_requirements:
  - id: LOCAL-KIRKLEES-001
    statement: An initial assessment is due 5 working days after its start.
    level: MUST
    reason: Local board target.
    check: {kind: timescale, assessment: initial, working_days: 5}
  - id: LOCAL-KIRKLEES-002
    statement: A case note notifies allocated practitioners within 1 second.
    level: SHOULD
    reason: Duty team works from the inbox.
    check: {kind: notification-latency, seconds: 1}
not_needed:
  - {id: ICS-1A-ALLOC-003, reason: allocations come from a fixed list}
capabilities:
  - {capability: restricted_notes, value: true, reason: adoption notes are restricted}
  - {capability: notification_latency_seconds, value: 30, reason: alerts within half a minute}
"""


def _national(phase: str = "1B", **capabilities: object) -> dict[str, object]:
    return {
        "phase": phase,
        "verdict": "CERTIFIED",
        "target": {"about": {"supplier": "Acme"}},
        "capabilities": {"restricted_notes": True, "notification_latency_seconds": 2, **capabilities},
        "requirements": [{"id": "ICS-1A-ALLOC-003", "verdict": "FAIL", "level": "SHOULD"}],
    }


def _check(rid: str, verdict: Verdict, name: str | None = None) -> CheckResult:
    return CheckResult(id=name or f"test_local.py::check[{rid}]", requirements=(rid,), kind="scenario", verdict=verdict)


def _block(checks: list[CheckResult], **national: object) -> dict[str, object]:
    return local_block(parse_profile(PROFILE, "kirklees.yaml"), checks, _national(**national))  # type: ignore[arg-type]


def test_a_failing_local_must_is_not_met_and_names_the_profile() -> None:
    block = _block([_check("LOCAL-KIRKLEES-001", Verdict.FAIL), _check("LOCAL-KIRKLEES-002", Verdict.PASS)])
    assert block["verdict"] == "NOT_MET"
    assert (block["council"], block["code"], block["file"]) == ("Kirklees", "382", "kirklees.yaml")
    assert [r["verdict"] for r in block["requirements"]] == ["FAIL", "PASS"]  # type: ignore[index]


def test_every_local_requirement_and_capability_met_is_met() -> None:
    block = _block([_check("LOCAL-KIRKLEES-001", Verdict.PASS), _check("LOCAL-KIRKLEES-002", Verdict.PASS)])
    assert block["verdict"] == "MET"
    assert block["counts"] == {"PASS": 4}


def test_a_failing_local_should_alone_leaves_it_met() -> None:
    block = _block([_check("LOCAL-KIRKLEES-001", Verdict.PASS), _check("LOCAL-KIRKLEES-002", Verdict.FAIL)])
    assert block["verdict"] == "MET"


def test_a_capability_the_run_did_not_use_fails_locally() -> None:
    checks = [_check("LOCAL-KIRKLEES-001", Verdict.PASS), _check("LOCAL-KIRKLEES-002", Verdict.PASS)]
    block = _block(checks, restricted_notes=False, notification_latency_seconds=60)
    assert block["verdict"] == "NOT_MET"
    assert [(c["capability"], c["used"], c["verdict"]) for c in block["capabilities"]] == [  # type: ignore[attr-defined]
        ("restricted_notes", False, "FAIL"),
        ("notification_latency_seconds", 60, "FAIL"),
    ]


def test_an_unjudged_local_must_or_a_local_error_is_inconclusive() -> None:
    assert _block([_check("LOCAL-KIRKLEES-002", Verdict.PASS)])["verdict"] == "INCONCLUSIVE"
    checks = [_check("LOCAL-KIRKLEES-001", Verdict.PASS), _check("LOCAL-KIRKLEES-002", Verdict.PASS)]
    profile = parse_profile(PROFILE, "kirklees.yaml")
    block = local_block(profile, checks, _national(), ["a council check names LOCAL-KIRKLEES-009"])
    assert block["verdict"] == "INCONCLUSIVE"


def test_a_local_requirement_of_a_later_phase_is_not_applicable_in_an_earlier_run() -> None:
    block = _block([_check("LOCAL-KIRKLEES-001", Verdict.PASS)], phase="1A")
    assert [r["verdict"] for r in block["requirements"]] == ["PASS", "NOT_APPLICABLE"]  # type: ignore[index]
    assert block["verdict"] == "MET"


def test_not_needed_entries_carry_the_unchanged_national_verdict() -> None:
    block = _block([_check("LOCAL-KIRKLEES-001", Verdict.PASS), _check("LOCAL-KIRKLEES-002", Verdict.PASS)])
    assert block["not_needed"] == [
        {
            "id": "ICS-1A-ALLOC-003",
            "level": "SHOULD",
            "reason": "allocations come from a fixed list",
            "national_verdict": "FAIL",
        }
    ]


def test_verify_re_derives_the_block_and_catches_each_alteration() -> None:
    national = _national()
    checks = [_check("LOCAL-KIRKLEES-001", Verdict.FAIL), _check("LOCAL-KIRKLEES-002", Verdict.PASS)]
    block = local_block(parse_profile(PROFILE, "kirklees.yaml"), checks, national)
    assert local_problem(block, PROFILE, national) is None

    altered = copy.deepcopy(block)
    altered["verdict"] = "MET"
    assert "local_profile verdict" in str(local_problem(altered, PROFILE, national))

    altered = copy.deepcopy(block)
    altered["requirements"][0]["checks"][0]["verdict"] = "PASS"  # type: ignore[index]
    assert "is not what the profile and the recorded local checks give" in str(
        local_problem(altered, PROFILE, national)
    )

    other = PROFILE.replace(b"working_days: 5", b"working_days: 6")
    assert "sha256 differs" in str(local_problem(block, other, national))

    altered = copy.deepcopy(block)
    altered["requirements"][0]["checks"][0]["requirements"] = ["ICS-1A-TIME-001"]  # type: ignore[index]
    assert "not a requirement of the profile" in str(local_problem(altered, PROFILE, national))

    altered = copy.deepcopy(block)
    altered["deviations"] = []
    assert "local_profile deviations" in str(local_problem(altered, PROFILE, national))


def test_the_schema_file_is_shipped_with_the_specs() -> None:
    from conformance.spec.resources import spec_path

    assert Path(spec_path("schemas", "local-profile.schema.json")).is_file()


def test_the_report_escapes_profile_and_check_text_and_links_nowhere() -> None:
    from conformance.certificate.report import render_html

    hostile = PROFILE.replace(b"reason: Local board target.", b'reason: "<script>alert(1)</script> board"')
    checks = [
        CheckResult(
            id="test_local.py::check[LOCAL-KIRKLEES-001]",
            requirements=("LOCAL-KIRKLEES-001",),
            kind="scenario",
            verdict=Verdict.FAIL,
            message="due_date '<img src=x>' expected 2008-06-09",
        ),
        _check("LOCAL-KIRKLEES-002", Verdict.PASS),
    ]
    national = dict(_national(), run_id="r1", counts={}, areas={}, spec={}, harness={})
    national["local_profile"] = local_block(parse_profile(hostile, "k.yaml"), checks, national)
    html = render_html(national)
    assert "<script>alert" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; board" in html and "&lt;img src=x&gt;" in html
    import re

    assert not re.search(r'href="(?!#)', html)  # in-page anchors only: no link leaves the report
    assert '<a href="#local-profile">Local profile</a>' in html
    assert 'id="local-verdict">LOCAL: NOT MET' in html


def test_capabilities_are_not_judged_when_the_run_read_no_about() -> None:
    national = dict(_national(), target={"about": None}, capabilities={})
    block = local_block(parse_profile(PROFILE, "kirklees.yaml"), [], national, ["pre-flight failed"])
    assert [c["verdict"] for c in block["capabilities"]] == ["NOT_RUN", "NOT_RUN"]
    assert block["verdict"] == "INCONCLUSIVE"
