"""Phase 1C audit checks (ICS-1C-AUD-001, -003), scenario kind.

AUD-001: a search answered 200 and a read of a child's case notes answered 200 each
write an audit entry naming the user, the time and the action (``search`` with
child_id null, ``read_notes`` with the child), for every role — practitioner,
read_only, manager and admin — whether the search finds children or none, and for each
page of a paged search. AUD-003: PUT, PATCH, DELETE and POST on ``/audit`` and on
``/audit/{id}``, as a manager and as the admin, are answered 4xx and leave the child's
entries exactly as they were (none changed, removed or added). The audit log is read
as a manager through ``GET /audit``; judged are only entries of users and children the
check created (the admin's searches are found among the newest entries).
"""

from __future__ import annotations

from typing import Any

from conformance.checking.checks import check, describe, expect_status, fail, not_applicable
from conformance.checking.search_oracle import child_id, name_token
from conformance.checking.world import Practitioner, World

AUD_001 = "ICS-1C-AUD-001"
AUD_003 = "ICS-1C-AUD-003"
#: Pages of the newest audit entries searched for the admin's own search entry.
NEWEST_PAGES = 5


def _require_audit(world: World) -> None:
    if not world.context.has("audit"):
        not_applicable("the target does not declare the audit capability")


def audit_entries(world: World, **params: str) -> list[dict[str, Any]]:
    """Every audit entry matching ``params``, read by a manager."""
    manager = world.practitioner("manager")
    entries: list[dict[str, Any]] = []
    for body in world.pages("/audit", manager, params):
        entries.extend(e for e in body["items"] if isinstance(e, dict))
    return entries


