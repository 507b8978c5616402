"""Stateful check of the chronology through the API (ICS-1C-CHRON-002), property kind.

A Hypothesis ``RuleBasedStateMachine`` grows the histories of two children one step at a
time — referrals, allocations and their ends, assessments started, visits (seen or not)
and completions — on a handful of dates, so that events tie on date and type in every
combination. After each step the child's chronology must be the oracle's over the
records the API lists for it, in order. Steps the target refuses (a completion without a
seen visit, say) change nothing the oracle reads, so the model needs no state of its
own beyond the children; shrinking reports the shortest history that shows a mismatch.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from conformance.checking.checks import RequirementFailure, check, fail
from conformance.checking.search_oracle import child_id, name_token
from conformance.checking.world import World
from conformance.suites.test_chronology import CHRON_002, chronology_problem, require_chronology

FIRST = date(2008, 1, 7)
DAYS = st.integers(0, 4)


def _iso(offset: int) -> str:
    return (FIRST + timedelta(days=offset)).isoformat()


def _id(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return str(body["id"]) if response.status_code in (200, 201) and isinstance(body, dict) and body.get("id") else None


@check(CHRON_002, kind="property")
def test_chronology_matches_model(world: World) -> None:
    """CHRON-002 after every step of random histories (referrals, allocations, assessments, visits, completions)."""
    require_chronology(world)
    worker = world.practitioner("practitioner")
    manager = world.practitioner("manager")
    staff = [world.practitioner("practitioner", fresh=True) for _ in range(2)]

    class ChronologyMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.children = [child_id(world.child(family_name=name_token()), CHRON_002) for _ in range(2)]
            self.open_allocations: list[tuple[int, str, int]] = []  # (child, allocation, start offset)
            self.open_assessment: dict[int, tuple[str, int]] = {}  # child -> (assessment, start offset)

        def _check(self, c: int, step: str) -> None:
            problem = chronology_problem(world, self.children[c])
            if problem:
                raise RequirementFailure(CHRON_002, f"after {step} (child c{c}): {problem}")

        @rule(c=st.integers(0, 1), day=DAYS)
        def referral(self, c: int, day: int) -> None:
            world.client.post(
                "/referrals",
                token=worker.token,
                json={"child_id": self.children[c], "received_on": _iso(day), "source": "health", "reason": "Concern"},
            )
            self._check(c, f"a referral received {_iso(day)}")

        @rule(c=st.integers(0, 1), day=DAYS, who=st.integers(0, 1))
        def allocate(self, c: int, day: int, who: int) -> None:
            response = world.client.post(
                f"/children/{self.children[c]}/allocations",
                token=manager.token,
                json={"practitioner_id": staff[who].id, "start_date": _iso(day)},
            )
            allocation = _id(response)
            if allocation:
                self.open_allocations.append((c, allocation, day))
            self._check(c, f"an allocation starting {_iso(day)}")

        @precondition(lambda self: bool(self.open_allocations))
        @rule(data=st.data(), extra=DAYS)
        def end_allocation(self, data: st.DataObject, extra: int) -> None:
            c, allocation, start = data.draw(st.sampled_from(self.open_allocations), label="allocation")
            self.open_allocations.remove((c, allocation, start))
            world.client.post(
                f"/allocations/{allocation}/end", token=manager.token, json={"end_date": _iso(start + extra)}
            )
            self._check(c, f"ending an allocation on {_iso(start + extra)}")

        @rule(c=st.integers(0, 1), day=DAYS)
        def start_assessment(self, c: int, day: int) -> None:
            if c in self.open_assessment:
                return
            response = world.client.post(
                f"/children/{self.children[c]}/assessments",
                token=worker.token,
                json={"type": "initial", "start_date": _iso(day)},
            )
            assessment = _id(response)
            if assessment:
                self.open_assessment[c] = (assessment, day)
            self._check(c, f"an assessment starting {_iso(day)}")

        @precondition(lambda self: bool(self.open_assessment))
        @rule(data=st.data(), extra=DAYS, seen=st.booleans())
        def visit(self, data: st.DataObject, extra: int, seen: bool) -> None:
            c = data.draw(st.sampled_from(sorted(self.open_assessment)), label="child")
            assessment, start = self.open_assessment[c]
            world.client.post(
                f"/assessments/{assessment}/visits",
                token=worker.token,
                json={"visit_date": _iso(start + extra), "child_seen": seen},
            )
            self._check(c, f"a visit on {_iso(start + extra)} (seen={seen})")

        @precondition(lambda self: bool(self.open_assessment))
        @rule(data=st.data(), extra=DAYS)
        def complete(self, data: st.DataObject, extra: int) -> None:
            c = data.draw(st.sampled_from(sorted(self.open_assessment)), label="child")
            assessment, start = self.open_assessment[c]
            response = world.client.post(
                f"/assessments/{assessment}/complete", token=worker.token, json={"completed_on": _iso(start + extra)}
            )
            if response.status_code == 200:
                del self.open_assessment[c]
            self._check(c, f"a completion attempt on {_iso(start + extra)}")

    phases = [p for p in settings().phases if p is not Phase.explain]
    run_settings = settings(
        deadline=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    try:
        run_state_machine_as_test(ChronologyMachine, settings=run_settings)
    except BaseExceptionGroup as group:
        leaves = [e for e in group.exceptions if isinstance(e, RequirementFailure)]
        if len(leaves) != len(group.exceptions):
            raise
        fail(CHRON_002, "\n\n".join(str(e) for e in leaves))
