"""Phase 1C "seen alone" checks (ICS-1C-SEEN-001, -002), scenario kind.

SEEN-001: visits recorded with seen_alone true, false (with a reason) and null (sent
null, and omitted) read back unchanged, in the answer to the POST and in the
assessment's visits; seen_alone true with child_seen false is refused 422
VALIDATION_ERROR and records no visit. SEEN-002: a child seen but not alone without a
reason (omitted, null, empty) is refused 422 VALIDATION_ERROR and records no visit;
reasons of 1 and 500 characters, and one with accents and apostrophes, read back
unchanged. Each case is a visit to an open assessment of a fresh child, dated between
its start and today.
"""

from __future__ import annotations

from typing import Any

from conformance.checking.checks import check, describe, error_code, expect_status, fail, not_applicable
from conformance.checking.search_oracle import child_id, name_token
from conformance.checking.world import World

SEEN_001 = "ICS-1C-SEEN-001"
SEEN_002 = "ICS-1C-SEEN-002"
START = "2008-03-03"


def _assessment(world: World, requirement: str) -> str:
    if not world.context.has("seen_alone"):
        not_applicable("the target does not declare the seen_alone capability")
    cid = child_id(world.child(family_name=name_token()), requirement)
    body = world.assessment(cid, START, kind="core")
    if not isinstance(body, dict) or not body.get("id"):
        fail(requirement, f"starting an assessment returned no id: {str(body)[:200]}")
    return str(body["id"])


def _visits(world: World, assessment_id: str, requirement: str) -> list[dict[str, Any]]:
    body = expect_status(
        world.client.get(f"/assessments/{assessment_id}", token=world.admin.token),
        200,
        requirement,
        "read the assessment",
    )
    visits = body.get("visits") if isinstance(body, dict) else None
    if not isinstance(visits, list):
        fail(requirement, f"the assessment carries no visits list: {str(body)[:200]}")
    return [v for v in visits if isinstance(v, dict)]


def _post(world: World, assessment_id: str, body: dict[str, Any]) -> Any:
    return world.client.post(
        f"/assessments/{assessment_id}/visits", token=world.practitioner("practitioner").token, json=body
    )


def _accepted(world: World, assessment_id: str, body: dict[str, Any], requirement: str, field: str) -> str | None:
    """Post ``body``; why its ``field`` does not read back as sent (None: it does)."""
    response = _post(world, assessment_id, body)
    if response.status_code != 201:
        return f"{body}: expected 201, got {describe(response, 160)}"
    answer = response.json() if response.content else None
    want = body.get(field)
    if not isinstance(answer, dict) or answer.get(field) != want:
        return f"{body}: the answer gives {field}={None if not isinstance(answer, dict) else answer.get(field)!r}"
    listed = [v for v in _visits(world, assessment_id, requirement) if v.get("id") == answer.get("id")]
    if not listed:
        return f"{body}: the visit {answer.get('id')!r} is not listed on the assessment"
    if listed[0].get(field) != want:
        return f"{body}: the assessment's visit gives {field}={listed[0].get(field)!r}"
    return None


def _refused(world: World, assessment_id: str, body: dict[str, Any], requirement: str) -> str | None:
    """Post ``body``; why it was not refused 422 VALIDATION_ERROR with no visit recorded (None: it was)."""
    before = len(_visits(world, assessment_id, requirement))
    response = _post(world, assessment_id, body)
    problem = None
    if response.status_code != 422 or error_code(response) != "VALIDATION_ERROR":
        problem = f"{body}: expected 422 VALIDATION_ERROR, got {describe(response, 160)}"
    after = len(_visits(world, assessment_id, requirement))
    if after != before:
        problem = (
            problem + "; and " if problem else f"{body}: "
        ) + f"a visit was recorded ({before} -> {after} visits)"
    return problem


@check(SEEN_001, kind="scenario")
def test_seen_alone_recorded(world: World) -> None:
    """SEEN-001: seen_alone true, false (with its reason), null and omitted read back as sent; true with
    child_seen false is refused 422 VALIDATION_ERROR, recording nothing."""
    aid = _assessment(world, SEEN_001)
    problems = [
        _accepted(
            world, aid, {"visit_date": "2008-03-04", "child_seen": True, "seen_alone": True}, SEEN_001, "seen_alone"
        ),
        _accepted(
            world,
            aid,
            {
                "visit_date": "2008-03-05",
                "child_seen": True,
                "seen_alone": False,
                "not_seen_alone_reason": "Father present",
            },
            SEEN_001,
            "seen_alone",
        ),
        _accepted(
            world, aid, {"visit_date": "2008-03-06", "child_seen": True, "seen_alone": None}, SEEN_001, "seen_alone"
        ),
        _accepted(world, aid, {"visit_date": "2008-03-07", "child_seen": True}, SEEN_001, "seen_alone"),
        _accepted(
            world, aid, {"visit_date": "2008-03-07", "child_seen": False, "seen_alone": None}, SEEN_001, "seen_alone"
        ),
        _refused(world, aid, {"visit_date": "2008-03-10", "child_seen": False, "seen_alone": True}, SEEN_001),
    ]
    shown = [p for p in problems if p]
    if shown:
        fail(SEEN_001, "seen_alone not recorded as required:\n" + "\n".join(shown))


@check(SEEN_002, kind="scenario")
def test_reason_when_not_seen_alone(world: World) -> None:
    """SEEN-002: seen but not alone without a reason (omitted, null, empty) is refused 422 VALIDATION_ERROR,
    recording nothing; reasons of 1 and 500 characters and one with accents read back unchanged."""
    aid = _assessment(world, SEEN_002)
    seen_not_alone = {"child_seen": True, "seen_alone": False}
    problems = [
        _refused(world, aid, {"visit_date": "2008-03-04", **seen_not_alone}, SEEN_002),
        _refused(world, aid, {"visit_date": "2008-03-04", **seen_not_alone, "not_seen_alone_reason": None}, SEEN_002),
        _refused(world, aid, {"visit_date": "2008-03-04", **seen_not_alone, "not_seen_alone_reason": ""}, SEEN_002),
    ]
    for day, reason in (
        ("2008-03-05", "X"),
        ("2008-03-06", "R" * 500),
        ("2008-03-07", "Grand-mère insisted on staying; the child’s sibling was unwell"),
    ):
        body = {"visit_date": day, **seen_not_alone, "not_seen_alone_reason": reason}
        problems.append(_accepted(world, aid, body, SEEN_002, "not_seen_alone_reason"))
    shown = [p for p in problems if p]
    if shown:
        fail(SEEN_002, "the reason for not seeing the child alone is not handled as required:\n" + "\n".join(shown))
