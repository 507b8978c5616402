"""Referrals (ICS-1A-REF-001..002).

* REF-001: a referral is recorded with its received date, source and reason, and read back
  unchanged both by id and in the child's list of referrals.
* REF-002: a received date in the future is refused 422 ``DATE_IN_FUTURE`` and nothing is
  recorded for the child.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from conformance.checking.checks import check, expect_status, fail, require
from conformance.checking.world import World
from conformance.suites.test_gating import iso, new_child

REF_001 = "ICS-1A-REF-001"
REF_002 = "ICS-1A-REF-002"


def _referrals_of(world: World, child: str, requirement: str) -> list[dict[str, Any]]:
    body = expect_status(
        world.client.get(f"/children/{child}/referrals", token=world.practitioner("practitioner").token),
        200,
        requirement,
        "list the child's referrals",
    )
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        fail(requirement, f"GET /children/{child}/referrals is not a list of items: {str(body)[:300]}")
    return [i for i in items if isinstance(i, dict)]


@check(REF_001)
def test_referral_recorded_and_read_back(world: World) -> None:
    """REF-001: child, received date, source and reason read back unchanged (by id and per child)."""
    child = new_child(world, "Referred")
    sent = {
        "child_id": child,
        "received_on": "2008-01-15",
        "source": "health",
        "reason": f"Concern about neglect reported by the health visitor ({world.unique('ref')})",
    }
    created = world.referral(child, sent["received_on"], source=sent["source"], reason=sent["reason"])
    rid = created.get("id") if isinstance(created, dict) else None
    if rid in (None, ""):
        fail(REF_001, f"POST /referrals returned no referral id: {str(created)[:200]}")
    read = expect_status(
        world.client.get(f"/referrals/{rid}", token=world.practitioner("practitioner").token),
        200,
        REF_001,
        f"read referral {rid}",
    )
    for where, body in (("created", created), ("read back", read)):
        if not isinstance(body, dict):
            fail(REF_001, f"referral {rid} ({where}) is not an object: {str(body)[:200]}")
        for field, value in sent.items():
            require(
                str(body.get(field)) == value,
                REF_001,
                f"referral {rid} ({where}) has {field}={body.get(field)!r}, expected {value!r}",
            )
    listed = [r for r in _referrals_of(world, child, REF_001) if str(r.get("id")) == str(rid)]
    require(
        len(listed) == 1,
        REF_001,
        f"GET /children/{child}/referrals lists referral {rid} {len(listed)} times, expected once",
    )
    for field, value in sent.items():
        require(
            str(listed[0].get(field)) == value,
            REF_001,
            f"referral {rid} listed for the child with {field}={listed[0].get(field)!r}, expected {value!r}",
        )


@check(REF_002)
def test_referral_received_in_future_refused(world: World, today: date) -> None:
    """REF-002: a received date in the future is refused 422 ``DATE_IN_FUTURE``; nothing is recorded."""
    child = new_child(world, "Referred")
    future = today + timedelta(days=30)
    response = world.client.post(
        "/referrals",
        token=world.practitioner("practitioner").token,
        json={"child_id": child, "received_on": iso(future), "source": "school", "reason": "Concern raised"},
    )
    expect_status(
        response, 422, REF_002, f"record a referral received on {iso(future)} (in the future)", code="DATE_IN_FUTURE"
    )
    require(
        not _referrals_of(world, child, REF_002),
        REF_002,
        "the refused referral was nevertheless recorded for the child",
    )


# -- the cases of specs/test-design/referrals.yaml that the checks above do not reach -------------

SOURCES = ("police", "school", "health", "self", "family", "local_authority", "other")


@check(REF_001)
def test_referral_every_source_and_longest_reason(world: World) -> None:
    """REF-001: a referral from each source reads back with that source, and a reason of
    2000 characters (the maximum) reads back whole."""
    child = new_child(world, "Referred")
    longest = (f"{world.unique('why')} " + "Concern about neglect reported by the school nurse. " * 40)[:2000]
    sent = [(source, f"Referral from {source}") for source in SOURCES] + [("school", longest)]
    for source, reason in sent:
        created = world.referral(child, "2008-01-15", source=source, reason=reason)
        rid = created.get("id") if isinstance(created, dict) else None
        if rid in (None, ""):
            fail(REF_001, f"POST /referrals returned no referral id: {str(created)[:200]}")
        read = expect_status(
            world.client.get(f"/referrals/{rid}", token=world.practitioner("practitioner").token),
            200,
            REF_001,
            f"read referral {rid}",
        )
        if not isinstance(read, dict) or read.get("source") != source or read.get("reason") != reason:
            got = (read.get("source"), len(str(read.get("reason")))) if isinstance(read, dict) else read
            fail(
                REF_001,
                f"referral {rid} sent with source {source!r} and a reason of {len(reason)} characters "
                f"reads back (source, reason length) {got!r}",
            )


@check(REF_002)
def test_referral_date_boundaries(world: World, today: date) -> None:
    """REF-002: a received date of tomorrow (Europe/London) is refused 422 ``DATE_IN_FUTURE``
    and not recorded; a received date of today is accepted."""
    child = new_child(world, "Referred")
    token = world.practitioner("practitioner").token
    tomorrow = today + timedelta(days=1)
    response = world.client.post(
        "/referrals",
        token=token,
        json={"child_id": child, "received_on": iso(tomorrow), "source": "school", "reason": "Concern raised"},
    )
    expect_status(
        response, 422, REF_002, f"record a referral received tomorrow ({iso(tomorrow)})", code="DATE_IN_FUTURE"
    )
    require(
        not _referrals_of(world, child, REF_002),
        REF_002,
        "the refused referral was nevertheless recorded for the child",
    )
    response = world.client.post(
        "/referrals",
        token=token,
        json={"child_id": child, "received_on": iso(today), "source": "school", "reason": "Concern raised"},
    )
    expect_status(response, 201, REF_002, f"record a referral received today ({iso(today)})")
