"""The clean reference service over real HTTP: design.md §4 semantics, one concern per test."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from reference_helpers import TODAY, Api, unique_name, valid_nhs, valid_upn

from conformance._version import __version__
from conformance.domain import workingdays


def test_about_needs_no_token(api: Api) -> None:
    about = api.anon.get("/about").json()
    assert about["supplier"] == "ics-conformance" and about["product"] == "ICS reference service"
    assert about["version"] == __version__ and about["spec_versions"] == ["2008.1", "2008.2"]
    assert about["capabilities"]["notification_latency_seconds"] == 2
    assert about["capabilities"]["inter_council_transfer"] is True and about["council"] == "Reference Council"


def test_auth_and_rights(api: Api) -> None:
    assert api.anon.get("/children", params={"family_name": "x"}).json()["code"] == "UNAUTHENTICATED"
    bad = api.anon.get("/practitioners/me", headers={"Authorization": "Bearer nope-nope-nope"})
    assert bad.status_code == 401
    reader = api.practitioner("read_only")
    worker = api.practitioner("practitioner")
    r = reader.client.post(
        "/children", json={"given_name": "A", "family_name": "B", "gender": "male", "date_of_birth": "2000-01-01"}
    )
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")
    child = api.child(worker.client)
    assert (
        worker.client.post(f"/children/{child['id']}/allocations", json={"practitioner_id": worker.id}).status_code
        == 403
    )
    assert worker.client.get("/audit").status_code == 403
    assert worker.client.get("/export").status_code == 403
    assert worker.client.post("/practitioners", json={"name": "x", "role": "admin"}).status_code == 403
    assert worker.client.get("/practitioners/me").json() == {
        "id": worker.id,
        "name": "Test practitioner",
        "role": "practitioner",
    }


def test_child_round_trip_and_identifiers(api: Api) -> None:
    upn, nhs = valid_upn(), valid_nhs()
    created = api.child(
        given_name="Ó'Brien",
        family_name="Smith-Jones",
        upn=upn.lower(),
        nhs_number=f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}",
        postcode="sw1a1aa",
        local_id=unique_name("L"),
    )
    got = api.admin.get(f"/children/{created['id']}").json()
    assert got == created
    assert got["upn"] == upn and got["nhs_number"] == nhs and got["postcode"] == "SW1A 1AA"
    assert got["given_name"] == "Ó'Brien" and got["shielded"] is False


def test_child_validation_codes(api: Api) -> None:
    base = {"given_name": "Ann", "family_name": "Bee", "gender": "female", "date_of_birth": "2001-01-01"}
    bad_upn = "A" + valid_upn()[1:] if not valid_upn(1).startswith("A") else "B" + valid_upn(1)[1:]
    cases = [
        ({"upn": "W201081234568"}, 422, "INVALID_UPN"),
        ({"nhs_number": "9434765918"}, 422, "INVALID_NHS_NUMBER"),
        ({"postcode": "NOT A CODE"}, 422, "INVALID_POSTCODE"),
        ({"given_name": "R2D2"}, 422, "INVALID_NAME"),
        ({"date_of_birth": "2008-10-01"}, 422, "DATE_IN_FUTURE"),
        ({"date_of_death": "2000-01-01"}, 422, "DATE_ORDER"),
        ({"date_of_death": "2009-01-01"}, 422, "DATE_IN_FUTURE"),
        ({"gender": "robot"}, 422, "VALIDATION_ERROR"),
        ({"expected_date_of_birth": "2009-01-01"}, 422, "VALIDATION_ERROR"),
        ({"colour": "blue"}, 422, "VALIDATION_ERROR"),
    ]
    assert bad_upn
    for change, status, code in cases:
        r = api.admin.post("/children", json={**base, **change})
        assert (r.status_code, r.json()["code"]) == (status, code), (change, r.text)
    assert api.admin.post("/children", content=b"{nope").json()["code"] == "MALFORMED_REQUEST"
    field = api.admin.post("/children", json={"given_name": "A"}).json()["details"][0]["field"]
    assert field == "family_name"
    local = unique_name("L")
    api.child(local_id=local)
    r = api.admin.post("/children", json={**base, "local_id": local})
    assert (r.status_code, r.json()["code"]) == (409, "DUPLICATE_LOCAL_ID")


def test_unborn_and_patch(api: Api) -> None:
    unborn = api.child(date_of_birth=..., expected_date_of_birth="2008-12-24")
    assert unborn["date_of_birth"] is None and unborn["expected_date_of_birth"] == "2008-12-24"
    r = api.admin.patch(f"/children/{unborn['id']}", json={"family_name": "Newname", "postcode": "m1 1ae"})
    assert r.status_code == 200 and r.json()["family_name"] == "Newname" and r.json()["postcode"] == "M1 1AE"
    assert api.admin.get(f"/children/{unborn['id']}").json()["family_name"] == "Newname"
    r = api.admin.patch(f"/children/{unborn['id']}", json={"date_of_birth": "2008-01-01"})
    assert r.json()["code"] == "VALIDATION_ERROR"  # both dates set
    assert api.admin.patch("/children/c-missing", json={"family_name": "X"}).status_code == 404


def test_search_names_aliases_and_criteria(api: Api) -> None:
    family = unique_name("Clim")
    climbie = api.child(given_name="Victoria", family_name=f"{family}é", gender="female", postcode="N1 9GU")
    obrien = api.child(given_name="Séan", family_name=f"O’{family}", gender="male", date_of_birth="2002-02-02")
    api.admin.post(
        f"/children/{obrien['id']}/aliases", json={"given_name": "Kwame", "family_name": "Manning", "type": "previous"}
    )
    assert climbie["id"] in api.search_ids(family_name=f"{family.upper()}E")
    assert api.search_ids(family_name=f"o'{family}") == {obrien["id"]}
    assert api.search_ids(family_name=family[:4], given_name="vic") == {climbie["id"]}
    # given and family must match the same name record (the alias here)
    assert obrien["id"] in api.search_ids(given_name="kwa", family_name="mann")
    assert obrien["id"] not in api.search_ids(given_name="kwa", family_name=f"O'{family}")
    assert api.search_ids(family_name=f"O'{family}", date_of_birth="2002-02-02", gender="male") == {obrien["id"]}
    assert api.search_ids(family_name=f"O'{family}", date_of_birth="2002-02-03") == set()
    assert api.search_ids(postcode="n19gu", family_name=family[:4]) == {climbie["id"]}
    assert api.search_ids(family_name=family[1:]) == set()  # no substring over-match
    for wildcard in ("%", "_", "\\", f"{family[:3]}%"):  # not a Name: refused, never a LIKE pattern
        r = api.admin.get("/children", params={"family_name": wildcard})
        assert (r.status_code, r.json()["code"]) == (422, "INVALID_NAME"), (wildcard, r.text[:200])
    r = api.admin.get("/children")
    assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_ERROR")
    assert api.admin.get("/children", params={"family_name": "x", "page_size": 101}).status_code == 422


def test_search_identifiers_deceased_unborn_shielded(api: Api) -> None:
    upn, nhs, local = valid_upn(), valid_nhs(), unique_name("L")
    child = api.child(upn=upn, nhs_number=nhs, local_id=local)
    assert api.search_ids(upn=f"{upn[:5]} {upn[5:].lower()}") == {child["id"]}
    assert api.search_ids(nhs_number=f"{nhs[:3]} {nhs[3:]}") == {child["id"]}
    assert api.search_ids(local_id=local) == {child["id"]}
    family = unique_name()
    dead = api.child(family_name=family, date_of_death="2007-01-01")
    assert api.search_ids(family_name=family) == set()
    assert api.search_ids(family_name=family, include_deceased="true") == {dead["id"]}
    unborn = api.child(family_name=family, date_of_birth=..., expected_date_of_birth="2008-11-11")
    assert api.search_ids(date_of_birth="2008-11-11", family_name=family) == {unborn["id"]}
    shielded = api.child(family_name=family, shielded=True)
    worker = api.practitioner()
    assert shielded["id"] not in api.search_ids(worker.client, family_name=family)
    assert worker.client.get(f"/children/{shielded['id']}").status_code == 404
    assert shielded["id"] in api.search_ids(family_name=family)  # admin sees all
    api.allocate(shielded["id"], worker.id)
    assert shielded["id"] in api.search_ids(worker.client, family_name=family)
    assert worker.client.get(f"/children/{shielded['id']}").status_code == 200


def test_paging_is_stable_and_complete(api: Api) -> None:
    family = unique_name("Page")
    ids = [api.child(family_name=family)["id"] for _ in range(7)]
    seen = []
    for page in (1, 2, 3):
        body = api.search(family_name=family, page=page, page_size=3)
        assert body["total"] == 7 and body["page"] == page and body["page_size"] == 3
        seen += [c["id"] for c in body["items"]]
    assert seen == ids
    assert api.search(family_name=family, page=4, page_size=3)["items"] == []


def test_allocations_case_notes_and_notifications(api: Api) -> None:
    a, b, c, outsider = (api.practitioner() for _ in range(4))
    child = api.child()
    api.allocate(child["id"], a.id)
    api.allocate(child["id"], b.id)
    ended = api.allocate(child["id"], c.id)
    r = api.admin.post(f"/allocations/{ended['id']}/end", json={})
    assert r.status_code == 200 and r.json()["end_date"] == TODAY.isoformat()
    listed = api.admin.get(f"/children/{child['id']}/allocations").json()["items"]
    assert [x["end_date"] for x in listed] == [None, None, TODAY.isoformat()]
    r = api.admin.post(f"/children/{child['id']}/allocations", json={"practitioner_id": "p-nobody"})
    assert (r.status_code, r.json()["code"]) == (422, "UNKNOWN_PRACTITIONER")
    note = api.note(child["id"], a, text="x" * 150)
    assert note["author_id"] == a.id
    assert api.inbox(a) == [] and api.inbox(c) == [] and api.inbox(outsider) == []
    (alert,) = api.inbox(b)
    assert alert["case_note_id"] == note["id"] and alert["preview"] == "x" * 100 and alert["acknowledged_at"] is None
    assert a.client.post(f"/notifications/{alert['id']}/acknowledge").status_code == 404
    acked = b.client.post(f"/notifications/{alert['id']}/acknowledge").json()
    assert acked["acknowledged_at"] is not None
    api.note(child["id"], a, text="second", restricted=True)
    alerts = api.inbox(b)
    assert [n["acknowledged_at"] is not None for n in alerts] == [True, False]
    assert alerts[1]["preview"] is None
    assert len(api.inbox(b, status="unacknowledged")) == 1
    notes = b.client.get(f"/children/{child['id']}/case-notes").json()["items"]
    assert [n["text"] for n in notes] == ["x" * 150, None]
    assert a.client.get(f"/children/{child['id']}/case-notes").json()["items"][1]["text"] == "second"
    assert api.admin.get(f"/children/{child['id']}/case-notes").json()["items"][1]["text"] == "second"


def test_referrals(api: Api) -> None:
    child = api.child()
    r = api.admin.post(
        "/referrals",
        json={"child_id": child["id"], "received_on": "2008-09-01", "source": "school", "reason": "absence"},
    )
    assert r.status_code == 201
    assert api.admin.get(f"/referrals/{r.json()['id']}").json() == r.json()
    assert api.admin.get(f"/children/{child['id']}/referrals").json()["items"] == [r.json()]
    future = api.admin.post(
        "/referrals", json={"child_id": child["id"], "received_on": "2008-10-01", "source": "school", "reason": "x"}
    )
    assert future.json()["code"] == "DATE_IN_FUTURE"


def test_assessment_timescales_and_overdue(api: Api) -> None:
    child = api.child()
    r = api.assessment(child["id"], "core", "2007-12-14")
    body = r.json()
    assert body["due_date"] == workingdays.due_date("core", TODAY.replace(2007, 12, 14)).isoformat()
    assert body["overdue"] is True and body["status"] == "open" and body["visits"] == []
    assert api.assessment(child["id"]).json()["code"] == "ASSESSMENT_ALREADY_OPEN"
    easter = api.child()
    initial = api.assessment(easter["id"], "initial", "2008-03-19").json()
    assert initial["due_date"] == "2008-04-01"  # Good Friday 21 and Easter Monday 24 March 2008 skipped
    assert api.assessment(api.child()["id"], start="2008-10-01").json()["code"] == "DATE_IN_FUTURE"


def test_visits_and_gating(api: Api) -> None:
    child = api.child()
    ref = api.admin.post(
        "/referrals", json={"child_id": child["id"], "received_on": "2008-09-10", "source": "police", "reason": "x"}
    ).json()
    assert api.assessment(child["id"], start="2008-09-01", referral_id=ref["id"]).json()["code"] == "DATE_ORDER"
    asmt = api.assessment(child["id"], start="2008-09-15", referral_id=ref["id"]).json()
    assert api.visit(asmt["id"], "2008-10-02").json()["code"] == "DATE_IN_FUTURE"
    assert api.visit(asmt["id"], "2008-09-01").json()["code"] == "DATE_ORDER"
    assert api.visit(asmt["id"], "2008-09-16", seen=False, seen_alone=True).json()["code"] == "VALIDATION_ERROR"
    unseen = api.visit(asmt["id"], "2008-09-16", seen=False).json()
    assert unseen["child_seen"] is False and unseen["seen_alone"] is None
    refused = api.complete(asmt["id"])
    assert (refused.status_code, refused.json()["code"]) == (422, "CHILD_NOT_SEEN")
    assert api.admin.get(f"/assessments/{asmt['id']}").json()["status"] == "open"
    api.visit(asmt["id"], "2008-09-25", seen=True, seen_alone=True)
    assert api.complete(asmt["id"], completed_on="2008-09-24").json()["code"] == "CHILD_NOT_SEEN"
    assert api.complete(asmt["id"], completed_on="2008-10-24").json()["code"] == "DATE_IN_FUTURE"
    assert api.complete(asmt["id"], completed_on="2008-09-01").json()["code"] == "DATE_ORDER"
    done = api.complete(asmt["id"], completed_on="2008-09-26", authorised_by="Team manager")
    assert done.status_code == 200
    body = done.json()
    assert body["status"] == "completed" and body["overdue"] is True  # initial due 2008-09-24
    assert len(body["visits"]) == 2 and body["authorised_by"] == "Team manager"
    assert api.complete(asmt["id"]).json()["code"] == "ASSESSMENT_NOT_OPEN"
    assert api.visit(asmt["id"], "2008-09-26").status_code == 409
    assert api.admin.get(f"/children/{child['id']}/assessments").json()["items"] == [body]


def test_audit(api: Api) -> None:
    worker = api.practitioner()
    child = api.child(worker.client)
    worker.client.get(f"/children/{child['id']}")
    worker.client.patch(f"/children/{child['id']}", json={"given_name": "Bea"})
    entries = api.admin.get("/audit", params={"child_id": child["id"]}).json()
    assert [(e["action"], e["practitioner_id"]) for e in entries["items"]] == [
        ("create", worker.id),
        ("view", worker.id),
        ("update", worker.id),
    ]
    assert entries["total"] == 3


def test_export_zip_and_manifest(api: Api) -> None:
    child = api.child(upn=valid_upn())
    api.admin.post(
        f"/children/{child['id']}/aliases", json={"given_name": "Bo", "family_name": "Peep", "type": "alias"}
    )
    r = api.admin.get("/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["spec_version"] == "2008.2" and manifest["producer"]["version"] == __version__
    assert {f["path"] for f in manifest["files"]} | {"manifest.json"} == set(archive.namelist())
    for entry in manifest["files"]:
        data = archive.read(entry["path"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        assert data.count(b"\n") == entry["count"]
    children = [json.loads(line) for line in archive.read("children.jsonl").splitlines()]
    assert any(c["id"] == child["id"] and c["upn"] == child["upn"] for c in children)
    practitioners = archive.read("practitioners.jsonl")
    assert b"token" not in practitioners


def test_unknown_routes_and_methods_are_json_4xx(api: Api) -> None:
    r = api.admin.get("/nowhere")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    r = api.admin.delete("/children")
    assert r.status_code == 405
    assert api.admin.get("/children/" + "x" * 300).status_code == 404
    assert api.admin.get("/children", params={"family_name": "a", "page": "one"}).status_code == 422
    assert api.admin.post("/assessments/nope/complete").status_code == 404
    assert api.admin.post("/children", content=b'"\\ud800"').status_code in (400, 422)
