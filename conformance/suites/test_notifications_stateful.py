"""Stateful model-based check of notifications (ICS-1B-NOTIF-001..007), property kind.

A Hypothesis ``RuleBasedStateMachine`` starts each example with every practitioner
unallocated, allocated or formerly allocated to the child, then interleaves allocating
and ending allocations, plain and restricted case notes by random authors, and
acknowledgements (some attempted first by someone else). An in-memory oracle knows who
must hold which notification; after every note every practitioner's inbox (restricted to
the machine's own child) is compared with it, after every acknowledgement the owner's,
and each mismatch is reported against the precise requirement it breaks, with an
exception class per requirement so that shrinking keeps to the same failure. Hypothesis
shrinks a failure to the minimal step sequence.

Asynchronous targets: unwanted, duplicated, leaking or wrongly acknowledged
notifications fail when seen; a missing one only at teardown, once its declared bound
has passed (teardown waits only if something is outstanding, so a synchronous target
never waits). Before the machine runs, one probe note checks the latency itself
(NOTIF-005), so the machine may read "absent after the bound" as "never" (NOTIF-001).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NoReturn

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from conformance.checking.checks import RequirementFailure, check, describe, error_code, fail
from conformance.checking.world import Practitioner, World
from conformance.suites.test_notifications import (
    NOTIF_001,
    NOTIF_002,
    NOTIF_003,
    NOTIF_004,
    NOTIF_005,
    NOTIF_006,
    NOTIF_007,
    await_note,
    by_note,
    dumps,
    late_text,
    latency_bound,
    note_id,
    our_notifications,
    patience,
    sleep_until,
)

CHILDREN = 1
PEOPLE = 3
START_STATES = ("none", "current", "current", "ended")  # allocated half the time: co-allocations are common

_FAILURE_TYPES: dict[tuple[str, ...], type[RequirementFailure]] = {}


def _fail(requirements: tuple[str, ...], message: str) -> NoReturn:
    """Raise a RequirementFailure of a class specific to ``requirements``.

    Hypothesis tells bugs apart by exception type and origin; one class per requirement
    set keeps shrinking from turning, say, a NOTIF-003 failure into a NOTIF-001 one.
    """
    key = tuple(sorted(requirements))
    cls = _FAILURE_TYPES.get(key)
    if cls is None:
        suffix = "_".join(r.rsplit("-", 2)[-2] + r.rsplit("-", 1)[-1] for r in key)
        cls = type(f"RequirementFailure_{suffix}", (RequirementFailure,), {"__module__": __name__})
        _FAILURE_TYPES[key] = cls
    raise cls(key, message)


@dataclass
class Note:
    """What the oracle knows of one case note."""

    id: str
    child: int
    author: int
    restricted: bool
    marker: str
    created: float
    recipients: frozenset[int]


@dataclass
class Expected:
    """One notification the oracle expects in one inbox."""

    note: Note
    notification_id: str | None = None
    acknowledged: bool = False
    acknowledged_at: str | None = None
    seen: bool = False


@dataclass
class Oracle:
    """Who is allocated where, and which notifications each practitioner must hold."""

    allocations: dict[tuple[int, int], str] = field(default_factory=dict)  # (child, person) -> allocation id
    notes: dict[str, Note] = field(default_factory=dict)
    inboxes: dict[int, dict[str, Expected]] = field(default_factory=lambda: {p: {} for p in range(PEOPLE)})


def _probe_latency(world: World, bound: float) -> float:
    """NOTIF-005 (and 001) on one note, so the machine can treat "absent after the bound" as never.

    Returns the observed latency in seconds.
    """
    child = world.child(family_name="Notifyprobe")
    reader, author = world.practitioner("practitioner", fresh=True), world.practitioner("practitioner", fresh=True)
    world.allocate(str(child["id"]), reader)
    note = world.case_note(str(child["id"]), author, f"{world.unique('probe')} Latency probe.")
    since = time.monotonic()
    nid = note_id(note.get("id") if isinstance(note, dict) else None)
    found = await_note(world, [reader], nid, {str(child["id"])}, since, since + patience(bound), bound)
    if reader.id not in found:
        fail(NOTIF_001, f"the only practitioner allocated to a child was never notified of case note {nid}")
    arrival = found[reader.id]
    if arrival.late(bound):
        fail(NOTIF_005, f"the probe note's notification {late_text(arrival, bound)}")
    return max(0.0, arrival.seen)


def _group_leaves(group: BaseExceptionGroup) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_group_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves


@check(NOTIF_001, NOTIF_002, NOTIF_003, NOTIF_004, NOTIF_005, NOTIF_006, NOTIF_007, kind="property")
def test_notifications_match_model(world: World) -> None:
    """NOTIF-001..007 under random interleavings of allocations, notes and acknowledgements.

    Per note the oracle expects exactly one notification for each practitioner currently
    allocated to the child other than the author (001, 002, 003, 004), with ``preview``
    null and no text when restricted (006); acknowledgements by the recipient stick with
    ``acknowledged_at`` unchanged, others' are refused with 404 and have no effect (007);
    the probe note is in the inbox within the declared bound (005).
    """
    bound = latency_bound(world)
    restricted_notes = world.context.has("restricted_notes")
    observed = _probe_latency(world, bound)
    # Declaring a notification missing needs the full bound. Once one missing notification
    # has been established that way, shrinking only looks for the same failure in smaller
    # step sequences, so it may wait a few times the probe's latency instead; the final
    # replay of the minimal example waits the full bound again (so a target that only
    # looked faulty ends as Flaky, ERROR, never as a false FAIL).
    established = {"missing": False}
    shrink_wait = min(bound, max(0.02, 5 * observed))

    def missing_after() -> float:
        if not established["missing"] or current_build_context().is_final:
            return bound
        return shrink_wait

    class NotificationMachine(RuleBasedStateMachine):
        """CHILDREN children and PEOPLE practitioners, fresh for every example."""

        def __init__(self) -> None:
            super().__init__()
            self.children = [str(world.child(family_name="Notifymodel")["id"]) for _ in range(CHILDREN)]
            self.people: list[Practitioner] = [world.practitioner("practitioner", fresh=True) for _ in range(PEOPLE)]
            self.model = Oracle()
            self.failed = False

        def _fail(self, requirements: tuple[str, ...], message: str) -> NoReturn:
            self.failed = True  # teardown then skips waiting for outstanding notifications
            _fail(requirements, message)

        # -- rules ----------------------------------------------------------------------
        @initialize(
            start=st.lists(
                st.lists(st.sampled_from(START_STATES), min_size=PEOPLE, max_size=PEOPLE),
                min_size=CHILDREN,
                max_size=CHILDREN,
            )
        )
        def allocate_some(self, start: list[list[str]]) -> None:
            """Start with each practitioner unallocated, allocated or formerly allocated to each child."""
            for c, row in enumerate(start):
                for p, state in enumerate(row):
                    if state != "none":
                        self._allocate(c, p)
                    if state == "ended":
                        world.end_allocation(self.model.allocations.pop((c, p)))

        @rule(c=st.integers(0, CHILDREN - 1), p=st.integers(0, PEOPLE - 1))
        def toggle_allocation(self, c: int, p: int) -> None:
            """Allocate p to c, or end p's current allocation to c."""
            allocation = self.model.allocations.pop((c, p), None)
            if allocation is None:
                self._allocate(c, p)
            else:
                world.end_allocation(allocation)

        def _allocate(self, c: int, p: int) -> None:
            body = world.allocate(self.children[c], self.people[p])
            if not isinstance(body, dict) or body.get("id") is None:
                self._fail((NOTIF_003,), "the allocation response carries no id, so it cannot be ended")
            self.model.allocations[(c, p)] = str(body["id"])

        @rule(c=st.integers(0, CHILDREN - 1), author=st.integers(0, PEOPLE - 1))
        def add_case_note(self, c: int, author: int) -> None:
            self._add_note(c, author, restricted=False)

        @precondition(lambda self: restricted_notes)
        @rule(c=st.integers(0, CHILDREN - 1), author=st.integers(0, PEOPLE - 1))
        def add_restricted_case_note(self, c: int, author: int) -> None:
            self._add_note(c, author, restricted=True)

        def _add_note(self, c: int, author: int, *, restricted: bool) -> None:
            """Write a note as ``author``; the oracle expects it in every other current allocation's inbox."""
            marker = world.unique("m")
            body = world.case_note(
                self.children[c], self.people[author], f"{marker} Case note text.", restricted=restricted
            )
            nid = note_id(body.get("id") if isinstance(body, dict) else None)
            if not nid:
                self._fail((NOTIF_001,), "POST case-notes returned no note id; notifications cannot be matched to it")
            recipients = frozenset(p for (cc, p) in self.model.allocations if cc == c and p != author)
            note = Note(nid, c, author, restricted, marker, time.monotonic(), recipients)
            self.model.notes[nid] = note
            for p in recipients:
                self.model.inboxes[p][nid] = Expected(note)
            self._compare()

        @rule(k=st.integers(0, 15), other_first=st.booleans())
        def acknowledge(self, k: int, other_first: bool) -> None:
            """A recipient acknowledges an unacknowledged notification; if ``other_first``,
            another practitioner tries first and must be refused (404, or 403) to no effect."""
            known = [
                (p, e)
                for p, inbox in self.model.inboxes.items()
                for e in inbox.values()
                if e.notification_id and not e.acknowledged
            ]
            if not known:
                return
            owner, target = known[k % len(known)]
            path = f"/notifications/{target.notification_id}/acknowledge"
            if other_first:
                actor = (owner + 1 + k % (PEOPLE - 1)) % PEOPLE
                response = world.client.post(path, token=self.people[actor].token)
                if response.status_code != 404 or error_code(response) != "NOT_FOUND":
                    self._fail(
                        (NOTIF_007,),
                        f"p{actor} acknowledging p{owner}'s notification got "
                        f"{describe(response)}; expected 404 NOT_FOUND",
                    )
                self._compare(only=owner)
            response = world.client.post(path, token=self.people[owner].token)
            if response.status_code != 200:
                self._fail((NOTIF_007,), f"p{owner} acknowledging their own notification got {describe(response)}")
            target.acknowledged = True
            self._compare(only=owner)

        # -- comparison with the oracle ------------------------------------------------------
        def _compare(self, *, final: bool = False, only: int | None = None) -> None:
            """Compare every inbox with the oracle.

            Unwanted, duplicated, leaking, wrongly (un)acknowledged or vanished notifications
            fail at once. Missing ones fail only in the ``final`` comparison (teardown, after
            the bound), so the step at which a run fails never depends on timing, which would
            make Hypothesis' data generation inconsistent between replays. ``only`` limits the
            comparison to one practitioner's inbox (after an acknowledgement).
            """
            for p, person in enumerate(self.people):
                if only is not None and p != only:
                    continue
                expected = self.model.inboxes[p]
                present = by_note(our_notifications(world, person, self.children))
                for nid, items in present.items():
                    note = self.model.notes.get(nid)
                    if nid not in expected:
                        if note is not None and note.author == p:
                            self._fail((NOTIF_002,), f"p{p} was notified of their own case note {nid}")
                        why = "an ended or absent allocation" if note is not None else "an unknown case note"
                        self._fail(
                            (NOTIF_003,),
                            f"p{p} was notified of case note {nid} ({why}; allocated when written: "
                            f"{sorted(f'p{r}' for r in note.recipients) if note else '?'})",
                        )
                    if len(items) > 1:
                        self._fail((NOTIF_004,), f"p{p} holds {len(items)} notifications of case note {nid}")
                    item, entry = items[0], expected[nid]
                    if entry.note.restricted:
                        leaked = item.get("preview") is not None or entry.note.marker in dumps(item)
                        if leaked:
                            self._fail(
                                (NOTIF_006,),
                                f"p{p}'s notification of restricted case note {nid} carries content: "
                                f"preview {item.get('preview')!r}",
                            )
                    entry.notification_id = entry.notification_id or (
                        str(item["id"]) if item.get("id") is not None else None
                    )
                    if entry.acknowledged and not item.get("acknowledged_at"):
                        self._fail(
                            (NOTIF_007,), f"p{p}'s notification of case note {nid} was acknowledged but no longer is"
                        )
                    if entry.acknowledged:
                        entry.acknowledged_at = entry.acknowledged_at or item.get("acknowledged_at")
                        if item.get("acknowledged_at") != entry.acknowledged_at:
                            self._fail(
                                (NOTIF_007,),
                                f"p{p}'s notification of case note {nid} was acknowledged at "
                                f"{entry.acknowledged_at} but now reads {item.get('acknowledged_at')!r}",
                            )
                    if not entry.acknowledged and item.get("acknowledged_at"):
                        self._fail(
                            (NOTIF_007,),
                            f"p{p}'s notification of case note {nid} shows acknowledged_at although "
                            "its recipient never acknowledged it",
                        )
                    entry.seen = True
                for nid, entry in expected.items():
                    if nid in present:
                        continue
                    if entry.seen:
                        lost = (NOTIF_007,) if entry.acknowledged else (NOTIF_001,)
                        self._fail(
                            lost,
                            f"p{p}'s {'acknowledged ' if entry.acknowledged else ''}notification of case note "
                            f"{nid} has disappeared from the inbox",
                        )
                    if final:
                        established["missing"] = True
                        self._fail(
                            (NOTIF_001,),
                            f"p{p} (allocated to c{entry.note.child} when p{entry.note.author} wrote "
                            f"case note {nid}) was not notified within {bound:g} s",
                        )

        def teardown(self) -> None:
            pending = [e.note.created for inbox in self.model.inboxes.values() for e in inbox.values() if not e.seen]
            if pending and not self.failed:
                sleep_until(max(pending) + missing_after())
                self._compare(final=True)

    # no explain phase: it traces every line of the process (the in-process reference too) and adds minutes
    phases = tuple(phase for phase in settings().phases if phase is not Phase.explain)
    run_settings = settings(
        deadline=None, phases=phases, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )
    try:
        run_state_machine_as_test(NotificationMachine, settings=run_settings)
    except BaseExceptionGroup as group:  # several distinct bugs: report every requirement they break
        leaves = _group_leaves(group)
        if not leaves or not all(isinstance(e, RequirementFailure) for e in leaves):
            raise
        parts = [str(e) + "".join("\n" + n for n in getattr(e, "__notes__", ())) for e in leaves]
        requirements = sorted({r for e in leaves for r in e.requirements})  # type: ignore[attr-defined]  # all RequirementFailure (checked above)
        raise RequirementFailure(requirements, "\n\n".join(parts)) from group
