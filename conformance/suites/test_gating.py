"""Assessment gating: an assessment cannot be completed until the child has been seen.

Scenario checks of ICS-1B-GATE-001..006 (design.md §4, "Complete"): completion is
refused with 422 ``CHILD_NOT_SEEN`` unless a visit recorded the child seen on a date with
``start_date <= visit_date <= completed_on`` that is not in the future, and a refused
completion leaves the assessment open and unchanged.

Every scenario uses its own child and an assessment started in 2008, so "today" never
interferes; "the future" is today + 30 days. A completion that should be refused but is
refused with the wrong status or code is blamed on GATE-001 (the machine-readable refusal);
one that is accepted is blamed on the specific requirement the scenario isolates.

The helpers here are shared with ``test_gating_stateful.py``, ``test_timescales.py`` and
``test_assessments.py`` (import only non-``test_`` names).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import httpx

from conformance.checking.checks import check, describe, error_code, expect_status, fail, require
from conformance.checking.world import World

GATE_001 = "ICS-1B-GATE-001"
GATE_002 = "ICS-1B-GATE-002"
GATE_003 = "ICS-1B-GATE-003"
GATE_004 = "ICS-1B-GATE-004"
GATE_005 = "ICS-1B-GATE-005"
GATE_006 = "ICS-1B-GATE-006"

#: A Monday in March 2008: long past, so no date derived from it is "in the future".
START = date(2008, 3, 3)
FUTURE_DAYS = 30

#: Fields of an assessment that a refused completion must not change (GATE-006).
STABLE_FIELDS = (
    "id",
    "child_id",
    "referral_id",
    "type",
    "start_date",
    "due_date",
    "status",
    "completed_on",
    "authorised_by",
)


def iso(day: date) -> str:
    """ISO 8601 calendar date, as the API carries dates."""
    return day.isoformat()


def requirements_of(requirements: str | Iterable[str]) -> tuple[str, ...]:
    return (requirements,) if isinstance(requirements, str) else tuple(requirements)


def new_child(world: World, family_name: str = "Gating") -> str:
    """Create a child for one scenario and return its id."""
    body = world.child(family_name=family_name)
    if not isinstance(body, dict) or body.get("id") in (None, ""):
        fail(world.requirements, f"POST /children returned no child id: {str(body)[:200]}")
    return str(body["id"])


def start_assessment(
    world: World, start: date, *, kind: str = "initial", child_id: str | None = None, referral_id: str | None = None
) -> dict[str, Any]:
    """Start an assessment (for a new child unless ``child_id``); the body must carry an id."""
    child = child_id or new_child(world)
    body = world.assessment(child, iso(start), kind=kind, referral_id=referral_id)
    if not isinstance(body, dict) or body.get("id") in (None, ""):
        fail(world.requirements, f"POST /children/{child}/assessments returned no assessment id: {str(body)[:200]}")
    body.setdefault("child_id", child)
    return body


def get_assessment(world: World, assessment_id: str, requirements: str | Iterable[str] | None = None) -> dict[str, Any]:
    """``GET /assessments/{id}`` as a practitioner; a dict or a failure of ``requirements``."""
    reqs = requirements_of(requirements) if requirements else world.requirements
    body = expect_status(
        world.client.get(f"/assessments/{assessment_id}", token=world.practitioner("practitioner").token),
        200,
        reqs,
        f"read assessment {assessment_id}",
    )
    if not isinstance(body, dict):
        fail(reqs, f"GET /assessments/{assessment_id} did not return an object: {str(body)[:200]}")
    return body


def record_visit(
    world: World,
    assessment_id: str,
    day: date,
    *,
    child_seen: bool = True,
    requirements: str | Iterable[str] | None = None,
) -> dict[str, Any]:
    """Record a visit that the API must accept (201)."""
    reqs = requirements_of(requirements) if requirements else world.requirements
    body = expect_status(
        world.visit(assessment_id, iso(day), child_seen=child_seen),
        201,
        reqs,
        f"record a visit on {iso(day)} (child_seen={child_seen}) on assessment {assessment_id}",
    )
    return body if isinstance(body, dict) else {}


class WrongRefusals:
    """Completions refused (4xx) but not with 422 ``CHILD_NOT_SEEN``: GATE-001 breaches that do
    not stop a scenario, so the rule it isolates is still judged to the end."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def raise_if_any(self, judged: str) -> None:
        """FAIL GATE-001 for the wrong refusals seen; ``judged`` (the scenario's rule) was met."""
        if self.messages:
            fail(GATE_001, "; ".join(self.messages), passed=(judged,))


