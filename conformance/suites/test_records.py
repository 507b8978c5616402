"""Phase 1A child-record checks (ICS-1A-REC-001..008), scenario kind.

A child is created with every field and read back unchanged (identifiers compacted);
identifiers are validated (UPN check letter, NHS number modulus 11) and impossible dates
refused, each with its machine-readable code and nothing stored; aliases are listed;
unborn children are recorded; PATCH updates; local child IDs are unique. Identifiers are
made with :mod:`conformance.domain.identifiers` (python-stdnum), never hand-rolled, and every
record is namespaced by a run-unique local ID and family name.
"""

from __future__ import annotations

import secrets
import string
import unicodedata
from datetime import date, timedelta
from typing import Any

from conformance.checking.checks import check, describe, expect_status, fail, not_applicable
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
from conformance.domain.identifiers import (
    compact_local_id,
    is_valid_nhs_number,
    is_valid_upn,
    nhs_check_digit,
    nine_digits_fitting_the_sum,
    same_local_id,
    upn_check_letter,
)
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


# -- the cases of specs/test-design/records.yaml that the checks above do not reach ---------------

_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # the 23 check letters, remainders 0..22


def _nfc(value: Any) -> Any:
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def _created_and_read(
    world: World, requirement: str, what: str, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST /children (must answer 201) and GET it back: the two bodies."""
    response = world.client.post("/children", token=world.practitioner().token, json=_base(world, **fields))
    created = expect_status(response, 201, requirement, f"create a child with {what}")
    if not isinstance(created, dict):
        fail(requirement, f"creating a child with {what} answered {str(created)[:200]}")
    return created, _get_child(world, child_id(created, requirement), requirement)


@check(REC_001, kind="scenario")
def test_names_at_length_limits_and_every_legal_character(world: World) -> None:
    """REC-001: given and family names of 100 characters (the maximum) and of one letter,
    and names holding a full stop, each apostrophe ' ’ ‘, hyphens, spaces and a combining
    mark, are accepted and read back (names compared after NFC normalisation: a supplier
    may store them precomposed)."""
    cases = {
        "100-character names": (name_token(100), name_token(100)),
        "one-letter names": ("J", "K"),
        "full stop, hyphen, space": ("St. John", f"{name_token()}-Smith Jr."),
        "apostrophes": ("D'Arcy", f"O\u2019{name_token()} \u2018Neil"),
        "combining mark": ("Zoe\u0308", f"{name_token()}e\u0301"),
    }
    for what, (given, family) in cases.items():
        for source, body in zip(
            ("the 201 answer", "GET /children/{id}"),
            _created_and_read(world, REC_001, what, given_name=given, family_name=family),
            strict=True,
        ):
            got = (_nfc(body.get("given_name")), _nfc(body.get("family_name")))
            if got != (_nfc(given), _nfc(family)):
                fail(
                    REC_001,
                    f"{source}: a child with {what} reads given_name {body.get('given_name')!r}, "
                    f"family_name {body.get('family_name')!r}; written {given!r}, {family!r}",
                )


@check(REC_001, kind="scenario")
def test_every_gender_and_identifier_form_read_back(world: World) -> None:
    """REC-001: each gender value (male, female, not_known, not_specified) reads back as
    written, and a UPN written in lower case with spaces reads back compact and upper case
    (when the target accepts it so written: refusing it is ICS-1A-REC-002's matter)."""
    for gender in ("male", "female", "not_known", "not_specified"):
        for source, body in zip(
            ("the 201 answer", "GET /children/{id}"),
            _created_and_read(world, REC_001, f"gender {gender}", gender=gender),
            strict=True,
        ):
            if body.get("gender") != gender:
                fail(REC_001, f"{source}: a child created with gender {gender!r} reads gender {body.get('gender')!r}")
    upn = valid_upn()
    written = f"{upn[0].lower()}{upn[1:4]} {upn[4:8]} {upn[8:]}"
    response = world.client.post("/children", token=world.practitioner().token, json=_base(world, upn=written))
    if response.status_code == 422:
        return  # refused as written: ICS-1A-REC-002 (written-lower-case-with-spaces) judges that
    created = expect_status(response, 201, REC_001, f"create a child with UPN written {written!r}")
    for source, body in (
        ("the 201 answer", created),
        ("GET /children/{id}", _get_child(world, child_id(created, REC_001), REC_001)),
    ):
        if not isinstance(body, dict) or body.get("upn") != upn:
            shown = body.get("upn") if isinstance(body, dict) else body
            fail(REC_001, f"{source}: a UPN written {written!r} reads {shown!r}; expected it compacted, {upn!r}")


def _upn_with_letter(letter: str, temporary: bool = False) -> str:
    """A valid UPN (LA 801) whose check letter is ``letter``; ``temporary``: its last character a letter."""
    while True:
        last = secrets.choice(_UPN_LETTERS) if temporary else secrets.choice(string.digits)
        body = "801" + "".join(secrets.choice(string.digits) for _ in range(8)) + last
        upn = upn_check_letter(body) + body
        if upn[0] == letter:
            assert is_valid_upn(upn), upn
            return upn


_UPN_ALPHABET = "ABCDEFGHJKLMNPQRTUVWXYZ"


def _wrong_length_upns_with_right_letter() -> list[tuple[str, str]]:
    """12- and 14-character UPNs (LA 801, digits) whose first character is the check letter
    their other characters give, so that only the length tells them from a valid UPN.

    Weighted positionally (2, 3, ... on the characters after the letter), the 12-character
    one is right; of 14 characters, one is right under weights 2..13 on the last 12
    characters (the algorithm applied to whatever follows, as python-stdnum does) and one
    under weights 2..14 on all 13. REC-002 refuses any UPN that is not 13 characters.
    """

    def positional(body: str) -> str:
        return _UPN_ALPHABET[sum(i * int(c) for i, c in enumerate(body, 2)) % 23]

    def digits(n: int) -> str:
        return "801" + "".join(secrets.choice(string.digits) for _ in range(n - 3))

    short, longer, longest = digits(11), digits(13), digits(13)
    return [
        (positional(short) + short, "12 characters, check letter right for the 11 after it"),
        (upn_check_letter(longer) + longer, "14 characters, check letter right for the last 12"),
        (positional(longest) + longest, "14 characters, check letter right for all 13 after it"),
    ]


@check(REC_002, kind="scenario")
def test_upn_every_check_letter_and_form(world: World) -> None:
    """REC-002: a valid UPN for each of the 23 check-letter remainders (A..Z without I, O,
    S) is accepted, as are a temporary UPN (last character a letter) and a valid UPN written
    in lower case with spaces; 12 characters, or 14 whose first 13 are a valid UPN, or 12
    and 14 whose check letter is right for their other characters, are refused 422
    ``INVALID_UPN`` and nothing is stored."""
    token = world.practitioner().token
    accepted = {f"check letter {letter}": _upn_with_letter(letter) for letter in _UPN_LETTERS}
    temporary = _upn_with_letter(secrets.choice(_UPN_LETTERS), temporary=True)
    accepted["a temporary UPN"] = temporary
    sample = valid_upn()
    accepted["lower case with spaces"] = f"{sample[0].lower()}{sample[1:5]} {sample[5:9]} {sample[9:]}"
    refused = []
    for what, upn in accepted.items():
        response = world.client.post("/children", token=token, json=_base(world, upn=upn))
        if response.status_code != 201:
            refused.append(f"{what} ({upn}): {describe(response)}")
    if refused:
        fail(REC_002, f"valid UPNs refused: {'; '.join(refused)}")
    for upn, what in (
        (sample[:12], "12 characters"),
        (sample + "7", "14 characters whose first 13 are a valid UPN"),
        *_wrong_length_upns_with_right_letter(),
    ):
        _refused_and_not_stored(
            world, _base(world, upn=upn), REC_002, "INVALID_UPN", f"create a child with UPN {upn} ({what})"
        )


def _nhs_with_check_digit(digit: str) -> str:
    """A valid NHS number (first digit 4..9) whose check digit is ``digit``."""
    while True:
        body = secrets.choice("456789") + "".join(secrets.choice(string.digits) for _ in range(8))
        try:
            number = body + nhs_check_digit(body)
        except ValueError:
            continue
        if number[9] == digit:
            return number


@check(REC_003, kind="scenario")
def test_nhs_number_every_check_digit_and_length(world: World) -> None:
    """REC-003: a valid NHS number for each check digit 0..9 (modulus 11 remainders 0 and
    2..10) is accepted, also written 3 3 4 with spaces; nine digits (also nine whose last digit
    fits the modulus 11 test), or eleven whose first ten are a valid number, are refused 422 ``INVALID_NHS_NUMBER`` and nothing is stored."""
    token = world.practitioner().token
    accepted = {f"check digit {d}": _nhs_with_check_digit(d) for d in "0123456789"}
    accepted["written with spaces"] = spaced_nhs_number(valid_nhs_number())
    refused = []
    for what, number in accepted.items():
        response = world.client.post("/children", token=token, json=_base(world, nhs_number=number))
        if response.status_code != 201:
            refused.append(f"{what} ({number}): {describe(response)}")
    if refused:
        fail(REC_003, f"valid NHS numbers refused: {'; '.join(refused)}")
    good = valid_nhs_number()
    for number, what in (
        (good[:9], "nine digits"),
        (nine_digits_fitting_the_sum(), "nine digits whose last is the modulus 11 check digit of the rest"),
        (good + "3", "eleven digits whose first ten are valid"),
    ):
        _refused_and_not_stored(
            world,
            _base(world, nhs_number=number),
            REC_003,
            "INVALID_NHS_NUMBER",
            f"create a child with NHS number {number} ({what})",
        )


@check(REC_004, kind="scenario")
def test_date_boundaries_today_and_birth_day(world: World, today: date) -> None:
    """REC-004: a date of birth of today (Europe/London), a date of death of today and a
    death on the day of birth are accepted; a PATCH of the date of birth alone to after the
    recorded date of death is refused 422 ``DATE_ORDER`` and changes nothing."""
    day = today.isoformat()
    for what, fields in (
        ("born today", {"date_of_birth": day}),
        ("who died today", {"date_of_birth": "2004-03-01", "date_of_death": day}),
        ("who died on the day of birth", {"date_of_birth": "2004-03-01", "date_of_death": "2004-03-01"}),
    ):
        response = world.client.post("/children", token=world.practitioner().token, json=_base(world, **fields))
        expect_status(response, 201, REC_004, f"create a child {what} ({fields})")
    cid = child_id(
        world.child(family_name=name_token(), date_of_birth="2004-03-01", date_of_death="2006-07-01"), REC_004
    )
    response = world.client.patch(
        f"/children/{cid}", token=world.practitioner().token, json={"date_of_birth": "2006-08-01"}
    )
    expect_status(
        response,
        422,
        REC_004,
        "PATCH the date of birth (2006-08-01) alone to after the recorded death (2006-07-01)",
        code="DATE_ORDER",
    )
    if _get_child(world, cid, REC_004).get("date_of_birth") != "2004-03-01":
        fail(REC_004, "a refused PATCH of the date of birth nevertheless changed it")


@check(REC_005, kind="scenario")
def test_aliases_of_the_same_type_all_listed(world: World) -> None:
    """REC-005: two previous names and two aliases of one child are all listed."""
    cid = child_id(world.child(family_name=name_token()), REC_005)
    names = [
        ("Jo", name_token(), "previous"),
        ("Joanne", name_token(), "previous"),
        ("Jay", name_token(), "alias"),
        ("Jojo", name_token(), "alias"),
    ]
    for given, family, kind in names:
        world.alias(cid, given, family, kind)
    listed = expect_status(
        world.client.get(f"/children/{cid}/aliases", token=world.practitioner().token), 200, REC_005, "list aliases"
    )
    items = listed.get("items") if isinstance(listed, dict) else None
    if not isinstance(items, list):
        fail(REC_005, f"GET /children/{cid}/aliases did not return {{items: [...]}}: {str(listed)[:200]}")
    present = {(i.get("given_name"), i.get("family_name"), i.get("type")) for i in items if isinstance(i, dict)}
    missing = [n for n in names if n not in present]
    if missing:
        fail(REC_005, f"names of the same type missing from the list: {missing}; listed {sorted(map(str, present))}")


@check(REC_007, kind="scenario")
def test_patch_with_own_local_id(world: World) -> None:
    """REC-007 (SHOULD): a PATCH that repeats the child's own local ID with a change is
    answered 200 and applied (the child does not clash with itself)."""
    local_id = world.unique("own")
    cid = child_id(world.child(family_name=name_token(), local_id=local_id), REC_007)
    new_family = name_token()
    response = world.client.patch(
        f"/children/{cid}", token=world.practitioner().token, json={"local_id": local_id, "family_name": new_family}
    )
    expect_status(response, 200, REC_007, "PATCH a child repeating its own local_id")
    if _get_child(world, cid, REC_007).get("family_name") != new_family:
        fail(REC_007, "a PATCH repeating the child's own local_id answered 200 but did not apply its change")
