"""Phase 1B access checks (ICS-1B-ACC-001..003), scenario kind.

Authentication: every endpoint but ``GET /about`` refuses a request without a bearer
token, or with one the target never issued, with 401 ``UNAUTHENTICATED`` and no record
data. Rights: a ``read_only`` user cannot write and a ``practitioner`` cannot allocate,
end allocations or create practitioners (403 ``FORBIDDEN``, nothing changed). Audit:
viewing a child writes an audit entry naming the viewer, readable by a manager.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx

from conformance.checking.checks import check, describe, error_code, expect_status, fail, not_applicable
from conformance.checking.search_oracle import child_id, name_token, search_items
from conformance.checking.world import Practitioner, World
from conformance.domain.identifiers import compact_local_id

ACC_001 = "ICS-1B-ACC-001"
ACC_002 = "ICS-1B-ACC-002"
ACC_003 = "ICS-1B-ACC-003"


def _unauthenticated_ok(response: httpx.Response, secrets_in_record: list[str]) -> str | None:
    """Why ``response`` is not a proper 401 refusal, or None when it is."""
    if response.status_code != 401 or error_code(response) != "UNAUTHENTICATED":
        return f"expected 401 UNAUTHENTICATED, got {describe(response)}"
    leaked = [s for s in secrets_in_record if s in response.text]
    if leaked:
        return f"the 401 answer reveals record data {leaked}: {describe(response)}"
    return None


@check(ACC_001, kind="scenario")
def test_authentication_required(world: World) -> None:
    """ACC-001: GET and POST endpoints (search, read, aliases, case notes, allocations,
    me, notifications, practitioners) answer 401 ``UNAUTHENTICATED`` with no token, a
    token the target never issued, or a non-bearer scheme; ``/about`` needs none; a
    refused POST creates nothing."""
    family = name_token()
    local_id = world.unique("acc")
    cid = child_id(world.child(family_name=family, local_id=local_id), ACC_001)
    record_data = [family, local_id, compact_local_id(local_id)]  # stored as written or compacted (REC-001)
    new_family = name_token()
    requests: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = [
        ("GET", "/children", {"family_name": family}, None),
        ("GET", f"/children/{cid}", None, None),
        ("GET", f"/children/{cid}/aliases", None, None),
        ("GET", f"/children/{cid}/case-notes", None, None),
        ("GET", f"/children/{cid}/allocations", None, None),
        ("GET", "/practitioners/me", None, None),
        ("GET", "/practitioners/me/notifications", None, None),
        (
            "POST",
            "/children",
            None,
            {
                "given_name": "Alex",
                "family_name": new_family,
                "date_of_birth": "2002-03-04",
                "gender": "male",
                "local_id": world.unique("acc"),
            },
        ),
        ("POST", f"/children/{cid}/aliases", None, {"given_name": "Al", "family_name": new_family, "type": "alias"}),
        ("POST", f"/children/{cid}/case-notes", None, {"text": "Unauthenticated note", "restricted": False}),
        ("POST", "/practitioners", None, {"name": f"ICS Harness intruder {world.unique('p')}", "role": "admin"}),
    ]
    credentials: list[tuple[str, dict[str, str]]] = [
        ("no Authorization header", {}),
        ("a bearer token the target never issued", {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"}),
        ("a bearer scheme without a token", {"Authorization": "Bearer"}),
        ("a valid token under the Basic scheme", {"Authorization": f"Basic {world.practitioner().token}"}),
    ]
    for label, headers in credentials:
        for method, path, params, body in requests:
            response = world.client.request(method, path, params=params, json=body, headers=headers)
            problem = _unauthenticated_ok(response, record_data)
            if problem:
                fail(ACC_001, f"{method} {path} with {label}: {problem}")
    about = world.client.get("/about")
    if about.status_code != 200:
        fail(ACC_001, f"GET /about needs no token, but without one it answered {describe(about)}")
    # Nothing the refused requests carried may have been stored.
    if [i for i in search_items(world, world.admin, ACC_001, {"family_name": new_family}, max_pages=2)]:
        fail(ACC_001, f"a child or alias named {new_family}, sent only without valid credentials, was stored")
    notes = expect_status(
        world.client.get(f"/children/{cid}/case-notes", token=world.admin.token), 200, ACC_001, "list case notes"
    )
    if "Unauthenticated note" in json.dumps(notes):
        fail(ACC_001, "a case note posted without valid credentials was stored")


def _forbidden(world: World, response: httpx.Response, what: str) -> None:
    expect_status(response, 403, ACC_002, what, code="FORBIDDEN")


@check(ACC_002, kind="scenario")
def test_rights_enforced(world: World) -> None:
    """ACC-002: ``read_only`` cannot create or update a child, add an alias or case note;
    a ``practitioner`` cannot allocate, end an allocation, create a practitioner, or read
    the audit log or the bulk export (when declared); each refusal is 403 ``FORBIDDEN``
    and changes nothing."""
    reader = world.practitioner("read_only")
    worker = world.practitioner("practitioner", fresh=True)
    family = name_token()
    cid = child_id(world.child(family_name=family), ACC_002)
    refused_family = name_token()
    actions: list[tuple[Practitioner, str, Callable[[str], httpx.Response]]] = [
        (
            reader,
            "read_only creates a child",
            lambda t: world.client.post(
                "/children",
                token=t,
                json={
                    "given_name": "Alex",
                    "family_name": refused_family,
                    "date_of_birth": "2002-03-04",
                    "gender": "male",
                    "local_id": world.unique("ro"),
                },
            ),
        ),
        (
            reader,
            "read_only updates a child",
            lambda t: world.client.patch(f"/children/{cid}", token=t, json={"given_name": "Changed"}),
        ),
        (
            reader,
            "read_only adds an alias",
            lambda t: world.client.post(
                f"/children/{cid}/aliases",
                token=t,
                json={"given_name": "Al", "family_name": refused_family, "type": "alias"},
            ),
        ),
        (
            reader,
            "read_only adds a case note",
            lambda t: world.client.post(
                f"/children/{cid}/case-notes", token=t, json={"text": "Read-only note", "restricted": False}
            ),
        ),
        (
            worker,
            "a practitioner allocates",
            lambda t: world.client.post(f"/children/{cid}/allocations", token=t, json={"practitioner_id": worker.id}),
        ),
        (
            worker,
            "a practitioner creates a practitioner",
            lambda t: world.client.post(
                "/practitioners", token=t, json={"name": f"ICS Harness forbidden {world.unique('p')}", "role": "admin"}
            ),
        ),
    ]
    if world.context.has("audit"):
        actions.append(
            (
                worker,
                "a practitioner reads the audit log",
                lambda t: world.client.get("/audit", token=t, params={"child_id": cid}),
            )
        )
    if world.context.has("bulk_export"):
        actions.append((worker, "a practitioner takes the bulk export", lambda t: world.client.get("/export", token=t)))
    for actor, what, send in actions:
        _forbidden(world, send(actor.token), what)
    allocation = world.allocate(cid, world.practitioner("practitioner", fresh=True))
    if not isinstance(allocation, dict) or allocation.get("id") is None:
        fail(ACC_002, f"the allocation carries no id: {str(allocation)[:200]}")
    _forbidden(
        world,
        world.client.post(f"/allocations/{allocation['id']}/end", token=worker.token, json={}),
        "a practitioner ends an allocation",
    )

    # Nothing changed.
    child = expect_status(world.client.get(f"/children/{cid}", token=world.admin.token), 200, ACC_002, "read the child")
    if not isinstance(child, dict) or child.get("given_name") == "Changed":
        fail(ACC_002, f"a refused read_only PATCH changed the child: {str(child)[:200]}")
    if search_items(world, world.admin, ACC_002, {"family_name": refused_family}, max_pages=2):
        fail(ACC_002, f"a child or alias named {refused_family}, sent only by a read_only user, was stored")
    notes = expect_status(
        world.client.get(f"/children/{cid}/case-notes", token=world.admin.token), 200, ACC_002, "list case notes"
    )
    if "Read-only note" in json.dumps(notes):
        fail(ACC_002, "a case note refused to a read_only user was stored")
    listed = expect_status(
        world.client.get(f"/children/{cid}/allocations", token=world.admin.token), 200, ACC_002, "list allocations"
    )
    items = listed.get("items") if isinstance(listed, dict) else None
    if not isinstance(items, list):
        fail(ACC_002, f"GET /children/{cid}/allocations is not {{items: [...]}}: {str(listed)[:200]}")
    for item in items:
        if not isinstance(item, dict):
            continue
        if str(item.get("practitioner_id")) == worker.id:
            fail(ACC_002, "a practitioner's refused self-allocation was recorded")
        if str(item.get("id")) == str(allocation["id"]) and item.get("end_date") is not None:
            fail(ACC_002, "an allocation a practitioner was refused to end has an end_date")


@check(ACC_003, kind="scenario")
def test_record_view_audited(world: World) -> None:
    """ACC-003 (capability ``audit``): ``GET /children/{id}`` by a practitioner writes an
    audit entry with that practitioner, the child, a time and action ``view``, which a
    manager reads through ``GET /audit?child_id=``."""
    if not world.context.has("audit"):
        not_applicable("the target does not declare the audit capability")
    cid = child_id(world.child(family_name=name_token()), ACC_003)
    viewer = world.practitioner("practitioner", fresh=True)
    expect_status(world.client.get(f"/children/{cid}", token=viewer.token), 200, ACC_003, "view the child")
    manager = world.practitioner("manager")
    entries: list[dict[str, Any]] = []
    for body in world.pages("/audit", manager, {"child_id": cid}):
        entries.extend(e for e in body["items"] if isinstance(e, dict))
    views = [
        e
        for e in entries
        if str(e.get("child_id")) == cid and str(e.get("practitioner_id")) == viewer.id and e.get("action") == "view"
    ]
    if not views:
        fail(
            ACC_003,
            f"no audit entry (action view) names practitioner {viewer.id} viewing child {cid}; "
            f"the child's entries: {[(e.get('practitioner_id'), e.get('action')) for e in entries][:10]}",
        )
    if not any(isinstance(e.get("at"), str) and e.get("at") for e in views):
        fail(ACC_003, f"the view audit entry carries no time (at): {views[0]}")


# -- the cases of specs/test-design/access.yaml that the checks above do not reach ----------------


@check(ACC_001, kind="scenario")
def test_authentication_required_on_every_endpoint(world: World) -> None:
    """ACC-001: the operations the first check leaves out (PATCH a child, allocations and
    their end, referrals, assessments, visits, completion, acknowledgement, audit, export)
    answer 401 ``UNAUTHENTICATED`` with no token and with a token never issued, revealing no
    record data; the IDs in the paths are real."""
    secret = world.unique("reason")
    cid = child_id(world.child(family_name=name_token()), ACC_001)
    referral = world.referral(cid, "2008-01-07", reason=f"Concern {secret}")
    assessment = world.assessment(cid, "2008-01-08")
    allocation = world.allocate(cid, world.practitioner("practitioner", fresh=True))
    ids = {"referral": referral, "assessment": assessment, "allocation": allocation}
    for what, body in ids.items():
        if not isinstance(body, dict) or not body.get("id"):
            fail(ACC_001, f"the {what} created carries no id: {str(body)[:200]}")
    rid, aid, alloc = (str(ids[k]["id"]) for k in ("referral", "assessment", "allocation"))
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PATCH", f"/children/{cid}", {"given_name": "Intruder"}),
        ("POST", f"/children/{cid}/allocations", {"practitioner_id": world.practitioner().id}),
        ("POST", f"/allocations/{alloc}/end", {}),
        ("POST", "/referrals", {"child_id": cid, "received_on": "2008-01-09", "source": "other", "reason": "Intruder"}),
        ("GET", f"/referrals/{rid}", None),
        ("GET", f"/children/{cid}/referrals", None),
        ("POST", f"/children/{cid}/assessments", {"type": "core", "start_date": "2008-01-10"}),
        ("GET", f"/children/{cid}/assessments", None),
        ("GET", f"/assessments/{aid}", None),
        ("POST", f"/assessments/{aid}/visits", {"visit_date": "2008-01-09", "child_seen": True}),
        ("POST", f"/assessments/{aid}/complete", {"completed_on": "2008-01-09"}),
        ("POST", f"/notifications/{world.unique('n')}/acknowledge", None),
        ("GET", "/audit", None),
        ("GET", "/export", None),
    ]
    credentials = [
        ("no Authorization header", {}),
        ("a bearer token the target never issued", {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"}),
    ]
    for label, headers in credentials:
        for method, path, payload in requests:
            response = world.client.request(method, path, json=payload, headers=headers)
            problem = _unauthenticated_ok(response, [secret])
            if problem:
                fail(ACC_001, f"{method} {path} with {label}: {problem}")


@check(ACC_002, kind="scenario")
def test_rights_enforced_for_every_role_and_resource(world: World) -> None:
    """ACC-002: a read_only user recording a referral, starting an assessment, recording a
    visit, completing an assessment or allocating, and a manager creating a practitioner,
    get 403 ``FORBIDDEN``; nothing changes."""
    reader = world.practitioner("read_only", fresh=True)
    manager = world.practitioner("manager", fresh=True)
    cid = child_id(world.child(family_name=name_token()), ACC_002)
    assessment = world.assessment(cid, "2008-01-08")
    if not isinstance(assessment, dict) or not assessment.get("id"):
        fail(ACC_002, f"the assessment created carries no id: {str(assessment)[:200]}")
    aid = str(assessment["id"])
    actions: list[tuple[Practitioner, str, Callable[[str], httpx.Response]]] = [
        (
            reader,
            "read_only records a referral",
            lambda t: world.client.post(
                "/referrals",
                token=t,
                json={"child_id": cid, "received_on": "2008-01-07", "source": "school", "reason": "Read-only referral"},
            ),
        ),
        (
            reader,
            "read_only starts an assessment",
            lambda t: world.client.post(
                f"/children/{cid}/assessments", token=t, json={"type": "core", "start_date": "2008-01-09"}
            ),
        ),
        (
            reader,
            "read_only records a visit",
            lambda t: world.client.post(
                f"/assessments/{aid}/visits", token=t, json={"visit_date": "2008-01-09", "child_seen": True}
            ),
        ),
        (
            reader,
            "read_only completes an assessment",
            lambda t: world.client.post(f"/assessments/{aid}/complete", token=t, json={"completed_on": "2008-01-09"}),
        ),
        (
            reader,
            "read_only allocates",
            lambda t: world.client.post(f"/children/{cid}/allocations", token=t, json={"practitioner_id": reader.id}),
        ),
        (
            manager,
            "a manager creates a practitioner",
            lambda t: world.client.post(
                "/practitioners",
                token=t,
                json={"name": f"ICS Harness forbidden {world.unique('p')}", "role": "practitioner"},
            ),
        ),
    ]
    for actor, what, send in actions:
        _forbidden(world, send(actor.token), what)
    token = world.admin.token
    referrals = expect_status(
        world.client.get(f"/children/{cid}/referrals", token=token), 200, ACC_002, "list referrals"
    )
    if isinstance(referrals, dict) and referrals.get("items"):
        fail(ACC_002, "a referral refused to a read_only user was recorded")
    listed = expect_status(
        world.client.get(f"/children/{cid}/assessments", token=token), 200, ACC_002, "list assessments"
    )
    items = listed.get("items") if isinstance(listed, dict) else None
    if isinstance(items, list) and len(items) != 1:
        fail(ACC_002, f"the child holds {len(items)} assessments; the read_only user's was refused, so 1 was expected")
    read = expect_status(world.client.get(f"/assessments/{aid}", token=token), 200, ACC_002, "read the assessment")
    if isinstance(read, dict) and (read.get("visits") or read.get("status") != "open"):
        fail(
            ACC_002,
            f"refused read_only writes changed the assessment: status {read.get('status')!r}, "
            f"visits {read.get('visits')!r}",
        )
    allocations = expect_status(
        world.client.get(f"/children/{cid}/allocations", token=token), 200, ACC_002, "list allocations"
    )
    if isinstance(allocations, dict) and allocations.get("items"):
        fail(ACC_002, "an allocation refused to a read_only user was recorded")


@check(ACC_003, kind="scenario")
def test_every_view_by_every_role_audited(world: World) -> None:
    """ACC-003 (capability ``audit``): views by a manager, the admin and a read_only user are
    audited, and a practitioner viewing the child twice gets two view entries."""
    if not world.context.has("audit"):
        not_applicable("the target does not declare the audit capability")
    cid = child_id(world.child(family_name=name_token()), ACC_003)
    viewers = [world.practitioner("manager", fresh=True), world.admin, world.practitioner("read_only", fresh=True)]
    twice = world.practitioner("practitioner", fresh=True)
    for viewer in (*viewers, twice, twice):
        expect_status(
            world.client.get(f"/children/{cid}", token=viewer.token), 200, ACC_003, f"view the child as {viewer.role}"
        )
    entries: list[dict[str, Any]] = []
    for body in world.pages("/audit", world.practitioner("manager"), {"child_id": cid}):
        entries.extend(e for e in body["items"] if isinstance(e, dict))
    views: dict[str, int] = {}
    for entry in entries:
        if str(entry.get("child_id")) == cid and entry.get("action") == "view":
            views[str(entry.get("practitioner_id"))] = views.get(str(entry.get("practitioner_id")), 0) + 1
    me = expect_status(
        world.client.get("/practitioners/me", token=world.admin.token), 200, ACC_003, "read the admin's id"
    )
    admin_id = str(me.get("id")) if isinstance(me, dict) else world.admin.id
    missing = [v.role for v in viewers if not views.get(admin_id if v is world.admin else v.id)]
    if missing:
        fail(ACC_003, f"views of child {cid} by {missing} left no audit entry (action view)")
    if views.get(twice.id, 0) < 2:
        fail(
            ACC_003,
            f"a practitioner viewed child {cid} twice; the audit holds {views.get(twice.id, 0)} view entries for them",
        )
