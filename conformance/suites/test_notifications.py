"""Phase 1B notification checks (ICS-1B-NOTIF-001..007), scenario kind.

A new case note must alert every practitioner currently allocated to the child, except
its author, exactly once, within the latency the target declares
(``notification_latency_seconds``); restricted notes leak no content; acknowledgements
stick and belong to the recipient alone.

Notifications may be asynchronous. Positive expectations are polled until they hold (a
synchronous target answers at once); "nobody else was notified" needs the full declared
bound, so each check waits for it once, after its last note, and judges every negative
expectation together. Checks judge only the inbox entries of children they created.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from conformance.checking.checks import check, expect_status, fail, not_applicable, prerequisite_missing
from conformance.checking.world import Practitioner, World

NOTIF_001 = "ICS-1B-NOTIF-001"
NOTIF_002 = "ICS-1B-NOTIF-002"
NOTIF_003 = "ICS-1B-NOTIF-003"
NOTIF_004 = "ICS-1B-NOTIF-004"
NOTIF_005 = "ICS-1B-NOTIF-005"
NOTIF_006 = "ICS-1B-NOTIF-006"
NOTIF_007 = "ICS-1B-NOTIF-007"
API_002 = "ICS-1A-API-002"
#: ``Notification.preview`` in specs/openapi.yaml: ``{type: [string, "null"], maxLength: 100}``
PREVIEW_MAX = 100

DEFAULT_LATENCY = 60.0
_POLL_FIRST = 0.05
_POLL_MAX = 0.5


# -- shared helpers (also used by test_notifications_stateful) -------------------------
def latency_bound(world: World) -> float:
    """The declared ``notification_latency_seconds`` (60 when absent or unusable)."""
    raw = world.context.get("notification_latency_seconds", DEFAULT_LATENCY)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return DEFAULT_LATENCY
    return value if 0 <= value < float("inf") else DEFAULT_LATENCY


def patience(bound: float) -> float:
    """How long to keep looking for a notification that missed the bound.

    Telling "late" (NOTIF-005) from "never" (NOTIF-001) needs looking past the bound.
    Only a failing target ever makes a check wait this long.
    """
    return 2 * bound + 5.0


def note_id(value: Any) -> str:
    """A record's or a notification's case-note reference as a comparable string."""
    return str(value) if value is not None else ""


def our_notifications(
    world: World, who: Practitioner, child_ids: Collection[str], status: str = "all"
) -> list[dict[str, Any]]:
    """``who``'s inbox entries about ``child_ids`` (the children this check created)."""
    wanted = {str(c) for c in child_ids}
    return [
        item
        for item in world.inbox(who, status=status)
        if isinstance(item, dict) and str(item.get("child_id")) in wanted
    ]


