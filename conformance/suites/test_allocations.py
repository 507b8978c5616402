"""Phase 1A allocation checks (ICS-1A-ALLOC-001..003), scenario kind.

A manager allocates practitioners to a child; the child's allocation list shows current
allocations with ``end_date`` null and ended ones with the end date recorded; allocating
a practitioner the target does not know is refused. Only allocations of a child the
check created are judged.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

from conformance.checking.checks import check, expect_status, fail, prerequisite_missing
from conformance.checking.world import World

ALLOC_001 = "ICS-1A-ALLOC-001"
ALLOC_002 = "ICS-1A-ALLOC-002"
ALLOC_003 = "ICS-1A-ALLOC-003"


def _allocations(world: World, child_id: str, requirement: str) -> dict[str, dict[str, Any]]:
    """The child's allocations (current and ended) by ID, as a manager sees them."""
    body = expect_status(
        world.client.get(f"/children/{child_id}/allocations", token=world.practitioner("manager").token),
        200,
        requirement,
        "list the child's allocations",
    )
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        fail(requirement, f"GET /children/{child_id}/allocations did not return {{items: [...]}}: {str(body)[:200]}")
    return {str(item.get("id")): item for item in items if isinstance(item, dict)}


def _id_of(body: Any, requirement: str) -> str:
    if not isinstance(body, dict) or body.get("id") is None:
        fail(requirement, f"the allocation response carries no id: {str(body)[:200]}")
    return str(body["id"])


@check(ALLOC_001, kind="scenario")
def test_allocation_listed_as_current(world: World) -> None:
    """ALLOC-001: an allocation is returned and listed for the child, naming the
    practitioner, with ``end_date`` null (current)."""
    child_id = str(world.child(family_name="Allocated")["id"])
    worker = world.practitioner("practitioner", fresh=True)
    created = world.allocate(child_id, worker)
    allocation_id = _id_of(created, ALLOC_001)
    if str(created.get("practitioner_id")) != worker.id or created.get("end_date") is not None:
        fail(
            ALLOC_001,
            f"the new allocation reads practitioner_id {created.get('practitioner_id')!r}, "
            f"end_date {created.get('end_date')!r}; expected {worker.id!r} and null",
        )
    listed = _allocations(world, child_id, ALLOC_001).get(allocation_id)
    if listed is None:
        fail(ALLOC_001, f"allocation {allocation_id} is not in the child's allocation list")
    if str(listed.get("practitioner_id")) != worker.id or listed.get("end_date") is not None:
        fail(
            ALLOC_001,
            f"allocation {allocation_id} is listed with practitioner_id {listed.get('practitioner_id')!r}, "
            f"end_date {listed.get('end_date')!r}; expected {worker.id!r} and null (current)",
        )


@check(ALLOC_002, kind="scenario")
def test_ending_allocation_records_end_date(world: World, today: date) -> None:
    """ALLOC-002: ending an allocation records its end date (given, or by default) and it
    is listed as ended, while a co-allocation left alone stays current."""
    child_id = str(world.child(family_name="Deallocated")["id"])
    start = (today - timedelta(days=30)).isoformat()
    end = (today - timedelta(days=1)).isoformat()
    given, defaulted, kept = (world.practitioner("practitioner", fresh=True) for _ in range(3))
    ids = {
        name: _id_of(world.allocate(child_id, person, start_date=start), ALLOC_002)
        for name, person in (("given", given), ("defaulted", defaulted), ("kept", kept))
    }

    ended = world.end_allocation(ids["given"], end_date=end)
    if not isinstance(ended, dict) or ended.get("end_date") != end:
        fail(
            ALLOC_002,
            f"ending with end_date {end} returned end_date {ended.get('end_date') if isinstance(ended, dict) else ended!r}",
        )
    ended = world.end_allocation(ids["defaulted"])
    if not isinstance(ended, dict) or not ended.get("end_date"):
        fail(ALLOC_002, "ending without an end_date returned no end_date (it defaults to today)")

    listed = _allocations(world, child_id, ALLOC_002)
    if ids["kept"] not in listed:
        prerequisite_missing("the child's current allocation is not listed (ALLOC-001), so ended ones cannot be judged")
    missing = [name for name, aid in ids.items() if aid not in listed]
    if missing:
        fail(
            ALLOC_002,
            f"ended allocations {missing} are missing from the child's allocation list (it lists current and ended)",
        )
    if listed[ids["given"]].get("end_date") != end:
        fail(
            ALLOC_002, f"an allocation ended on {end} is listed with end_date {listed[ids['given']].get('end_date')!r}"
        )
    if not listed[ids["defaulted"]].get("end_date"):
        fail(ALLOC_002, "an allocation ended without a date is still listed as current (end_date null)")
    if listed[ids["kept"]].get("end_date") is not None:
        fail(ALLOC_002, f"ending one allocation ended another: end_date {listed[ids['kept']].get('end_date')!r}")


def _unknown_like(known: str) -> str:
    """An ID shaped like the target's practitioner IDs that names nobody."""
    if re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", known):
        return str(uuid.uuid4())
    if known.isdigit():
        return str(10**15 + uuid.uuid4().int % 10**12)
    return f"{known}-{uuid.uuid4().hex[:12]}"


