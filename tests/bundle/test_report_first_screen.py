"""report.html reads top-down for a council manager: the verdict, what failed (root causes first, side
effects under them), what was not judged and why, then the details, each check's message once, with its
evidence as labelled request/response pairs, collapsed. ``medium="print"`` is the PDF's short summary."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bundle_samples import http_evidence

from conformance.certificate.report import render_html
from conformance.results.result import CheckResult, build_result
from conformance.results.verdicts import Verdict

GATES = tuple(f"ICS-1B-GATE-00{n}" for n in range(1, 7))
STATEFUL_MESSAGE = (
    "[ICS-1B-GATE-001] completion accepted although no visit qualifies: POST /assessments/a1/complete -> 200"
)
SHARED_MESSAGE = "[ICS-1B-SRCH-001, ICS-1B-SRCH-002] the child was not found: GET /children?family_name=Climbie -> 200"


def _check(name: str, requirements: tuple[str, ...], verdict: str, **extra: Any) -> CheckResult:
    return CheckResult(
        id=f"test_x.py::{name}", requirements=requirements, kind="scenario", verdict=Verdict(verdict), **extra
    )


def gating_fault_result() -> dict[str, Any]:
    """As a gating fault makes it: GATE-001 FAILs, the stateful check stops there (GATE-006 NOT_RUN), the export
    then holds a completion without the child seen (EXP-008, a side effect), and one check fails two search
    requirements at once."""
    from conformance.spec.catalogue import load_catalogue

    special = {
        "stateful": _check(
            "test_gating_matches_model",
            GATES,
            "FAIL",
            failed_requirements=("ICS-1B-GATE-001",),
            message=STATEFUL_MESSAGE,
            reproduce="pytest -k test_gating_matches_model",
            evidence=[http_evidence()],
        ),
        "export": _check(
            "test_export_008",
            ("ICS-1A-EXP-008",),
            "FAIL",
            message="[ICS-1A-EXP-008] 3 finding(s) in the api export: assessments.jsonl:1 /status completed unseen",
        ),
        "search": _check(
            "test_accents",
            ("ICS-1B-SRCH-001", "ICS-1B-SRCH-002"),
            "FAIL",
            message=SHARED_MESSAGE,
            evidence=[http_evidence()],
        ),
    }
    covered = {r for c in special.values() for r in c.requirements}
    checks = list(special.values()) + [
        _check(f"test_{r.id}", (r.id,), "PASS")
        for r in load_catalogue().in_scope("1B", channels=["api", "export"])
        if r.id not in covered
    ]
    result = build_result(
        phase="1B",
        channels=["api", "export"],
        checks=checks,
        target={"url": "http://127.0.0.1:8765", "builtin_reference": True, "faults": [], "about": None, "export": None},
        capabilities={"bulk_export": True},
        started_at=datetime(2008, 9, 30, 10, tzinfo=UTC),
        finished_at=datetime(2008, 9, 30, 10, 1, tzinfo=UTC),
    )
    result["side_effects"] = {"ICS-1A-EXP-008": ["ICS-1B-GATE-001"]}
    return result


def _section(html: str, ident: str) -> str:
    start = html.index(f'<section id="{ident}">')
    return html[start : html.index("</section>", start)]


def test_first_screen_lists_root_causes_first_and_side_effects_under_them() -> None:
    html = render_html(gating_fault_result())
    failed = _section(html, "what-failed")
    order = [failed.index(f'id="failed-req-{rid}"') for rid in ("ICS-1B-GATE-001", "ICS-1A-EXP-008")]
    assert order == sorted(order)  # the cause before its side effect ...
    effects = failed[failed.index('<ul class="effects">') : failed.index("</ul>", failed.index('<ul class="effects">'))]
    assert 'id="failed-req-ICS-1A-EXP-008"' in effects and "side effect" in effects  # ... indented under it, marked
    assert "Probably caused by ICS-1B-GATE-001" in effects
    # one line per requirement, with the observation (not the HTTP exchange) and a link to the details
    assert "completion accepted although no visit qualifies" in failed and "POST /assessments" not in failed
    assert 'href="#detail-ICS-1B-GATE-001"' in failed and 'id="detail-ICS-1B-GATE-001"' in html
    # plain language for a council manager comes before any HTTP detail
    assert failed.index("no one has seen the child") < failed.index("completion accepted")
    assert html.index("no one has seen the child") < html.index("<pre")
    assert html.index('id="what-failed"') < html.index('id="not-judged"') < html.index('id="failures"')


def test_not_run_and_not_applicable_say_why() -> None:
    result = gating_fault_result()
    verdicts = {r["id"]: r["verdict"] for r in result["requirements"]}
    assert verdicts["ICS-1B-GATE-006"] == "NOT_RUN"
    not_judged = _section(render_html(result), "not-judged")
    row = re.search(r"<tr><td class=\"mono\"><a href=\"#req-ICS-1B-GATE-006\">.*?</tr>", not_judged, re.S)
    assert row, not_judged[:2000]
    assert "stops at the first violation" in row.group(0) and "ICS-1B-GATE-001 first" in row.group(0)
    applicable = [rid for rid, v in verdicts.items() if v == "NOT_APPLICABLE"]
    assert applicable and all(f"#req-{rid}" in not_judged for rid in applicable)
    assert "does not declare capability" in not_judged


def test_each_check_message_once_with_collapsed_labelled_evidence() -> None:
    html = render_html(gating_fault_result())
    details = _section(html, "failures")
    # the stateful check covers GATE-001..006 but failed on GATE-001 only: its message once, under GATE-001
    assert details.count("completion accepted although no visit qualifies") == 1
    for rid in GATES[1:]:
        assert f'id="detail-{rid}"' not in details
    # a check failing two requirements: its message once, the other requirement points to it
    assert details.count("the child was not found") == 1
    assert "fails this requirement too" in details
    # evidence: collapsed (<details> without open), request and response labelled
    blocks = re.findall(r"<details[^>]*>", details)
    assert blocks and all("open" not in b for b in blocks)
    assert "Request 1" in details and "Response 1: HTTP 200" in details
    # column headers are separate cells in a header row
    assert re.search(r"<thead><tr><th[^>]*>Requirement</th><th[^>]*>Level</th><th>Title</th>", html)


def test_print_version_is_a_summary_with_an_optional_evidence_appendix() -> None:
    result = gating_fault_result()
    screen, summary = render_html(result), render_html(result, medium="print")
    appendix = render_html(result, medium="print", appendix=True)
    assert "@page" in summary and "size: A4" in summary and "counter(page)" in summary
    assert "Request 1" not in summary and 'id="appendix"' not in summary
    assert "Request 1" in _section(appendix, "appendix")
    assert len(summary) < len(screen) < len(appendix) + len(screen)
    # the print summary lists only what did not pass; the passing requirements by ID
    matrix = _section(summary, "matrix")
    assert "ICS-1B-GATE-001" in matrix and '<span class="badge pass">' not in matrix
    assert matrix.count('<tr id="req-') == sum(r["verdict"] != "PASS" for r in result["requirements"])


def test_a_subset_says_its_phase_verdict_is_inconclusive_by_design() -> None:
    result = gating_fault_result()
    result["verdict"] = "INCONCLUSIVE"
    result["selection"] = {"subset": True, "keyword": "search", "judged": 11, "in_scope": 62, "verdict": "CERTIFIED"}
    html = render_html(result)
    header = html[: html.index("</header>")]
    assert "INCONCLUSIVE by design" in header and "CERTIFIED over the 11 of 62 requirements it judged" in header