def expect_refused_not_seen(
    world: World,
    assessment_id: str,
    response: httpx.Response,
    requirement: str,
    what: str,
    wrong: WrongRefusals | None = None,
) -> None:
    """A completion that must be refused 422 ``CHILD_NOT_SEEN``, leaving the assessment open.

    Accepted -> ``requirement`` (the rule the scenario isolates); refused with another
    status or code -> GATE-001 (collected in ``wrong`` when given and the answer is a 4xx,
    else at once); refused but the assessment no longer open -> GATE-006.
    """
    if 200 <= response.status_code < 300:
        fail(requirement, f"{what}: completion was accepted: {describe(response)}")
    if response.status_code != 422 or error_code(response) != "CHILD_NOT_SEEN":
        message = f"{what}: expected HTTP 422 with code 'CHILD_NOT_SEEN', got {describe(response)}"
        if wrong is None or not 400 <= response.status_code < 500:
            fail(GATE_001, message)
        wrong.messages.append(message)
    expect_still_open(world, assessment_id, what)


def expect_still_open(world: World, assessment_id: str, what: str) -> None:
    """GATE-006: after a refused completion the assessment is open with no completion date."""
    after = get_assessment(world, assessment_id, GATE_006)
    require(
        after.get("status") == "open" and after.get("completed_on") is None,
        GATE_006,
        f"{what}: after the refused completion the assessment reads status={after.get('status')!r}, "
        f"completed_on={after.get('completed_on')!r}; expected open with no completion date",
    )


def expect_completed(
    response: httpx.Response, requirement: str | Iterable[str], what: str, completed_on: date | None
) -> dict[str, Any]:
    """A completion that must be accepted: 200, status ``completed``, the right ``completed_on``."""
    body = expect_status(response, 200, requirement, f"{what}: completion refused")
    if not isinstance(body, dict):
        fail(requirement, f"{what}: completion returned no assessment: {str(body)[:200]}")
    require(
        body.get("status") == "completed",
        requirement,
        f"{what}: completion returned status {body.get('status')!r}, expected 'completed'",
    )
    if completed_on is not None:
        require(
            body.get("completed_on") == iso(completed_on),
            requirement,
            f"{what}: completed_on is {body.get('completed_on')!r}, expected {iso(completed_on)!r}",
        )
    return body


def snapshot(assessment: dict[str, Any]) -> dict[str, Any]:
    """The fields a refused completion must leave alone, plus the visit ids."""
    visits = assessment.get("visits")
    ids = sorted(str(v.get("id")) for v in visits if isinstance(v, dict)) if isinstance(visits, list) else None
    return {**{k: assessment.get(k) for k in STABLE_FIELDS}, "visits": ids}


def expect_unchanged(world: World, assessment_id: str, before: dict[str, Any], what: str) -> None:
    """GATE-006: after a refused completion the assessment is open and exactly as before."""
    after = get_assessment(world, assessment_id, GATE_006)
    require(
        after.get("status") == "open",
        GATE_006,
        f"{what}: after the refused completion the assessment's status is {after.get('status')!r}, expected 'open'",
    )
    for field in ("completed_on", "authorised_by"):
        require(
            after.get(field) is None,
            GATE_006,
            f"{what}: after the refused completion {field} is {after.get(field)!r}, expected null",
        )
    now = snapshot(after)
    changed = {k: (before[k], now[k]) for k in before if before[k] != now[k]}
    require(not changed, GATE_006, f"{what}: the refused completion changed the assessment: {changed}")


# -- scenarios ------------------------------------------------------------------------------


@check(GATE_001)
def test_completion_refused_without_any_visit(world: World) -> None:
    """GATE-001: with no visit at all, completion is refused 422 ``CHILD_NOT_SEEN`` (explicit date and default today)."""
    assessment = start_assessment(world, START)
    aid = str(assessment["id"])
    expect_refused_not_seen(
        world, aid, world.complete(aid, iso(START + timedelta(days=5))), GATE_001, "no visit, completed_on given"
    )
    expect_refused_not_seen(world, aid, world.complete(aid), GATE_001, "no visit, completed_on defaulting to today")


