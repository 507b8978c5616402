"""Phase 1A child-record checks (ICS-1A-REC-001..008), scenario kind.

A child is created with every field and read back unchanged (identifiers compacted);
identifiers are validated (UPN check letter, NHS number modulus 11) and impossible dates
refused, each with its machine-readable code and nothing stored; aliases are listed;
unborn children are recorded; PATCH updates; local child IDs are unique. Identifiers are
made with :mod:`conformance.domain.identifiers` (python-stdnum), never hand-rolled, and every
record is namespaced by a run-unique local ID and family name.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from conformance.checking.checks import check, expect_status, fail, not_applicable
from conformance.checking.search_oracle import (
    child_id,
    name_token,
    search_items,
    spaced_nhs_number,
    valid_nhs_number,
    valid_upn,
    wrong_check_letter_upn,
    wrong_modulus_nhs_number,
)
from conformance.checking.world import World
from conformance.domain.identifiers import compact_local_id, is_valid_nhs_number, same_local_id
from conformance.domain.names import normalise_postcode

REC_001 = "ICS-1A-REC-001"
REC_002 = "ICS-1A-REC-002"
REC_003 = "ICS-1A-REC-003"
REC_004 = "ICS-1A-REC-004"
REC_005 = "ICS-1A-REC-005"
REC_006 = "ICS-1A-REC-006"
REC_007 = "ICS-1A-REC-007"
REC_008 = "ICS-1A-REC-008"


def _get_child(world: World, cid: str, requirement: str) -> dict[str, Any]:
    """``GET /children/{id}`` as the admin (who sees every child), judged well-formed."""
    body = expect_status(
        world.client.get(f"/children/{cid}", token=world.admin.token), 200, requirement, f"read child {cid}"
    )
    if not isinstance(body, dict):
        fail(requirement, f"GET /children/{cid} did not return a Child object: {str(body)[:200]}")
    return body


def _stored_with_local_id(world: World, local_id: str, requirement: str) -> list[dict[str, Any]]:
    """The children the target holds under ``local_id`` (admin search, filtered by the field itself).

    A child counts when its ``local_id`` reads back as written or compacted (REC-001 allows either).
    """
    items = search_items(world, world.admin, requirement, {"local_id": local_id}, max_pages=5)
    return [item for item in items if same_local_id(item.get("local_id"), local_id)]


def _refused_and_not_stored(world: World, payload: dict[str, Any], requirement: str, code: str, what: str) -> None:
    """POST /children with ``payload`` must answer 422 ``code`` and store nothing."""
    response = world.client.post("/children", token=world.practitioner().token, json=payload)
    expect_status(response, 422, requirement, what, code=code)
    if _stored_with_local_id(world, payload["local_id"], requirement):
        fail(
            requirement, f"{what}: refused with 422 {code}, but a child with local_id {payload['local_id']} was stored"
        )


def _base(world: World, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "given_name": "Alex",
        "family_name": name_token(),
        "date_of_birth": "2003-02-11",
        "gender": "not_specified",
        "local_id": world.unique("c"),
    }
    payload.update(fields)
    return payload


@check(REC_001, kind="scenario")
def test_child_created_and_read_back_unchanged(world: World) -> None:
    """REC-001: every field of a created child reads back as written, in the 201 answer and
    from GET, with the NHS number (written with spaces) compacted, the postcode equal
    after normalising and the local child ID as written or compacted (the statement allows either)."""
    upn, nhs = valid_upn(), valid_nhs_number()
    family = f"{name_token()}-O\u2019Brien"
    payload = _base(
        world,
        given_name="Ana\u00efs Zo\u00eb",
        family_name=family,
        date_of_birth="2004-07-30",
        gender="female",
        postcode="SW1A 1AA",
        upn=upn,
        nhs_number=spaced_nhs_number(nhs),
    )
    created = world.child(**payload)
    cid = child_id(created, REC_001)
    expected = {**payload, "nhs_number": nhs}
    for source, body in (("the 201 answer", created), ("GET /children/{id}", _get_child(world, cid, REC_001))):
        for name, value in expected.items():
            got = body.get(name)
            if name == "postcode":
                ok = isinstance(got, str) and normalise_postcode(got) == normalise_postcode(value)
            elif name == "local_id":
                ok = same_local_id(got, value)
            else:
                ok = got == value
            if not ok:
                fail(REC_001, f"{source}: {name} reads {got!r}; written {payload[name]!r}, expected {value!r}")
        if body.get("date_of_death") is not None:
            fail(REC_001, f"{source}: date_of_death reads {body.get('date_of_death')!r}; none was written")


@check(REC_002, kind="scenario")
def test_upn_check_letter_validated(world: World) -> None:
    """REC-002: a UPN that differs from a valid one only in its check letter is refused
    with 422 ``INVALID_UPN``, nothing stored, on create and on update."""
    bad = wrong_check_letter_upn(valid_upn())
    _refused_and_not_stored(
        world, _base(world, upn=bad), REC_002, "INVALID_UPN", f"create a child with UPN {bad} (wrong check letter)"
    )
    cid = child_id(world.child(family_name=name_token()), REC_002)
    response = world.client.patch(f"/children/{cid}", token=world.practitioner().token, json={"upn": bad})
    expect_status(response, 422, REC_002, f"PATCH a child's UPN to {bad} (wrong check letter)", code="INVALID_UPN")
    stored = _get_child(world, cid, REC_002).get("upn")
    if stored == bad:
        fail(REC_002, f"PATCH with invalid UPN {bad} was refused, but the child now reads upn {stored!r}")


@check(REC_003, kind="scenario")
def test_nhs_number_modulus_11_validated(world: World) -> None:
    """REC-003: an NHS number failing modulus 11 (compact or with spaces, including a
    number whose first nine digits admit no check digit) is refused with 422
    ``INVALID_NHS_NUMBER``, nothing stored, on create and on update."""
    good = valid_nhs_number()
    bad = wrong_modulus_nhs_number(good)
    no_check_digit = _remainder_ten_body() + "0"
    candidates = [bad, spaced_nhs_number(wrong_modulus_nhs_number(valid_nhs_number()))]
    candidates.append(no_check_digit)
    for number in candidates:
        _refused_and_not_stored(
            world,
            _base(world, nhs_number=number),
            REC_003,
            "INVALID_NHS_NUMBER",
            f"create a child with NHS number {number!r} (fails modulus 11)",
        )
    cid = child_id(world.child(family_name=name_token()), REC_003)
    response = world.client.patch(f"/children/{cid}", token=world.practitioner().token, json={"nhs_number": bad})
    expect_status(
        response, 422, REC_003, f"PATCH a child's NHS number to {bad} (fails modulus 11)", code="INVALID_NHS_NUMBER"
    )
    if _get_child(world, cid, REC_003).get("nhs_number") == bad:
        fail(REC_003, f"PATCH with invalid NHS number {bad} was refused, but the child now holds it")


def _remainder_ten_body() -> str:
    """Nine digits for which modulus 11 gives remainder 10: no check digit makes them valid."""
    for n in range(400000000, 400001000):
        body = str(n)
        total = sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True))
        if 11 - total % 11 == 10 and not is_valid_nhs_number(body + "0"):
            return body
    raise AssertionError("no remainder-10 body found")  # pragma: no cover


@check(REC_004, kind="scenario")
def test_impossible_dates_refused(world: World, today: date) -> None:
    """REC-004: a date of birth or death after today is refused with 422 ``DATE_IN_FUTURE``;
    a death before the birth with 422 ``DATE_ORDER``; nothing is stored."""
    tomorrow = (today + timedelta(days=1)).isoformat()
    cases = (
        (_base(world, date_of_birth=tomorrow), "DATE_IN_FUTURE", f"create a child born tomorrow ({tomorrow})"),
        (
            _base(world, date_of_birth="2005-03-01", date_of_death=tomorrow),
            "DATE_IN_FUTURE",
            f"create a child who dies tomorrow ({tomorrow})",
        ),
        (
            _base(world, date_of_birth="2005-03-01", date_of_death="2005-02-28"),
            "DATE_ORDER",
            "create a child who died (2005-02-28) before being born (2005-03-01)",
        ),
    )
    for payload, code, what in cases:
        _refused_and_not_stored(world, payload, REC_004, code, what)
    cid = child_id(world.child(family_name=name_token(), date_of_birth="2005-03-01"), REC_004)
    response = world.client.patch(
        f"/children/{cid}", token=world.practitioner().token, json={"date_of_death": "2004-12-31"}
    )
    expect_status(
        response, 422, REC_004, "PATCH a death date (2004-12-31) before the birth (2005-03-01)", code="DATE_ORDER"
    )
    if _get_child(world, cid, REC_004).get("date_of_death") is not None:
        fail(REC_004, "a refused PATCH of date_of_death nevertheless set it")


@check(REC_005, kind="scenario")
def test_aliases_recorded_and_listed(world: World) -> None:
    """REC-005: an alias, a previous name and a known-as name are recorded (201, echoed)
    and every one of them is listed by ``GET /children/{id}/aliases``."""
    cid = child_id(world.child(family_name=name_token()), REC_005)
    names = [("Jo", name_token(), "alias"), ("Joanna", name_token(), "previous"), ("J\u00f3", name_token(), "known_as")]
    for given, family, kind in names:
        body = world.alias(cid, given, family, kind)
        if not isinstance(body, dict) or (body.get("given_name"), body.get("family_name"), body.get("type")) != (
            given,
            family,
            kind,
        ):
            fail(REC_005, f"recording {kind} {given} {family} answered {str(body)[:200]}")
    listed = expect_status(
        world.client.get(f"/children/{cid}/aliases", token=world.practitioner().token), 200, REC_005, "list aliases"
    )
    items = listed.get("items") if isinstance(listed, dict) else None
    if not isinstance(items, list):
        fail(REC_005, f"GET /children/{cid}/aliases did not return {{items: [...]}}: {str(listed)[:200]}")
    present = {(i.get("given_name"), i.get("family_name"), i.get("type")) for i in items if isinstance(i, dict)}
    missing = [n for n in names if n not in present]
    if missing:
        fail(
            REC_005,
            f"recorded names missing from GET /children/{cid}/aliases: {missing}; listed {sorted(map(str, present))}",
        )


@check(REC_006, kind="scenario")
def test_unborn_child_recorded(world: World, today: date) -> None:
    """REC-006 (capability ``unborn_children``): a child with an expected date of birth and
    no date of birth is recorded and reads back with ``date_of_birth`` null."""
    if not world.context.has("unborn_children"):
        not_applicable("the target does not declare the unborn_children capability")
    expected = (today + timedelta(days=75)).isoformat()
    payload = {k: v for k, v in _base(world).items() if k != "date_of_birth"}
    response = world.client.post(
        "/children", token=world.practitioner().token, json={**payload, "expected_date_of_birth": expected}
    )
    created = expect_status(response, 201, REC_006, f"create an unborn child expected on {expected}")
    cid = child_id(created, REC_006)
    for source, body in (("the 201 answer", created), ("GET /children/{id}", _get_child(world, cid, REC_006))):
        if body.get("date_of_birth") is not None or body.get("expected_date_of_birth") != expected:
            fail(
                REC_006,
                f"{source}: date_of_birth {body.get('date_of_birth')!r}, expected_date_of_birth "
                f"{body.get('expected_date_of_birth')!r}; expected null and {expected}",
            )


@check(REC_007, kind="scenario")
def test_patch_updates_child(world: World) -> None:
    """REC-007 (SHOULD): PATCH with a subset of fields answers 200 with them changed, the
    others unchanged, and a later GET returns the change."""
    original = world.child(family_name=name_token(), postcode="LS1 4AP", gender="male")
    cid = child_id(original, REC_007)
    change = {"family_name": name_token(), "postcode": "M1 1AE"}
    body = expect_status(
        world.client.patch(f"/children/{cid}", token=world.practitioner().token, json=change),
        200,
        REC_007,
        "PATCH a child",
    )
    for source, got in (("the PATCH answer", body), ("GET /children/{id}", _get_child(world, cid, REC_007))):
        if not isinstance(got, dict):
            fail(REC_007, f"{source} is not a Child: {str(got)[:200]}")
        if got.get("family_name") != change["family_name"] or normalise_postcode(str(got.get("postcode"))) != "M11AE":
            fail(
                REC_007,
                f"{source}: family_name {got.get('family_name')!r}, postcode {got.get('postcode')!r}; "
                f"expected the PATCHed {change['family_name']!r}, 'M1 1AE'",
            )
        for name in ("given_name", "date_of_birth", "gender", "local_id"):
            if got.get(name) != original.get(name):
                fail(
                    REC_007,
                    f"{source}: {name} changed from {original.get(name)!r} to {got.get(name)!r} though not PATCHed",
                )


@check(REC_008, kind="scenario")
def test_local_id_unique(world: World) -> None:
    """REC-008: a second child with a local ID already held is refused with 409
    ``DUPLICATE_LOCAL_ID`` (on create and on update) and only the first is stored.

    Uniqueness is judged on the stored form: when the target stores local IDs compacted,
    a local ID written differently that compacts to the same one is a duplicate too.
    """
    local_id = world.unique("dup")
    created = world.child(family_name=name_token(), local_id=local_id)
    first = child_id(created, REC_008)
    response = world.client.post("/children", token=world.practitioner().token, json=_base(world, local_id=local_id))
    expect_status(response, 409, REC_008, f"create a second child with local_id {local_id}", code="DUPLICATE_LOCAL_ID")
    if created.get("local_id") != local_id and created.get("local_id") == compact_local_id(local_id):
        variant = f"{local_id[:4]} {local_id[4:]}".lower()  # compacts to the stored form, written otherwise
        response = world.client.post("/children", token=world.practitioner().token, json=_base(world, local_id=variant))
        expect_status(
            response,
            409,
            REC_008,
            f"create a second child with local_id {variant!r}, stored compacted as {created['local_id']!r} "
            "by a target that compacts local IDs",
            code="DUPLICATE_LOCAL_ID",
        )
    other = child_id(world.child(family_name=name_token()), REC_008)
    response = world.client.patch(f"/children/{other}", token=world.practitioner().token, json={"local_id": local_id})
    expect_status(response, 409, REC_008, f"PATCH another child's local_id to {local_id}", code="DUPLICATE_LOCAL_ID")
    holders = {str(item["id"]) for item in _stored_with_local_id(world, local_id, REC_008)}
    if holders != {first}:
        fail(REC_008, f"local_id {local_id} is held by {sorted(holders)}; expected only the first child {first}")