@check(ALLOC_003, kind="scenario")
def test_allocating_unknown_practitioner_refused(world: World) -> None:
    """ALLOC-003 (SHOULD): allocating a practitioner ID the target does not know is
    refused with 422 ``UNKNOWN_PRACTITIONER`` and nothing is allocated."""
    child_id = str(world.child(family_name="Unallocated")["id"])
    nobody = _unknown_like(world.practitioner("practitioner").id)
    response = world.client.post(
        f"/children/{child_id}/allocations", token=world.practitioner("manager").token, json={"practitioner_id": nobody}
    )
    expect_status(response, 422, ALLOC_003, "allocate an unknown practitioner", code="UNKNOWN_PRACTITIONER")
    stray = [
        aid
        for aid, item in _allocations(world, child_id, ALLOC_003).items()
        if str(item.get("practitioner_id")) == nobody
    ]
    if stray:
        fail(ALLOC_003, f"the refused allocation of an unknown practitioner is listed: {stray}")


# -- the cases of specs/test-design/allocations.yaml that the checks above do not reach -----------


def _allocate_raw(world: World, child_id: str, practitioner_id: str, requirement: str, **fields: Any) -> Any:
    """POST an allocation as a manager; the response (a refusal is judged by the caller)."""
    return world.client.post(
        f"/children/{child_id}/allocations",
        token=world.practitioner("manager").token,
        json={"practitioner_id": practitioner_id, **fields},
    )


def _current_of(listed: dict[str, dict[str, Any]], person: str) -> list[str]:
    return [
        aid
        for aid, item in listed.items()
        if str(item.get("practitioner_id")) == person and item.get("end_date") is None
    ]


@check(ALLOC_001, kind="scenario")
def test_allocating_twice_leaves_practitioner_current(world: World) -> None:
    """ALLOC-001: two practitioners allocated to one child are both listed current; allocating
    one of them again (answered 201, or refused: the supplier's choice) leaves them currently
    allocated."""
    child_id = str(world.child(family_name="Allocated")["id"])
    first, second = world.practitioner("practitioner", fresh=True), world.practitioner("practitioner", fresh=True)
    for person in (first, second):
        _id_of(world.allocate(child_id, person), ALLOC_001)
    response = _allocate_raw(world, child_id, first.id, ALLOC_001)
    expect_status(response, (200, 201, 400, 409, 422), ALLOC_001, "allocate an allocated practitioner again")
    listed = _allocations(world, child_id, ALLOC_001)
    for person, what in ((first, "the practitioner allocated twice"), (second, "a co-allocated practitioner")):
        if not _current_of(listed, person.id):
            fail(
                ALLOC_001,
                f"{what} is not listed as currently allocated (end_date null): "
                f"{[(i.get('practitioner_id'), i.get('end_date')) for i in listed.values()]}",
            )


@check(ALLOC_002, kind="scenario")
def test_ending_twice_and_one_of_two(world: World, today: date) -> None:
    """ALLOC-002: ending an ended allocation again (with another date) leaves its end date as
    first recorded; ending one of a practitioner's two allocations to a child leaves the
    other current (when the target records a second allocation at all)."""
    child_id = str(world.child(family_name="Deallocated")["id"])
    control = _id_of(world.allocate(child_id, world.practitioner("practitioner", fresh=True)), ALLOC_002)
    if control not in _allocations(world, child_id, ALLOC_002):
        prerequisite_missing("the child's current allocation is not listed (ALLOC-001), so ended ones cannot be judged")
    start = (today - timedelta(days=30)).isoformat()
    first_end, second_end = (today - timedelta(days=2)).isoformat(), (today - timedelta(days=1)).isoformat()
    leaver = world.practitioner("practitioner", fresh=True)
    aid = _id_of(world.allocate(child_id, leaver, start_date=start), ALLOC_002)
    ended = world.end_allocation(aid, end_date=first_end)
    if not isinstance(ended, dict) or ended.get("end_date") != first_end:
        fail(ALLOC_002, f"ending with end_date {first_end} returned {str(ended)[:200]}")
    again = world.client.post(
        f"/allocations/{aid}/end", token=world.practitioner("manager").token, json={"end_date": second_end}
    )
    body = expect_status(again, (200, 400, 409, 422), ALLOC_002, "end an ended allocation again")
    if again.status_code == 200 and isinstance(body, dict) and body.get("end_date") != first_end:
        fail(ALLOC_002, f"ending an allocation ended on {first_end} again answered end_date {body.get('end_date')!r}")
    listed = _allocations(world, child_id, ALLOC_002)
    if aid not in listed or listed[aid].get("end_date") != first_end:
        shown = listed[aid].get("end_date") if aid in listed else "(not listed)"
        fail(
            ALLOC_002,
            f"an allocation ended on {first_end} and ended again with {second_end} is listed with end_date {shown!r}",
        )

    twice = world.practitioner("practitioner", fresh=True)
    one = _id_of(world.allocate(child_id, twice), ALLOC_002)
    response = _allocate_raw(world, child_id, twice.id, ALLOC_002)
    body = expect_status(response, (200, 201, 400, 409, 422), ALLOC_002, "allocate the practitioner a second time")
    other = str(body.get("id")) if response.status_code == 201 and isinstance(body, dict) else None
    if other is None or other == one:
        return  # the target keeps one allocation per practitioner: nothing more to judge
    world.end_allocation(one)
    listed = _allocations(world, child_id, ALLOC_002)
    if other not in _current_of(listed, twice.id):
        fail(
            ALLOC_002,
            "ending one of a practitioner's two allocations to the child ended the other too: "
            f"{[(a, i.get('end_date')) for a, i in listed.items() if str(i.get('practitioner_id')) == twice.id]}",
        )