@check(GATE_001)
def test_completion_allowed_once_child_seen(world: World) -> None:
    """GATE-001: a seen visit within [start, completed_on] lets completion succeed; on the boundaries too."""
    mid = start_assessment(world, START)
    record_visit(world, str(mid["id"]), START + timedelta(days=2))
    expect_completed(
        world.complete(str(mid["id"]), iso(START + timedelta(days=4))),
        GATE_001,
        "seen two days after the start, completed two days later",
        START + timedelta(days=4),
    )

    same_day = start_assessment(world, START)
    record_visit(world, str(same_day["id"]), START)
    expect_completed(
        world.complete(str(same_day["id"]), iso(START)),
        GATE_001,
        "seen on the start date and completed that day",
        START,
    )

    today_default = start_assessment(world, START)
    record_visit(world, str(today_default["id"]), START + timedelta(days=1))
    expect_completed(
        world.complete(str(today_default["id"])),
        GATE_001,
        "seen after the start, completed_on defaulting to today",
        None,
    )


@check(GATE_005, GATE_001)
def test_not_seen_visit_does_not_count(world: World) -> None:
    """GATE-005: visits that did not see the child never allow completion."""
    assessment = start_assessment(world, START)
    aid = str(assessment["id"])
    wrong = WrongRefusals()
    record_visit(world, aid, START + timedelta(days=1), child_seen=False)
    record_visit(world, aid, START + timedelta(days=2), child_seen=False)
    expect_refused_not_seen(
        world, aid, world.complete(aid, iso(START + timedelta(days=3))), GATE_005, "only not-seen visits", wrong=wrong
    )
    expect_refused_not_seen(
        world, aid, world.complete(aid), GATE_005, "only not-seen visits, completed_on defaulting to today", wrong=wrong
    )
    wrong.raise_if_any(GATE_005)


@check(GATE_002, GATE_001)
def test_seen_before_start_does_not_count(world: World) -> None:
    """GATE-002: a seen visit before the start is refused (422 ``DATE_ORDER``) or recorded but not counted.

    A target that declares ``bulk_export`` must refuse it: no export may hold a seen visit
    before its assessment's start (EXP-006), so storing one cannot be reconciled with it.
    The same assessment then completes once the child is seen on the start date itself.
    """
    assessment = start_assessment(world, START)
    aid = str(assessment["id"])
    wrong = WrongRefusals()
    early = START - timedelta(days=7)
    response = world.visit(aid, iso(early), child_seen=True)
    if world.context.has("bulk_export") and response.status_code != 422:
        fail(
            GATE_002,
            "recording a seen visit before the assessment start: the target declares bulk_export, so it must be "
            f"refused with 422 DATE_ORDER (an export may not hold it, ICS-1A-EXP-006); got {describe(response)}",
        )
    if response.status_code == 422:
        require(
            error_code(response) == "DATE_ORDER",
            GATE_002,
            f"a visit before the assessment start was refused with the wrong code: {describe(response)}",
        )
    elif response.status_code != 201:
        fail(
            GATE_002,
            f"recording a seen visit before the start: expected 201 or 422 DATE_ORDER, got {describe(response)}",
        )
    expect_refused_not_seen(
        world,
        aid,
        world.complete(aid, iso(START + timedelta(days=3))),
        GATE_002,
        f"the only seen visit ({iso(early)}) is before the start ({iso(START)})",
        wrong=wrong,
    )
    record_visit(world, aid, START, requirements=GATE_002)
    expect_completed(
        world.complete(aid, iso(START + timedelta(days=3))),
        GATE_002,
        "seen on the start date (which counts)",
        START + timedelta(days=3),
    )
    wrong.raise_if_any(GATE_002)


@check(GATE_004, GATE_001)
def test_seen_after_completion_date_does_not_count(world: World) -> None:
    """GATE-004: a seen visit after ``completed_on`` does not count; completing on the visit day does."""
    assessment = start_assessment(world, START)
    aid = str(assessment["id"])
    wrong = WrongRefusals()
    seen = START + timedelta(days=10)
    record_visit(world, aid, seen)
    expect_refused_not_seen(
        world,
        aid,
        world.complete(aid, iso(START + timedelta(days=4))),
        GATE_004,
        f"the only seen visit ({iso(seen)}) is after completed_on ({iso(START + timedelta(days=4))})",
        wrong=wrong,
    )
    expect_refused_not_seen(
        world,
        aid,
        world.complete(aid, iso(seen - timedelta(days=1))),
        GATE_004,
        f"the only seen visit ({iso(seen)}) is the day after completed_on",
        wrong=wrong,
    )
    expect_completed(world.complete(aid, iso(seen)), GATE_004, "completed on the day the child was seen", seen)
    wrong.raise_if_any(GATE_004)


