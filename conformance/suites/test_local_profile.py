"""Generic, parameterised checks of a council's local profile (``--ics-local-profile``).

Collected only when the run has a local profile: each test below is parametrized with the
profile's local requirements of its kind (the test ID is the local requirement's ID) and
marked ``ics_local(ID)``, so its verdict lands in the local verdict only. Each reuses the
national checks' helpers with the council's number:

* ``timescale``: the ICS-1A-TIME-001/002 windows (with and without bank holidays), due
  ``working_days`` working days after the start, read from ``field`` (default ``due_date``);
* ``notification-latency``: the ICS-1B-NOTIF-005 observation (a poll exactly at the bound)
  with the local bound;
* ``search-criterion``: the council's combination of criteria returns the child holding all
  of them and no child differing in one (ICS-1B-SRCH-010's AND, on the council's combination);
* ``code-list``: every local code is accepted in the field and read back unchanged; with
  ``refuse_others`` a value outside the list gets a 4xx.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from conformance.checking.checks import describe, expect_status, fail
from conformance.checking.search_oracle import (
    child_id,
    name_token,
    random_postcode,
    search_ids,
    valid_nhs_number,
    valid_upn,
)
from conformance.checking.world import World
from conformance.domain.workingdays import add_working_days
from conformance.plugin.local import profile_of
from conformance.profiles.model import LocalRequirement
from conformance.spec.catalogue import phase_includes
from conformance.suites.test_gating import get_assessment, iso, start_assessment
from conformance.suites.test_notifications import await_note, note_id, patience
from conformance.suites.test_timescales import ALL_VECTORS

KIND_ATTRIBUTE = "ics_local_kind"


def local_kind(kind: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a generic check as the one judging local requirements of ``kind``."""

    def mark(function: Callable[..., None]) -> Callable[..., None]:
        setattr(function, KIND_ATTRIBUTE, kind)
        return function

    return mark


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    kind = getattr(metafunc.function, KIND_ATTRIBUTE, None)
    profile = profile_of(metafunc.config)
    if kind is None or profile is None:
        return
    from conformance.plugin.options import option

    phase = option(metafunc.config, "ics_phase") or "1B"
    wanted = [r for r in profile.of_kind(kind) if phase_includes(phase, r.phase)]
    metafunc.parametrize(
        "local_requirement",
        [pytest.param(r, marks=pytest.mark.ics_local(r.id, kind="scenario"), id=r.id) for r in wanted],
    )


# -- timescale ------------------------------------------------------------------------------------
@local_kind("timescale")
def test_local_timescale(local_world: World, local_requirement: LocalRequirement) -> None:
    """An assessment's due date (in ``field``) is the local number of working days after its start."""
    rid, params = local_requirement.id, local_requirement.params
    kind, days, field = params["assessment"], int(params["working_days"]), str(params.get("field") or "due_date")
    wrong: list[str] = []
    for vector_kind, start, _national_due in ALL_VECTORS:
        if vector_kind != kind:
            continue
        expected = iso(add_working_days(start, days))
        created = start_assessment(local_world, start, kind=kind)
        read = get_assessment(local_world, str(created["id"]), rid)
        for where, body in (("created", created), ("read back", read)):
            if body.get(field) != expected:
                wrong.append(
                    f"{kind} assessment started {iso(start)} ({where}): {field} {body.get(field)!r}, "
                    f"expected {expected} ({days} working days)"
                )
                break
    if wrong:
        fail(rid, "; ".join(wrong))


# -- notification latency ------------------------------------------------------------------------
@local_kind("notification-latency")
def test_local_notification_latency(local_world: World, local_requirement: LocalRequirement) -> None:
    """A case note's notification is in an allocated practitioner's inbox within the local bound."""
    rid, bound = local_requirement.id, float(local_requirement.params["seconds"])
    world = local_world
    child = child_id(world.child(family_name="Localnotify"), rid)
    recipient = world.practitioner("practitioner", fresh=True)
    author = world.practitioner("practitioner", fresh=True)
    world.allocate(child, recipient)
    note = world.case_note(child, author, f"{world.unique('note')} Strategy discussion arranged.")
    since = time.monotonic()
    nid = note_id(note.get("id") if isinstance(note, dict) else None)
    if not nid:
        fail(rid, "POST case-notes returned no note id; notifications cannot be matched to it")
    found = await_note(world, [recipient], nid, {child}, since, since + patience(bound), bound)
    arrival = found.get(recipient.id)
    if arrival is None:
        fail(rid, f"the allocated practitioner was not notified of case note {nid} within {patience(bound):.1f} s")
    if arrival.late(bound):
        fail(
            rid,
            f"the notification of case note {nid} was still absent {arrival.absent or 0.0:.1f} s after the note "
            f"and first seen after {arrival.seen:.1f} s; the local bound is {bound:g} s",
        )