def by_note(items: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Group notifications by the case note they announce."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        grouped[note_id(item.get("case_note_id"))].append(item)
    return grouped


@dataclass(frozen=True)
class Arrival:
    """How one recipient's notification of a note was observed, in seconds after the note.

    ``absent`` is when the last poll that did not show it began (None when the first poll
    already did), ``seen`` when the poll that first showed it began. The notification
    appeared somewhere between the two: a poll's granularity is the harness's, not the
    target's, so only ``absent`` can prove it late.
    """

    absent: float | None
    seen: float
    item: dict[str, Any]

    def late(self, bound: float) -> bool:
        """Proven late (NOTIF-005): a poll begun at or after the bound still did not show it."""
        return self.absent is not None and self.absent >= bound


def await_note(
    world: World,
    recipients: Iterable[Practitioner],
    case_note: str,
    child_ids: Collection[str],
    since: float,
    until: float,
    bound: float | None = None,
) -> dict[str, Arrival]:
    """Poll until every recipient's inbox shows ``case_note`` or ``until`` passes.

    Returns, per practitioner ID that got it, its :class:`Arrival` (with the first
    notification for that note). With ``bound``, one round of polls begins exactly at
    ``since + bound`` (unless every notification was seen before), so that a notification
    is either seen by then (on time) or proven absent at the bound (late).
    """
    people = {p.id: p for p in recipients}
    found: dict[str, Arrival] = {}
    absent: dict[str, float] = {}
    checkpoint = since + bound if bound is not None else None
    delay = _POLL_FIRST
    while True:
        for pid in [pid for pid in people if pid not in found]:
            asked = time.monotonic()
            mine = by_note(our_notifications(world, people[pid], child_ids)).get(case_note)
            if mine:
                found[pid] = Arrival(absent.get(pid), asked - since, mine[0])
            else:
                absent[pid] = asked - since
        now = time.monotonic()
        if len(found) == len(people) or now >= until:
            return found
        wake = min(now + delay, until)
        if checkpoint is not None and now < checkpoint < wake:
            wake = checkpoint
        sleep_until(wake)
        delay = min(delay * 2, _POLL_MAX)


def sleep_until(moment: float) -> None:
    """Sleep until the monotonic clock reaches ``moment``."""
    remaining = moment - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def delivered(
    world: World, recipients: Collection[Practitioner], case_note: str, child_ids: Collection[str], what: str
) -> dict[str, dict[str, Any]]:
    """Each recipient's notification of ``case_note``, waiting as long as patience allows.

    For checks that need a notification to judge something else: if it never comes,
    that is NOTIF-001's business (judged by its own check), and this check is SKIPPED.
    """
    since = time.monotonic()
    found = await_note(world, recipients, case_note, child_ids, since, since + patience(latency_bound(world)))
    missing = [p.name for p in recipients if p.id not in found]
    if missing:
        prerequisite_missing(
            f"{what}: no notification of case note {case_note} reached {', '.join(missing)}; cannot judge"
        )
    return {pid: arrival.item for pid, arrival in found.items()}


def dumps(item: Any) -> str:
    """A notification as text, to search it for leaked note content."""
    return json.dumps(item, ensure_ascii=False, default=str)


class Violations:
    """Observations that break requirements, gathered so one check reports them all."""

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []

    def add(self, requirement: str, message: str) -> None:
        self._items.append((requirement, message))

    def raise_if_any(self, judged: tuple[str, ...]) -> None:
        """FAIL the violated requirements; the rest of ``judged`` were checked in full and met."""
        if self._items:
            reqs = sorted({r for r, _ in self._items})
            passed = tuple(r for r in judged if r not in reqs)
            if len(reqs) == 1:
                fail(reqs, "; ".join(m for _, m in self._items), passed=passed)
            fail(reqs, "; ".join(f"[{r}] {m}" for r, m in self._items), passed=passed)


def _judge_arrivals(
    violations: Violations,
    recipients: Iterable[tuple[str, Practitioner]],
    found: Mapping[str, Arrival],
    case_note: str,
    bound: float,
) -> bool:
    """Record missing (NOTIF-001) and late (NOTIF-005) notifications; True if any missing."""
    missing = False
    for label, person in recipients:
        arrival = found.get(person.id)
        if arrival is None:
            missing = True
            violations.add(NOTIF_001, f"{label} (currently allocated) was never notified of case note {case_note}")
        elif arrival.late(bound):
            violations.add(NOTIF_005, f"{label}'s notification of case note {case_note} {late_text(arrival, bound)}")
    return missing


def late_text(arrival: Arrival, bound: float) -> str:
    """How a late notification was observed, for a NOTIF-005 message."""
    return (
        f"was still absent {arrival.absent or 0.0:.1f} s after the note and first seen after {arrival.seen:.1f} s; "
        f"the target declares {bound:g} s"
    )


# -- checks -----------------------------------------------------------------------------
@check(NOTIF_001, NOTIF_002, NOTIF_003, NOTIF_004, NOTIF_005, kind="scenario")
def test_case_note_alerts_current_allocations_exactly_once(world: World, today: date) -> None:
    """NOTIF-001..005: who is alerted of a new case note, how often and how fast.

    Child X has practitioners A and B co-allocated, the author (also allocated) and a
    leaver allocated, and an earlier leaver whose allocation (from 30 days ago) was ended
    yesterday; an outsider is allocated to another child and a stranger to none.
    Note 1 must reach A, B and the leaver (001) within the bound (005); after the
    leaver's allocation ends (today), note 2 must reach A and B only. After the bound has
    passed for both notes: the author has nothing (002), the leaver nothing of note 2, the
    earlier leaver, the outsider and the stranger nothing (003), nobody anything twice (004).
    """
    bound = latency_bound(world)
    child = world.child(family_name="Notifyall")
    other = world.child(family_name="Notifyother")
    child_ids = {str(child["id"]), str(other["id"])}
    a, b, author, leaver, outsider, stranger, early = (world.practitioner("practitioner", fresh=True) for _ in range(7))
    names = {
        a.id: "co-allocated practitioner A",
        b.id: "co-allocated practitioner B",
        author.id: "the author",
        leaver.id: "the de-allocated practitioner",
        outsider.id: "a practitioner allocated to another child",
        stranger.id: "an unallocated practitioner",
        early.id: "a practitioner whose allocation ended yesterday",
    }
    allocations = {p.id: world.allocate(str(child["id"]), p) for p in (a, b, author, leaver)}
    world.allocate(str(other["id"]), outsider)
    gone = world.allocate(str(child["id"]), early, start_date=(today - timedelta(days=30)).isoformat())
    if not isinstance(gone, dict) or not gone.get("id"):
        fail(NOTIF_003, "the allocation response carries no id, so it cannot be ended")
    world.end_allocation(str(gone["id"]), end_date=(today - timedelta(days=1)).isoformat())
    violations = Violations()

    text1 = f"{world.unique('note')} Home visit: the child was seen with both parents present."
    note1 = world.case_note(str(child["id"]), author, text1)
    since = time.monotonic()
    n1 = note_id(note1.get("id") if isinstance(note1, dict) else None)
    if not n1:
        fail(NOTIF_001, "POST case-notes returned no note id; notifications cannot be matched to it")
    expected1 = [(names[p.id], p) for p in (a, b, leaver)]
    found1 = await_note(world, [p for _, p in expected1], n1, child_ids, since, since + patience(bound), bound)
    some_missing = _judge_arrivals(violations, expected1, found1, n1, bound)

    leaver_allocation = allocations[leaver.id]
    if not isinstance(leaver_allocation, dict) or not leaver_allocation.get("id"):
        fail(NOTIF_003, "the allocation response carries no id, so it cannot be ended")
    world.end_allocation(str(leaver_allocation["id"]))

    text2 = f"{world.unique('note')} Telephone call from the school nurse."
    note2 = world.case_note(str(child["id"]), author, text2)
    since = time.monotonic()
    n2 = note_id(note2.get("id") if isinstance(note2, dict) else None)
    if not n2:
        fail(NOTIF_001, "POST case-notes returned no note id; notifications cannot be matched to it")
    expected2 = [(names[p.id], p) for p in (a, b)]
    found2 = await_note(
        world,
        [p for _, p in expected2],
        n2,
        child_ids,
        since,
        since + (bound if some_missing else patience(bound)),
        bound,
    )
    _judge_arrivals(violations, expected2, found2, n2, bound)

    sleep_until(since + bound)  # the bound has now passed for both notes
    ours = {n1, n2}
    for person in (a, b, author, leaver, outsider, stranger, early):
        grouped = by_note(our_notifications(world, person, child_ids))
        for nid, items in grouped.items():
            if len(items) > 1:
                violations.add(NOTIF_004, f"{names[person.id]} has {len(items)} notifications of case note {nid}")
        if person is author and grouped.keys() & ours:
            violations.add(NOTIF_002, "the author was notified of their own case note")
        if person is leaver and n2 in grouped:
            violations.add(NOTIF_003, "a practitioner whose allocation had ended was notified of a later case note")
        if person in (outsider, stranger, early) and grouped:
            violations.add(
                NOTIF_003,
                f"{names[person.id]} was notified of case notes {sorted(grouped)} about a child "
                "they are not (or no longer) allocated to",
            )
    violations.raise_if_any((NOTIF_001, NOTIF_002, NOTIF_003, NOTIF_004, NOTIF_005))


@check(NOTIF_006, kind="scenario")
def test_restricted_note_alert_carries_no_content(world: World) -> None:
    """NOTIF-006: the alert of a restricted note has ``preview`` null and no note text.

    The text starts with a unique marker, so any leaked prefix of it is found wherever
    the target puts it in the notification.
    """
    if not world.context.has("restricted_notes"):
        not_applicable("the target does not declare restricted_notes")
    child = world.child(family_name="Notifysecret")
    reader, author = world.practitioner("practitioner", fresh=True), world.practitioner("practitioner", fresh=True)
    world.allocate(str(child["id"]), reader)
    secret = world.unique("secret")
    text = f"{secret} Disclosure made to the teacher about an adult in the household."
    note = world.case_note(str(child["id"]), author, text, restricted=True)
    nid = note_id(note.get("id") if isinstance(note, dict) else None)
    item = delivered(world, [reader], nid, {str(child["id"])}, "restricted note")[reader.id]
    if item.get("preview") is not None:
        fail(NOTIF_006, f"the notification of a restricted note has preview {item.get('preview')!r}; it must be null")
    text_seen = dumps(item)
    for fragment in (secret, "Disclosure made to the teacher", text):
        if fragment.casefold() in text_seen.casefold():
            fail(NOTIF_006, f"the notification of a restricted note contains its text ({fragment[:40]!r}...)")


@check(API_002, kind="scenario")
def test_long_note_preview_within_schema(world: World) -> None:
    """API-002: the notification of a 150-character note has a ``preview`` valid against the
    Notification schema, null or at most 100 characters.

    What an unrestricted note's preview holds is not in a statement (design.md's "first 100
    characters" is the reference's choice), so only the schema's bound is judged; the
    contract check's generated notes are too short to reach it.
    """
    child = world.child(family_name="Notifylong")
    reader, author = world.practitioner("practitioner", fresh=True), world.practitioner("practitioner", fresh=True)
    world.allocate(str(child["id"]), reader)
    text = f"{world.unique('note')} " + "Long account of the home visit, written in full. " * 3
    text = text[:150].rstrip() + "."
    note = world.case_note(str(child["id"]), author, text)
    nid = note_id(note.get("id") if isinstance(note, dict) else None)
    item = delivered(world, [reader], nid, {str(child["id"])}, "a long note")[reader.id]
    preview = item.get("preview")
    if preview is not None and (not isinstance(preview, str) or len(preview) > PREVIEW_MAX):
        shown = f"{len(preview)} characters" if isinstance(preview, str) else repr(preview)[:80]
        fail(
            API_002,
            f"the notification of a {len(text)}-character note has preview of {shown}; the Notification "
            f"schema allows null or a string of at most {PREVIEW_MAX} characters",
        )


@check(NOTIF_007, kind="scenario")
def test_acknowledgement_sticks_and_belongs_to_recipient(world: World) -> None:
    """NOTIF-007: an acknowledged alert stays acknowledged; only its recipient may acknowledge.

    A acknowledges note 1's alert; B (also a recipient) then tries to acknowledge A's
    alert of note 2 and must get 404 ``NOT_FOUND`` without effect. After note 2, A's first
    alert still carries the same ``acknowledged_at``, the ``status`` filters agree, and
    the second alert is unacknowledged.
    """
    child = world.child(family_name="Notifyack")
    a, b, author = (world.practitioner("practitioner", fresh=True) for _ in range(3))
    for person in (a, b):
        world.allocate(str(child["id"]), person)
    child_ids = {str(child["id"])}

    note1 = world.case_note(str(child["id"]), author, f"{world.unique('note')} First contact.")
    n1 = note_id(note1.get("id") if isinstance(note1, dict) else None)
    first = delivered(world, [a], n1, child_ids, "first note")[a.id]
    if first.get("id") is None:
        fail(NOTIF_007, "the notification has no id, so it cannot be acknowledged")
    first_id = str(first["id"])
    acked = expect_status(
        world.client.post(f"/notifications/{first_id}/acknowledge", token=a.token),
        200,
        NOTIF_007,
        "the recipient acknowledges a notification",
    )
    if not isinstance(acked, dict) or not acked.get("acknowledged_at"):
        fail(NOTIF_007, f"acknowledging returned {str(acked)[:200]} without acknowledged_at")
    acknowledged_at = acked["acknowledged_at"]

    note2 = world.case_note(str(child["id"]), author, f"{world.unique('note')} Second contact.")
    n2 = note_id(note2.get("id") if isinstance(note2, dict) else None)
    second = delivered(world, [a], n2, child_ids, "second note")[a.id]
    second_id = str(second.get("id"))
    foreign = world.client.post(f"/notifications/{second_id}/acknowledge", token=b.token)
    expect_status(foreign, 404, NOTIF_007, "another practitioner acknowledges A's notification", code="NOT_FOUND")

    everything = {str(i.get("id")): i for i in our_notifications(world, a, child_ids)}
    if first_id not in everything or everything[first_id].get("acknowledged_at") != acknowledged_at:
        fail(
            NOTIF_007,
            f"after a further note, the notification {first_id} acknowledged at {acknowledged_at} "
            + (
                "is gone"
                if first_id not in everything
                else f"reads acknowledged_at {everything[first_id].get('acknowledged_at')!r}"
            ),
        )
    if second_id in everything and everything[second_id].get("acknowledged_at"):
        fail(
            NOTIF_007,
            f"notification {second_id} shows acknowledged_at although only another practitioner "
            "tried to acknowledge it",
        )
    unacked = {str(i.get("id")) for i in our_notifications(world, a, child_ids, status="unacknowledged")}
    if first_id in unacked:
        fail(NOTIF_007, "status=unacknowledged still lists an acknowledged notification")
    if second_id not in unacked:
        fail(NOTIF_007, "status=unacknowledged omits a notification nobody has acknowledged")
    acknowledged = {str(i.get("id")) for i in our_notifications(world, a, child_ids, status="acknowledged")}
    if first_id not in acknowledged or second_id in acknowledged:
        fail(NOTIF_007, f"status=acknowledged lists {sorted(acknowledged)}; expected exactly [{first_id!r}]")


# -- the cases of specs/test-design/notifications.yaml that the checks above do not reach ---------


def _allocate_again(world: World, child_id: str, person: Practitioner) -> bool:
    """Allocate ``person`` (already allocated) once more; True when the target recorded a second allocation.

    Refusing it (4xx) is the supplier's choice (ICS-1A-ALLOC-001's allocate-twice-status case).
    """
    manager = world.practitioner("manager")
    response = world.client.post(
        f"/children/{child_id}/allocations", token=manager.token, json={"practitioner_id": person.id}
    )
    body = expect_status(response, (200, 201, 400, 409, 422), NOTIF_004, "allocate an allocated practitioner again")
    return response.status_code == 201 and isinstance(body, dict) and body.get("end_date") is None


@check(NOTIF_001, NOTIF_002, NOTIF_003, NOTIF_004, kind="scenario")
def test_alerts_for_every_role_and_repeated_allocation(world: World) -> None:
    """NOTIF-001..004 for the roles and repeats the first scenario leaves out.

    Allocated to the child: a manager, a practitioner allocated twice, an author allocated
    twice, and a practitioner whose allocation was ended and who was allocated again. Three
    notes: by the author allocated twice, by an unallocated manager, by the admin. Each
    note must reach every allocated user but its author, exactly once (001, 004); no author
    gets their own note, not even one allocated twice (002); the unallocated manager and
    the admin get none of the others' notes (003).
    """
    bound = latency_bound(world)
    child = str(world.child(family_name="Notifyroles")["id"])
    child_ids = {child}
    manager_allocated = world.practitioner("manager", fresh=True)
    twice, author_twice, again = (world.practitioner("practitioner", fresh=True) for _ in range(3))
    manager_outside = world.practitioner("manager", fresh=True)
    admin = world.admin
    names = {
        manager_allocated.id: "an allocated manager",
        twice.id: "a practitioner allocated twice",
        author_twice.id: "an author allocated twice",
        again.id: "a practitioner allocated again after ending",
        manager_outside.id: "an unallocated manager",
        admin.id: "the admin",
    }
    for person in (manager_allocated, twice, author_twice):
        world.allocate(child, person)
    doubled = {p.id for p in (twice, author_twice) if _allocate_again(world, child, p)}
    ended = world.allocate(child, again)
    if not isinstance(ended, dict) or not ended.get("id"):
        fail(NOTIF_001, "the allocation response carries no id, so it cannot be ended")
    world.end_allocation(str(ended["id"]))
    world.allocate(child, again)
    violations = Violations()
    allocated = (manager_allocated, twice, author_twice, again)
    notes: dict[str, Practitioner] = {}
    found_by_note: dict[str, dict[str, Arrival]] = {}
    since = time.monotonic()
    for author in (author_twice, manager_outside, admin):
        body = world.case_note(child, author, f"{world.unique('note')} Written by {names[author.id]}.")
        since = time.monotonic()
        nid = note_id(body.get("id") if isinstance(body, dict) else None)
        if not nid:
            fail(NOTIF_001, "POST case-notes returned no note id; notifications cannot be matched to it")
        notes[nid] = author
        expected = [p for p in allocated if p.id != author.id]
        found_by_note[nid] = await_note(world, expected, nid, child_ids, since, since + patience(bound))
        for person in expected:
            if person.id not in found_by_note[nid]:
                violations.add(NOTIF_001, f"{names[person.id]} was never notified of the note by {names[author.id]}")
    sleep_until(since + bound)  # the bound has passed for every note (the last one too): judge what must not be there
    for person in (*allocated, manager_outside):
        grouped = by_note(our_notifications(world, person, child_ids))
        for nid, items in grouped.items():
            if nid not in notes:
                continue
            author = notes[nid]
            if author.id == person.id:
                violations.add(
                    NOTIF_002,
                    f"{names[person.id]} was notified of their own note"
                    + (" (allocated twice)" if person.id in doubled else ""),
                )
            elif person is manager_outside:
                violations.add(NOTIF_003, f"{names[person.id]} was notified of the note by {names[author.id]}")
            elif len(items) > 1:
                violations.add(
                    NOTIF_004,
                    f"{names[person.id]} holds {len(items)} notifications of the note by "
                    f"{names[author.id]}" + (" (allocated twice)" if person.id in doubled else ""),
                )
    admin_notes = by_note(our_notifications(world, admin, child_ids))
    foreign = sorted(names[notes[n].id] for n in admin_notes if n in notes and notes[n] is not admin)
    if foreign:
        violations.add(NOTIF_003, f"the admin, not allocated, was notified of the notes by {foreign}")
    if admin_notes.keys() & {n for n, a in notes.items() if a is admin}:
        violations.add(NOTIF_002, "the admin was notified of their own note")
    violations.raise_if_any((NOTIF_001, NOTIF_002, NOTIF_003, NOTIF_004))


@check(NOTIF_006, kind="scenario")
def test_restricted_alert_empty_for_manager_recipient(world: World) -> None:
    """NOTIF-006: a restricted note's alert to an allocated manager (who may read the text)
    still has ``preview`` null and none of the text."""
    if not world.context.has("restricted_notes"):
        not_applicable("the target does not declare restricted_notes")
    child = world.child(family_name="Notifysecret")
    manager, author = world.practitioner("manager", fresh=True), world.practitioner("practitioner", fresh=True)
    world.allocate(str(child["id"]), manager)
    secret = world.unique("secret")
    note = world.case_note(str(child["id"]), author, f"{secret} Information shared by the police.", restricted=True)
    nid = note_id(note.get("id") if isinstance(note, dict) else None)
    item = delivered(world, [manager], nid, {str(child["id"])}, "restricted note to a manager")[manager.id]
    if item.get("preview") is not None or secret.casefold() in dumps(item).casefold():
        fail(
            NOTIF_006,
            f"the notification of a restricted note to a manager carries content: preview {item.get('preview')!r}",
        )


@check(NOTIF_007, kind="scenario")
def test_acknowledgement_repeated_and_by_other_roles(world: World) -> None:
    """NOTIF-007: a manager and the admin acknowledging someone else's notification get 404
    ``NOT_FOUND`` and change nothing; the recipient acknowledging twice keeps the first
    ``acknowledged_at`` (the second answer's status is the supplier's choice)."""
    child = world.child(family_name="Notifyack")
    recipient, author = world.practitioner("practitioner", fresh=True), world.practitioner("practitioner", fresh=True)
    world.allocate(str(child["id"]), recipient)
    child_ids = {str(child["id"])}
    note = world.case_note(str(child["id"]), author, f"{world.unique('note')} Contact made.")
    item = delivered(
        world, [recipient], note_id(note.get("id") if isinstance(note, dict) else None), child_ids, "a note"
    )[recipient.id]
    if item.get("id") is None:
        fail(NOTIF_007, "the notification has no id, so it cannot be acknowledged")
    path = f"/notifications/{item['id']}/acknowledge"
    for other in (world.practitioner("manager", fresh=True), world.admin):
        expect_status(
            world.client.post(path, token=other.token),
            404,
            NOTIF_007,
            f"the {other.role} acknowledges someone else's notification",
            code="NOT_FOUND",
        )
    mine = {str(i.get("id")): i for i in our_notifications(world, recipient, child_ids)}
    if mine.get(str(item["id"]), {}).get("acknowledged_at"):
        fail(
            NOTIF_007, "a notification shows acknowledged_at after only a manager and the admin tried to acknowledge it"
        )
    first = expect_status(world.client.post(path, token=recipient.token), 200, NOTIF_007, "the recipient acknowledges")
    if not isinstance(first, dict) or not first.get("acknowledged_at"):
        fail(NOTIF_007, f"acknowledging returned {str(first)[:200]} without acknowledged_at")
    time.sleep(0.01)  # a second acknowledgement that overwrote the time would show a later one
    again = world.client.post(path, token=recipient.token)
    body = expect_status(again, (200, 400, 404, 409, 422), NOTIF_007, "the recipient acknowledges again")
    if again.status_code == 200 and isinstance(body, dict) and body.get("acknowledged_at") != first["acknowledged_at"]:
        fail(
            NOTIF_007,
            f"acknowledging again answered acknowledged_at {body.get('acknowledged_at')!r}; first "
            f"acknowledged at {first['acknowledged_at']}",
        )
    after = {str(i.get("id")): i for i in our_notifications(world, recipient, child_ids)}.get(str(item["id"]), {})
    if after.get("acknowledged_at") != first["acknowledged_at"]:
        fail(
            NOTIF_007,
            f"after a second acknowledgement the notification reads acknowledged_at "
            f"{after.get('acknowledged_at')!r}; first acknowledged at {first['acknowledged_at']}",
        )