@check(GATE_003, GATE_001)
def test_future_seen_visit_does_not_count(world: World, today: date) -> None:
    """GATE-003: a seen date in the future is refused 422 ``DATE_IN_FUTURE``, or recorded and completion still refused."""
    assessment = start_assessment(world, START)
    aid = str(assessment["id"])
    wrong = WrongRefusals()
    future = today + timedelta(days=FUTURE_DAYS)
    response = world.visit(aid, iso(future), child_seen=True)
    if response.status_code == 422:
        require(
            error_code(response) == "DATE_IN_FUTURE",
            GATE_003,
            f"a visit dated in the future was refused with the wrong code: {describe(response)}",
        )
    elif response.status_code != 201:
        fail(
            GATE_003,
            f"recording a seen visit dated {iso(future)}: expected 422 DATE_IN_FUTURE or 201, got {describe(response)}",
        )
    expect_refused_not_seen(
        world,
        aid,
        world.complete(aid, iso(today)),
        GATE_003,
        f"the only seen visit is dated in the future ({iso(future)})",
        wrong=wrong,
    )
    expect_refused_not_seen(
        world,
        aid,
        world.complete(aid),
        GATE_003,
        f"the only seen visit is dated in the future ({iso(future)}), completed_on defaulting to today",
        wrong=wrong,
    )
    wrong.raise_if_any(GATE_003)


@check(GATE_006, GATE_001)
def test_refused_completion_leaves_assessment_open_and_unchanged(world: World) -> None:
    """GATE-006: after refused completions (child not seen; completed_on before start) the assessment is unchanged.

    It must then still accept a visit and complete normally (not 409 ``ASSESSMENT_NOT_OPEN``).
    A completion accepted with no visit at all is GATE-001's failure, not this check's.
    """
    assessment = start_assessment(world, START)
    aid = str(assessment["id"])
    wrong = WrongRefusals()
    before = snapshot(get_assessment(world, aid, GATE_006))

    authoriser = world.practitioner("manager")
    token = world.practitioner("practitioner").token
    response = world.client.post(
        f"/assessments/{aid}/complete",
        token=token,
        json={"completed_on": iso(START + timedelta(days=2)), "authorised_by": authoriser.id},
    )
    expect_refused_not_seen(world, aid, response, GATE_001, "no visit, authorised_by given", wrong=wrong)
    expect_unchanged(world, aid, before, "refused for CHILD_NOT_SEEN")

    response = world.client.post(
        f"/assessments/{aid}/complete",
        token=token,
        json={"completed_on": iso(START - timedelta(days=1)), "authorised_by": authoriser.id},
    )
    if 200 <= response.status_code < 300:
        fail(GATE_001, f"completion with no visit, dated before the start, was accepted: {describe(response)}")
    expect_unchanged(world, aid, before, "refused for a completion date before the start")

    seen = START + timedelta(days=3)
    record_visit(world, aid, seen, requirements=GATE_006)
    expect_completed(world.complete(aid, iso(seen)), GATE_006, "after refused completions, seen and completed", seen)
    wrong.raise_if_any(GATE_006)


# -- the cases of specs/test-design/gating.yaml that the checks above do not reach ----------------


@check(GATE_001)
def test_seen_visit_on_another_assessment_does_not_count(world: World) -> None:
    """GATE-001: a seen visit counts only for the assessment it is recorded on. The child's
    first assessment is seen and completed on its start day; a second one started that day
    has no visit of its own, so its completion is refused although the first one's seen
    visit falls inside its period."""
    child = new_child(world)
    first = start_assessment(world, START, child_id=child)
    record_visit(world, str(first["id"]), START)
    expect_completed(
        world.complete(str(first["id"]), iso(START)), GATE_001, "the first assessment, seen on its start day", START
    )
    second = start_assessment(world, START, child_id=child)
    aid = str(second["id"])
    expect_refused_not_seen(
        world,
        aid,
        world.complete(aid, iso(START + timedelta(days=5))),
        GATE_001,
        f"a second assessment with no visit of its own (the first one's seen visit of {iso(START)} "
        "is on another assessment)",
    )