def newest_entries(world: World, pages: int = NEWEST_PAGES) -> list[dict[str, Any]]:
    """The newest audit entries (the log is listed oldest first): its last ``pages`` pages of 100."""
    manager = world.practitioner("manager")
    first = expect_status(
        world.client.get("/audit", token=manager.token, params={"page": 1, "page_size": 1}),
        200,
        world.requirements,
        "GET /audit",
    )
    total = int(first.get("total", 0)) if isinstance(first, dict) else 0
    last = max(1, -(-total // 100))
    entries: list[dict[str, Any]] = []
    for page in range(max(1, last - pages + 1), last + 1):
        body = expect_status(
            world.client.get("/audit", token=manager.token, params={"page": page, "page_size": 100}),
            200,
            world.requirements,
            f"GET /audit page {page}",
        )
        entries.extend(e for e in (body.get("items") or []) if isinstance(e, dict))
    return entries


def _me(world: World, who: Practitioner) -> str:
    body = expect_status(world.client.get("/practitioners/me", token=who.token), 200, AUD_001, "GET /practitioners/me")
    if not isinstance(body, dict) or not body.get("id"):
        fail(AUD_001, f"GET /practitioners/me gives no id: {str(body)[:200]}")
    return str(body["id"])


def _searches(world: World, who: Practitioner, family: str) -> int:
    """Three searches answered 200 by ``who`` (one finding a child over two pages, one finding none); their number."""
    sent = 0
    for params in (
        {"family_name": family, "page": 1, "page_size": 1},
        {"family_name": family, "page": 2, "page_size": 1},
        {"family_name": name_token(), "gender": "female"},
    ):
        expect_status(world.client.get("/children", token=who.token, params=params), 200, AUD_001, f"search {params}")
        sent += 1
    return sent


@check(AUD_001, kind="scenario")
def test_searches_and_note_reads_audited(world: World) -> None:
    """AUD-001: three searches and two case-note reads by a practitioner, a read_only user, a manager
    and the admin each leave entries naming the user: ``search`` (child_id null) per search, and
    ``read_notes`` with the child per read, each with a time."""
    _require_audit(world)
    family = name_token()
    children = [child_id(world.child(family_name=family), AUD_001) for _ in range(2)]
    world.case_note(children[0], world.practitioner("practitioner"), "A note to be read.")
    problems: list[str] = []
    users = [(role, world.practitioner(role, fresh=True)) for role in ("practitioner", "read_only", "manager")]
    for role, who in users:
        sent = _searches(world, who, family)
        for cid in children:
            expect_status(
                world.client.get(f"/children/{cid}/case-notes", token=who.token), 200, AUD_001, "read case notes"
            )
        entries = audit_entries(world, practitioner_id=who.id)
        searches = [e for e in entries if e.get("action") == "search"]
        if len(searches) < sent:
            problems.append(f"{role}: {sent} searches, {len(searches)} search entries")
        if any(e.get("child_id") is not None for e in searches):
            problems.append(f"{role}: a search entry names a child: {searches[0]}")
        for cid in children:
            reads = [e for e in entries if e.get("action") == "read_notes" and str(e.get("child_id")) == cid]
            if not reads:
                problems.append(f"{role}: no read_notes entry for child {cid}")
        if any(
            not (isinstance(e.get("at"), str) and e.get("at"))
            for e in entries
            if e.get("action") in ("search", "read_notes")
        ):
            problems.append(f"{role}: an entry carries no time (at)")
    # the admin: its note reads are found by child, its search among the newest entries
    admin_id = _me(world, world.admin)
    before = {e.get("id") for e in newest_entries(world) if e.get("action") == "search"}
    expect_status(
        world.client.get("/children", token=world.admin.token, params={"family_name": family}), 200, AUD_001, "search"
    )
    expect_status(
        world.client.get(f"/children/{children[1]}/case-notes", token=world.admin.token), 200, AUD_001, "read notes"
    )
    fresh = [
        e
        for e in newest_entries(world)
        if e.get("action") == "search" and e.get("id") not in before and str(e.get("practitioner_id")) == admin_id
    ]
    if not fresh:
        problems.append("admin: no new search entry names the admin among the newest entries")
    reads = audit_entries(world, child_id=children[1])
    if not [e for e in reads if e.get("action") == "read_notes" and str(e.get("practitioner_id")) == admin_id]:
        problems.append(f"admin: no read_notes entry for child {children[1]}")
    if problems:
        fail(AUD_001, "searches or case-note reads not audited:\n" + "\n".join(problems))


_METHODS = ("PUT", "PATCH", "DELETE", "POST")


@check(AUD_003, kind="scenario")
def test_audit_log_immutable(world: World) -> None:
    """AUD-003: PUT, PATCH, DELETE and POST on /audit and /audit/{id} by a manager and the admin answer
    4xx, and the child's audit entries are unchanged afterwards (none changed, removed or added)."""
    _require_audit(world)
    cid = child_id(world.child(family_name=name_token()), AUD_003)
    viewer = world.practitioner("practitioner", fresh=True)
    expect_status(world.client.get(f"/children/{cid}", token=viewer.token), 200, AUD_003, "view the child")
    before = audit_entries(world, child_id=cid)
    if not before:
        fail(AUD_003, f"no audit entry for child {cid} after creating and viewing it (needed to try to change one)")
    target = before[-1]
    forged = {k: target.get(k) for k in ("practitioner_id", "child_id", "at")} | {"action": "create"}
    answers: list[str] = []
    for who in (world.practitioner("manager"), world.admin):
        for method in _METHODS:
            for path in ("/audit", f"/audit/{target.get('id')}"):
                body: dict[str, Any] = forged if method in ("POST", "PUT") else {"action": "create"}
                response = world.client.request(method, path, token=who.token, json=body)
                if not 400 <= response.status_code < 500:
                    answers.append(f"{who.role} {method} {path} -> {describe(response, 120)}")
    after = audit_entries(world, child_id=cid)
    changed = _differences(before, after)
    if answers or changed:
        fail(
            AUD_003,
            "the audit log can be changed through the API:\n" + "\n".join(answers + changed),
        )


def _differences(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    keys = ("id", "at", "practitioner_id", "child_id", "action")
    was = {e.get("id"): {k: e.get(k) for k in keys} for e in before}
    now = {e.get("id"): {k: e.get(k) for k in keys} for e in after}
    out = [f"entry {i} removed: {was[i]}" for i in was if i not in now]
    out += [f"entry {i} changed: {was[i]} -> {now[i]}" for i in was if i in now and now[i] != was[i]]
    out += [f"entry {i} added: {now[i]}" for i in now if i not in was]
    return out
