"""Phase 1C chronology through the API (ICS-1C-CHRON-002), scenario kind.

A child is given a history whose events tie on every key of the order: two allocations
starting the same day (ordered by source_id), an assessment started and the child seen
the same day (ordered by type), a visit that did not see the child (no event), an ended
allocation, a completed assessment and one still open (no completion event). Its
chronology must be exactly the oracle's (:mod:`conformance.domain.chronology`) over the
records the API lists for it, in order; a child with no history has an empty one, and
another child's events never appear. The stateful check (``test_chronology_stateful``)
grows histories step by step.
"""

from __future__ import annotations

from typing import Any

from conformance.checking.checks import RequirementFailure, check, expect_status, fail, not_applicable
from conformance.checking.search_oracle import child_id, name_token
from conformance.checking.world import World
from conformance.domain.chronology import derive_events

CHRON_002 = "ICS-1C-CHRON-002"
_EVENT_KEYS = ("child_id", "date", "type", "source_type", "source_id")


def require_chronology(world: World) -> None:
    if not world.context.has("chronology_export"):
        not_applicable("the target does not declare the chronology_export capability")


def _items(world: World, path: str, requirement: str) -> list[dict[str, Any]]:
    body = expect_status(world.client.get(path, token=world.admin.token), 200, requirement, f"GET {path}")
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        fail(requirement, f"GET {path} is not {{items: [...]}}: {str(body)[:200]}")
    return [i for i in items if isinstance(i, dict)]


def expected_chronology(world: World, cid: str, requirement: str = CHRON_002) -> list[dict[str, Any]]:
    """The oracle's chronology of ``cid`` over the records the API lists for it."""
    assessments = _items(world, f"/children/{cid}/assessments", requirement)
    events = derive_events(
        referrals=_items(world, f"/children/{cid}/referrals", requirement),
        assessments=assessments,
        visits=[v for a in assessments for v in (a.get("visits") or []) if isinstance(v, dict)],
        allocations=_items(world, f"/children/{cid}/allocations", requirement),
    )
    return [e.to_json() for e in events]


def chronology_problem(world: World, cid: str, requirement: str = CHRON_002) -> str | None:
    """Why GET /children/{cid}/chronology is not the oracle's chronology (None: it is)."""
    got = [{k: e.get(k) for k in _EVENT_KEYS} for e in _items(world, f"/children/{cid}/chronology", requirement)]
    want = expected_chronology(world, cid, requirement)
    if got == want:
        return None
    missing = [e for e in want if e not in got]
    extra = [e for e in got if e not in want]
    if not missing and not extra:
        return f"the events are right but out of order: got {_short(got)}, expected {_short(want)}"
    return f"missing {_short(missing)}; unexpected {_short(extra)}; expected {_short(want)}"


def _short(events: list[dict[str, Any]]) -> str:
    return "[" + ", ".join(f"{e.get('date')} {e.get('type')} {e.get('source_id')}" for e in events[:12]) + "]"


@check(CHRON_002, kind="scenario")
def test_chronology_through_api(world: World) -> None:
    """CHRON-002: a history with ties on date, type and source_id; an unseen visit; an open assessment;
    an empty history; another child's events kept apart."""
    require_chronology(world)
    worker = world.practitioner("practitioner")
    family = name_token()
    cid = child_id(world.child(family_name=family), CHRON_002)
    empty = child_id(world.child(family_name=family), CHRON_002)
    for _ in range(2):
        world.allocate(cid, world.practitioner("practitioner", fresh=True), start_date="2008-01-02")
    ended = world.allocate(cid, worker, start_date="2008-01-03")
    world.end_allocation(str(ended["id"]), end_date="2008-02-01")
    referral = world.referral(cid, "2008-01-07", actor=worker)
    first = world.assessment(cid, "2008-01-08", referral_id=str(referral["id"]), actor=worker)
    for day, seen in (("2008-01-08", True), ("2008-01-09", False), ("2008-01-10", True)):
        expect_status(
            world.visit(str(first["id"]), day, child_seen=seen, actor=worker), 201, CHRON_002, "record a visit"
        )
    expect_status(world.complete(str(first["id"]), "2008-01-14", actor=worker), 200, CHRON_002, "complete")
    world.assessment(cid, "2008-02-04", kind="core", actor=worker)
    problems = []
    for label, child in (("the child with a history", cid), ("the child without one", empty)):
        try:
            problem = chronology_problem(world, child)
        except RequirementFailure as failure:
            problem = failure.message
        if problem:
            problems.append(f"{label} ({child}): {problem}")
    if problems:
        fail(CHRON_002, "GET /children/{id}/chronology is not the child's chronology:\n" + "\n".join(problems))