@check(GATE_001)
def test_completion_gated_for_every_writer_role(world: World) -> None:
    """GATE-001: completion without the child seen is refused whoever asks: a manager and
    the admin as well as a practitioner."""
    for who in (world.practitioner("manager"), world.admin):
        assessment = start_assessment(world, START)
        aid = str(assessment["id"])
        expect_refused_not_seen(
            world,
            aid,
            world.complete(aid, iso(START + timedelta(days=2)), actor=who),
            GATE_001,
            f"no visit, completion asked by the {who.role}",
        )


@check(GATE_001)
def test_any_qualifying_visit_allows_completion(world: World) -> None:
    """GATE-001: among several visits (not seen, seen inside the period, seen after the
    completion date) the one that qualifies allows completion, wherever it stands in date
    or recording order: recorded first, a visit that did not see the child and one after the
    completion date must not stop the search (the statement asks for "a visit", any one)."""
    assessment = start_assessment(world, START)
    aid = str(assessment["id"])
    record_visit(world, aid, START + timedelta(days=3), child_seen=False)
    record_visit(world, aid, START + timedelta(days=8))
    record_visit(world, aid, START + timedelta(days=2))
    completed_on = START + timedelta(days=5)
    expect_completed(
        world.complete(aid, iso(completed_on)),
        GATE_001,
        "recorded in this order: not seen on day 3, seen on day 8 (after completion), seen on day 2; "
        "completed on day 5",
        completed_on,
    )


@check(GATE_002, GATE_001)
def test_seen_day_before_start_does_not_count(world: World) -> None:
    """GATE-002: a seen visit dated the day before the start is refused (422 ``DATE_ORDER``)
    or recorded and not counted; a target that declares ``bulk_export`` must refuse it."""
    assessment = start_assessment(world, START)
    aid = str(assessment["id"])
    wrong = WrongRefusals()
    eve = START - timedelta(days=1)
    response = world.visit(aid, iso(eve), child_seen=True)
    if world.context.has("bulk_export") and response.status_code != 422:
        fail(
            GATE_002,
            "recording a seen visit the day before the assessment start: the target declares bulk_export, "
            f"so it must be refused with 422 DATE_ORDER (ICS-1A-EXP-006); got {describe(response)}",
        )
    if response.status_code == 422:
        require(
            error_code(response) == "DATE_ORDER",
            GATE_002,
            f"a visit the day before the assessment start was refused with the wrong code: {describe(response)}",
        )
    elif response.status_code != 201:
        fail(
            GATE_002,
            f"recording a seen visit the day before the start: expected 201 or 422 DATE_ORDER, got {describe(response)}",
        )
    expect_refused_not_seen(
        world,
        aid,
        world.complete(aid, iso(START + timedelta(days=2))),
        GATE_002,
        f"the only seen visit ({iso(eve)}) is the day before the start ({iso(START)})",
        wrong=wrong,
    )
    wrong.raise_if_any(GATE_002)


@check(GATE_003, GATE_001)
def test_seen_tomorrow_does_not_count(world: World, today: date) -> None:
    """GATE-003: a seen visit dated tomorrow (Europe/London) is refused 422
    ``DATE_IN_FUTURE``, or recorded and never counted: completion today, and completion
    dated tomorrow, are both refused (the latter for any reason)."""
    assessment = start_assessment(world, START)
    aid = str(assessment["id"])
    wrong = WrongRefusals()
    tomorrow = today + timedelta(days=1)
    response = world.visit(aid, iso(tomorrow), child_seen=True)
    if response.status_code == 422:
        require(
            error_code(response) == "DATE_IN_FUTURE",
            GATE_003,
            f"a visit dated tomorrow was refused with the wrong code: {describe(response)}",
        )
    elif response.status_code != 201:
        fail(
            GATE_003,
            f"recording a seen visit dated tomorrow ({iso(tomorrow)}): expected 422 DATE_IN_FUTURE or 201, "
            f"got {describe(response)}",
        )
    dated_tomorrow = world.complete(aid, iso(tomorrow))
    if 200 <= dated_tomorrow.status_code < 300:
        fail(
            GATE_003,
            f"with the only seen visit dated tomorrow ({iso(tomorrow)}), completion dated tomorrow was "
            f"accepted: {describe(dated_tomorrow)}",
        )
    expect_still_open(world, aid, "completion dated tomorrow refused")
    expect_refused_not_seen(
        world,
        aid,
        world.complete(aid, iso(today)),
        GATE_003,
        f"the only seen visit is dated tomorrow ({iso(tomorrow)})",
        wrong=wrong,
    )
    wrong.raise_if_any(GATE_003)
