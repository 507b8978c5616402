"""Stateful model-based check of assessment gating (ICS-1B-GATE-001..006), property kind.

A Hypothesis ``RuleBasedStateMachine`` works on a few children of its own: it starts
assessments (2008 dates), records visits (seen or not; dated before the start, within
it, after it, or in the future) and attempts completions with various ``completed_on``
(before the start, within, later, or omitted = today). An oracle implementing design.md
§4 decides each completion: accepted exactly when a recorded visit saw the child on a date
``start <= visit_date <= completed_on`` that is not in the future. After every attempt the
decision and the assessment's state are compared with the oracle; a mismatch raises a
``RequirementFailure`` naming the requirement it breaks:

* accepted although it must be refused: the requirement each recorded visit's disqualifier
  isolates (GATE-005 not seen, GATE-002 before the start, GATE-003 in the future, GATE-004
  after ``completed_on``), or GATE-001 when there is no visit at all;
* refused although a visit qualifies, or refused with a status/code other than 422
  ``CHILD_NOT_SEEN`` (``DATE_ORDER`` when ``completed_on`` precedes the start): GATE-001;
* after a refusal the assessment is not open and unchanged: GATE-006.

Visits the oracle says are invalid to record (future: ``DATE_IN_FUTURE``; before start:
``DATE_ORDER``) may be refused with that code or recorded and not counted; both are
conformant. Budgets (examples, steps) come from the loaded Hypothesis profile; shrinking
reports the minimal step sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NoReturn

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from conformance.checking.checks import RequirementFailure, check, describe, error_code
from conformance.checking.world import World
from conformance.suites.test_gating import (
    GATE_001,
    GATE_002,
    GATE_003,
    GATE_004,
    GATE_005,
    GATE_006,
    iso,
    new_child,
    snapshot,
)

CHILDREN = 2
#: Assessment starts: Mondays-to-Fridays of early 2008, far enough from "today".
FIRST_START = date(2008, 1, 7)

_FAILURE_TYPES: dict[str, type[RequirementFailure]] = {}


def _fail(kind: str, requirements: tuple[str, ...] | str, message: str) -> NoReturn:
    """Raise a RequirementFailure of a class specific to the ``kind`` of mismatch.

    Hypothesis tells distinct bugs apart by exception type and origin. One class per kind
    of mismatch (not per requirement) lets it shrink a wrongly accepted completion to the
    simplest history that shows it (usually one visit), whose blame is then unambiguous,
    while a wrong refusal code is never shrunk into a wrongly accepted completion.
    """
    cls = _FAILURE_TYPES.get(kind)
    if cls is None:
        cls = type(f"GatingMismatch_{kind}", (RequirementFailure,), {"__module__": __name__})
        _FAILURE_TYPES[kind] = cls
    raise cls((requirements,) if isinstance(requirements, str) else requirements, message)


@dataclass
class Visit:
    day: date
    seen: bool


@dataclass
class Assessment:
    """What the oracle knows of one open assessment."""

    id: str
    start: date
    visits: list[Visit] = field(default_factory=list)


def disqualifier(visit: Visit, start: date, completed_on: date, today: date) -> str | None:
    """The requirement that makes ``visit`` not count for completion on ``completed_on`` (None: it counts)."""
    if not visit.seen:
        return GATE_005
    if visit.day < start:
        return GATE_002
    if visit.day > today:
        return GATE_003
    if visit.day > completed_on:
        return GATE_004
    return None


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _group_leaves(group: BaseExceptionGroup) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_group_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves


@check(GATE_001, GATE_002, GATE_003, GATE_004, GATE_005, GATE_006, kind="property")
def test_gating_matches_model(world: World, today: date) -> None:
    """GATE-001..006 under random sequences of assessments, visits and completion attempts."""
    actor = world.practitioner("practitioner")

    class GatingMachine(RuleBasedStateMachine):
        """Children c0..c1, fresh for every example; at most one open assessment each."""

        def __init__(self) -> None:
            super().__init__()
            self.children = [new_child(world, "Gatingmodel") for _ in range(CHILDREN)]
            self.open: dict[int, Assessment] = {}

        # -- rules ----------------------------------------------------------------------
        def _start(self, c: int, offset: int) -> None:
            start = FIRST_START + timedelta(days=offset)
            response = world.client.post(
                f"/children/{self.children[c]}/assessments",
                token=actor.token,
                json={"type": "initial", "start_date": iso(start)},
            )
            if response.status_code != 201:
                _fail(
                    "setup", GATE_001, f"could not start an assessment on {iso(start)} for c{c}: {describe(response)}"
                )
            body = _json(response)
            if not isinstance(body, dict) or body.get("id") in (None, ""):
                _fail("setup", GATE_001, f"POST assessments returned no id: {str(body)[:200]}")
            self.open[c] = Assessment(str(body["id"]), start)

        @initialize(offsets=st.lists(st.integers(0, 120), min_size=CHILDREN, max_size=CHILDREN))
        def start_assessments(self, offsets: list[int]) -> None:
            for c, offset in enumerate(offsets):
                self._start(c, offset)

        @precondition(lambda self: len(self.open) < CHILDREN)
        @rule(data=st.data(), offset=st.integers(0, 120))
        def start_assessment(self, data: st.DataObject, offset: int) -> None:
            c = data.draw(st.sampled_from([c for c in range(CHILDREN) if c not in self.open]), label="child")
            self._start(c, offset)

        @precondition(lambda self: bool(self.open))
        @rule(
            data=st.data(),
            where=st.sampled_from(["before", "future", "within"]),
            delta=st.integers(0, 40),
            seen=st.booleans(),
        )
        def record_visit(self, data: st.DataObject, where: str, delta: int, seen: bool) -> None:
            c = data.draw(st.sampled_from(sorted(self.open)), label="child")
            assessment = self.open[c]
            if where == "before":
                day = assessment.start - timedelta(days=1 + delta % 10)
            elif where == "future":
                day = today + timedelta(days=1 + delta)
            else:
                day = assessment.start + timedelta(days=delta)
            response = world.client.post(
                f"/assessments/{assessment.id}/visits",
                token=actor.token,
                json={"visit_date": iso(day), "child_seen": seen},
            )
            invalid = "DATE_IN_FUTURE" if day > today else "DATE_ORDER" if day < assessment.start else None
            if response.status_code == 201:
                assessment.visits.append(Visit(day, seen))
                return
            if invalid is None:
                _fail(
                    "visit_refused",
                    GATE_001,
                    f"a visit on {iso(day)} (child_seen={seen}) to assessment started {iso(assessment.start)} "
                    f"was refused: {describe(response)}",
                )
            if response.status_code != 422 or error_code(response) != invalid:
                requirement = GATE_003 if invalid == "DATE_IN_FUTURE" else GATE_002
                _fail(
                    "visit_code",
                    requirement,
                    f"a visit on {iso(day)} to an assessment started {iso(assessment.start)} must be recorded "
                    f"or refused 422 {invalid}; got {describe(response)}",
                )

        @precondition(lambda self: bool(self.open))
        @rule(data=st.data(), when=st.one_of(st.integers(-3, 45), st.none()))
        def attempt_completion(self, data: st.DataObject, when: int | None) -> None:
            c = data.draw(st.sampled_from(sorted(self.open)), label="child")
            assessment = self.open[c]
            completed_on = today if when is None else assessment.start + timedelta(days=when)
            before = self._read(assessment)
            body: dict[str, Any] = {} if when is None else {"completed_on": iso(completed_on)}
            response = world.client.post(f"/assessments/{assessment.id}/complete", token=actor.token, json=body)
            visits = ", ".join(f"{iso(v.day)} {'seen' if v.seen else 'not seen'}" for v in assessment.visits) or "none"
            story = (
                f"assessment started {iso(assessment.start)}, visits recorded: [{visits}], completion "
                f"{'with completed_on ' + iso(completed_on) if when is not None else 'with completed_on omitted (today)'}"
            )
            if completed_on < assessment.start:
                reasons: set[str | None] = {GATE_001}
                accept = False
                codes = {"DATE_ORDER", "CHILD_NOT_SEEN"}
            else:
                reasons = {disqualifier(v, assessment.start, completed_on, today) for v in assessment.visits}
                accept = None in reasons
                codes = {"CHILD_NOT_SEEN"}
            accepted = 200 <= response.status_code < 300
            if accepted and not accept:
                blame = tuple(sorted(r for r in reasons if r)) or (GATE_001,)
                _fail(
                    "accepted", blame, f"completion accepted although no visit qualifies; {story}: {describe(response)}"
                )
            if not accepted and accept:
                _fail(
                    "refused",
                    GATE_001,
                    f"completion refused although the child was seen in time; {story}: {describe(response)}",
                )
            if not accepted:
                if response.status_code != 422 or error_code(response) not in codes:
                    _fail(
                        "code",
                        GATE_001,
                        f"completion refused with the wrong status or code (expected 422 {' or '.join(sorted(codes))}); "
                        f"{story}: {describe(response)}",
                    )
                after = self._read(assessment)
                if after.get("status") != "open" or after.get("completed_on") is not None:
                    _fail(
                        "state",
                        GATE_006,
                        f"after a refused completion the assessment is status={after.get('status')!r}, "
                        f"completed_on={after.get('completed_on')!r}; {story}",
                    )
                changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
                if changed:
                    _fail("state", GATE_006, f"a refused completion changed the assessment: {changed}; {story}")
                return
            after = self._read(assessment)
            if after.get("status") != "completed":
                _fail(
                    "completed_state",
                    GATE_001,
                    f"completion was accepted but the assessment reads back status={after.get('status')!r}; {story}",
                )
            del self.open[c]

        def _read(self, assessment: Assessment) -> dict[str, Any]:
            response = world.client.get(f"/assessments/{assessment.id}", token=actor.token)
            if response.status_code != 200:
                _fail("read", GATE_006, f"could not read assessment {assessment.id}: {describe(response)}")
            body = _json(response)
            if not isinstance(body, dict):
                _fail("read", GATE_006, f"GET /assessments/{assessment.id} is not an object: {str(body)[:200]}")
            return snapshot(body) | {"status": body.get("status"), "completed_on": body.get("completed_on")}

    # The profile decides the budget; the explain phase (re-running variations of a failing
    # example to annotate it) is dropped: over HTTP it costs more than the whole search.
    phases = [p for p in settings().phases if p is not Phase.explain]
    run_settings = settings(
        deadline=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    try:
        run_state_machine_as_test(GatingMachine, settings=run_settings)
    except BaseExceptionGroup as group:  # several distinct bugs: report every requirement they break
        leaves = _group_leaves(group)
        if not leaves or not all(isinstance(e, RequirementFailure) for e in leaves):
            raise
        parts = [str(e) + "".join("\n" + n for n in getattr(e, "__notes__", ())) for e in leaves]
        requirements = sorted({r for e in leaves for r in e.requirements})  # type: ignore[attr-defined]  # all RequirementFailure (checked above)
        raise RequirementFailure(requirements, "\n\n".join(parts)) from group