# -- search criterion ----------------------------------------------------------------------------
def _criterion_value(criterion: str, world: World) -> Any:
    if criterion in ("given_name", "family_name"):
        return name_token()
    if criterion == "date_of_birth":
        return iso(date(2000, 1, 1) + timedelta(days=secrets.randbelow(2900)))
    if criterion == "gender":
        return "female"
    if criterion == "postcode":
        return random_postcode()
    if criterion == "upn":
        return valid_upn()
    if criterion == "nhs_number":
        return valid_nhs_number()
    raise ValueError(f"no generator for search criterion {criterion!r}")


def _other_value(criterion: str, value: Any, world: World) -> Any:
    if criterion == "gender":
        return "male"
    if criterion == "date_of_birth":
        return iso(date.fromisoformat(value) + timedelta(days=1))
    other = _criterion_value(criterion, world)
    while other == value:
        other = _criterion_value(criterion, world)
    return other


@local_kind("search-criterion")
def test_local_search_criterion(local_world: World, local_requirement: LocalRequirement) -> None:
    """A search on the council's combination of criteria finds the child holding all of them, and no
    child differing from it in one criterion."""
    rid, criteria = local_requirement.id, list(local_requirement.params["criteria"])
    world = local_world
    values = {c: _criterion_value(c, world) for c in criteria}
    sought = child_id(world.child(**values), rid, "the sought child")
    decoys = {}
    for criterion in criteria:
        differing = dict(values, **{criterion: _other_value(criterion, values[criterion], world)})
        decoys[criterion] = child_id(world.child(**differing), rid, f"the child differing in {criterion}")
    who = world.practitioner("practitioner")
    returned = set(search_ids(world, who, rid, values))
    problems = []
    if sought not in returned:
        problems.append("did not return the child matching every criterion")
    wrong = sorted(c for c, cid in decoys.items() if cid in returned)
    if wrong:
        problems.append(f"returned the child(ren) differing in {', '.join(wrong)}")
    if problems:
        fail(rid, f"search {values}: " + "; ".join(problems))


# -- code list -----------------------------------------------------------------------------------
_NOT_A_CODE = "ICS-HARNESS-NOT-A-LOCAL-CODE"


@local_kind("code-list")
def test_local_code_list(local_world: World, local_requirement: LocalRequirement) -> None:
    """Every code of the local list is accepted in the field and read back unchanged; with
    ``refuse_others``, a value outside the list is refused with a 4xx."""
    rid, params = local_requirement.id, local_requirement.params
    world = local_world
    attribute = str(params["field"]).split(".", 1)[1]  # referral.reason -> reason
    codes = [str(c) for c in params["codes"]]
    child = child_id(world.child(family_name="Localcodes"), rid)
    who = world.practitioner("practitioner")
    wrong = []
    for code in codes:
        fields = {"source": "school", "reason": "Concern raised", attribute: code}
        body = world.referral(child, "2008-06-02", source=fields["source"], reason=fields["reason"])
        referral = str(body.get("id")) if isinstance(body, dict) else ""
        read = expect_status(
            world.client.get(f"/referrals/{referral}", token=who.token), 200, rid, f"read back referral {referral}"
        )
        if not isinstance(read, dict) or read.get(attribute) != code:
            shown = read.get(attribute) if isinstance(read, dict) else read
            wrong.append(f"{params['field']} {code!r} read back as {shown!r}")
    if params.get("refuse_others"):
        outside = _outside_value(attribute, codes)
        if outside is not None:
            payload = {"child_id": child, "received_on": "2008-06-02", "source": "school", "reason": "Concern raised"}
            payload[attribute] = outside
            response = world.client.post("/referrals", token=who.token, json=payload)
            if not 400 <= response.status_code < 500:
                wrong.append(f"{params['field']} {outside!r}, not a local code, was not refused: {describe(response)}")
    if wrong:
        fail(rid, "; ".join(wrong))


def _outside_value(attribute: str, codes: list[str]) -> str | None:
    """A value outside the local list the API would otherwise accept (None: there is none to try)."""
    if attribute != "source":
        return _NOT_A_CODE
    from conformance.profiles.model import referral_sources

    return next((s for s in referral_sources() if s not in codes), None)
