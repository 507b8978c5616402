"""Phase 1C shielding check (ICS-1C-SHLD-001), scenario kind.

A shielded child is created and four users try to read it: a practitioner never
allocated, a practitioner whose allocation ended yesterday (whether one ending today is
still current is the supplier's choice), a read_only user, and — as control — a
practitioner currently allocated. The first three must get 404 with code NOT_FOUND, as
for an ID that names no child (asked first, so the two answers can be compared), with
none of the child's data in the body, and each attempt must be in the audit log
(an entry naming that user and the child); the allocated practitioner reads it. When the
control's own allocation then ends, it is refused like the others.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from conformance.checking.checks import check, describe, error_code, fail, not_applicable
from conformance.checking.search_oracle import child_id, name_token, valid_upn
from conformance.checking.world import Practitioner, World
from conformance.suites.test_audit import audit_entries

SHLD_001 = "ICS-1C-SHLD-001"


def _refused_like_unknown(
    world: World, who: Practitioner, cid: str, secrets: list[str], unknown: tuple[int, Any]
) -> str | None:
    response = world.client.get(f"/children/{cid}", token=who.token)
    if response.status_code != 404 or error_code(response) != "NOT_FOUND":
        return f"got {describe(response, 120)}, expected 404 NOT_FOUND"
    if (response.status_code, error_code(response)) != unknown:
        return f"answered {response.status_code} {error_code(response)}, an unknown ID {unknown[0]} {unknown[1]}"
    leaked = [s for s in secrets if s in response.text]
    if leaked:
        return f"the 404 body reveals the child's data {leaked}"
    return None


@check(SHLD_001, kind="scenario")
def test_shielded_child_hidden_and_attempts_audited(world: World, today: date) -> None:
    """SHLD-001: 404 NOT_FOUND (as for no child, no data) to a practitioner never allocated, one whose
    allocation ended yesterday and a read_only user, each attempt audited; 200 to an allocated practitioner,
    then 404 once that allocation ends."""
    if not world.context.has("shielded_records"):
        not_applicable("the target does not declare the shielded_records capability")
    family = name_token()
    local = world.unique("shld")
    upn = valid_upn()
    cid = child_id(world.child(family_name=family, local_id=local, upn=upn, shielded=True), SHLD_001)
    never = world.practitioner("practitioner", fresh=True)
    ended = world.practitioner("practitioner", fresh=True)
    reader = world.practitioner("read_only", fresh=True)
    allocated = world.practitioner("practitioner", fresh=True)
    gone = world.allocate(cid, ended, start_date="2008-01-02")
    yesterday = (today - timedelta(days=1)).isoformat()
    world.end_allocation(str(gone["id"]), end_date=yesterday)
    current = world.allocate(cid, allocated, start_date="2008-01-02")
    probe = world.client.get(f"/children/{cid}x{name_token(4)}", token=never.token)
    unknown = (probe.status_code, error_code(probe))
    problems = []
    secrets = [family, local, upn]
    for label, who in (
        ("a practitioner never allocated", never),
        ("a practitioner whose allocation ended yesterday", ended),
        ("a read_only user", reader),
    ):
        problem = _refused_like_unknown(world, who, cid, secrets, unknown)
        if problem:
            problems.append(f"{label}: {problem}")
    readable = world.client.get(f"/children/{cid}", token=allocated.token)
    if readable.status_code != 200:
        problems.append(f"the allocated practitioner cannot read the shielded child: {describe(readable, 120)}")
    world.end_allocation(str(current["id"]), end_date=yesterday)
    problem = _refused_like_unknown(world, allocated, cid, secrets, unknown)
    if problem:
        problems.append(f"a practitioner whose allocation was just ended: {problem}")
    entries = audit_entries(world.for_requirements(SHLD_001), child_id=cid) if world.context.has("audit") else []
    if world.context.has("audit"):
        for label, who in (("never allocated", never), ("allocation ended", ended), ("read_only", reader)):
            if not any(str(e.get("practitioner_id")) == who.id and str(e.get("child_id")) == cid for e in entries):
                problems.append(f"the refused attempt by the practitioner {label} ({who.id}) is not in the audit log")
    if problems:
        fail(SHLD_001, f"shielded child {cid}:\n" + "\n".join(problems))
