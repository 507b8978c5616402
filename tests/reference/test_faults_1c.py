"""Every phase 1C fault changes the reference's behaviour, and the clean reference behaves as design.md §9 says.

One scenario per fault, run against the clean service and a service with only that fault
(as ``test_faults.py`` does for 1A/1B), plus direct tests of the transfer round trip.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reference_helpers import TODAY, Api, unique_name

from conformance.reference import FAULTS, serve
from conformance.reference.faults_1c import PHASE_1C_FAULTS

Scenario = Callable[[Api], Any]
SCENARIOS: dict[str, Scenario] = {}
PHASE_1C = {name for name, *_ in PHASE_1C_FAULTS}


def scenario(*faults: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        for fault in faults:
            assert fault not in SCENARIOS, fault
            SCENARIOS[fault] = fn
        return fn

    return register


def _history(api: Api, *, shielded: bool = False) -> dict[str, Any]:
    """A child with an alias, an ended and an open allocation, a referral, a completed assessment
    with a seen visit (not alone, with a reason), and a restricted note."""
    child = api.child(shielded=shielded, local_id=unique_name("L"))
    cid = child["id"]
    api.admin.post(f"/children/{cid}/aliases", json={"given_name": "Bo", "family_name": unique_name(), "type": "alias"})
    worker = api.practitioner()
    ended = api.allocate(cid, worker.id, start_date="2008-01-02")
    api.admin.post(f"/allocations/{ended['id']}/end", json={"end_date": "2008-02-01"})
    api.allocate(cid, api.practitioner().id, start_date="2008-03-01")
    referral = api.admin.post(
        "/referrals", json={"child_id": cid, "received_on": "2008-09-01", "source": "school", "reason": "Concern"}
    ).json()
    assessment = api.assessment(cid, start="2008-09-02", referral_id=referral["id"]).json()
    api.visit(assessment["id"], "2008-09-03", seen_alone=False, not_seen_alone_reason="Carer stayed")
    api.visit(assessment["id"], "2008-09-04", seen_alone=True)
    assert api.complete(assessment["id"], completed_on="2008-09-05").status_code == 200
    api.note(cid, text="Restricted detail", restricted=True)
    return child


def _package(api: Api, child_id: str) -> bytes:
    response = api.admin.get(f"/children/{child_id}/transfer-package")
    assert response.status_code == 200, response.text
    return response.content


def _files(package: bytes) -> dict[str, Any]:
    archive = zipfile.ZipFile(io.BytesIO(package))
    out: dict[str, Any] = {"manifest": json.loads(archive.read("manifest.json"))}
    for name in archive.namelist():
        if name.endswith(".jsonl"):
            out[name[:-6]] = [json.loads(line) for line in archive.read(name).splitlines() if line.strip()]
    return out


def _import(api: Api, package: bytes) -> Any:
    return api.admin.post("/transfers", content=package, headers={"Content-Type": "application/zip"})


def _imported(api: Api, shielded: bool = False) -> dict[str, Any]:
    response = _import(api, _package(api, _history(api, shielded=shielded)["id"]))
    assert response.status_code == 201, response.text
    return response.json()


# -- transfer ------------------------------------------------------------------------------------

scenario("transfer-drops-restricted-flag")(
    lambda api: [n["restricted"] for n in _files(_package(api, _history(api)["id"]))["case_notes"]]
)
scenario("transfer-omits-ended-allocations")(lambda api: len(_files(_package(api, _history(api)["id"]))["allocations"]))
scenario("transfer-includes-other-child")(
    lambda api: api.child() and len(_files(_package(api, _history(api)["id"]))["children"])
)


@scenario("transfer-package-for-practitioners")
def _package_role(api: Api) -> int:
    return api.practitioner().client.get(f"/children/{api.child()['id']}/transfer-package").status_code


@scenario("import-loses-aliases")
def _import_aliases(api: Api) -> int:
    return len(api.admin.get(f"/children/{_imported(api)['child_id']}/aliases").json()["items"])


@scenario("import-loses-visits")
def _import_visits(api: Api) -> list[int]:
    items = api.admin.get(f"/children/{_imported(api)['child_id']}/assessments").json()["items"]
    return [len(a["visits"]) for a in items]


@scenario("import-accepts-invalid-package")
def _import_invalid(api: Api) -> int:
    package = _package(api, _history(api)["id"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as source, zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "aliases.jsonl":
                data += data  # every alias twice: duplicate IDs, and the manifest's count is wrong
            target.writestr(name, data)
    return _import(api, buffer.getvalue()).status_code


@scenario("import-unrestricts-notes")
def _import_restricted(api: Api) -> list[bool]:
    return [
        n["restricted"] for n in api.admin.get(f"/children/{_imported(api)['child_id']}/case-notes").json()["items"]
    ]


@scenario("import-unshields")
def _import_shielded(api: Api) -> bool:
    return bool(api.admin.get(f"/children/{_imported(api, shielded=True)['child_id']}").json()["shielded"])


# -- audit ----------------------------------------------------------------------------------------


def _actions(api: Api, **params: Any) -> list[str]:
    return [e["action"] for e in api.admin.get("/audit", params={"page_size": 100, **params}).json()["items"]]


@scenario("audit-misses-searches")
def _search_audit(api: Api) -> list[str]:
    who = api.practitioner()
    who.client.get("/children", params={"family_name": unique_name()})
    return _actions(api, practitioner_id=who.id)


@scenario("audit-misses-note-reads")
def _notes_audit(api: Api) -> list[str]:
    who, child = api.practitioner(), api.child()
    who.client.get(f"/children/{child['id']}/case-notes")
    return _actions(api, practitioner_id=who.id)


@scenario("audit-deletable", "audit-editable")
def _audit_changes(api: Api) -> list[int]:
    entry = api.admin.get("/audit", params={"child_id": api.child()["id"]}).json()["items"][0]
    return [
        api.admin.delete(f"/audit/{entry['id']}").status_code,
        api.admin.patch(f"/audit/{entry['id']}", json={"action": "view"}).status_code,
    ]


@scenario("export-drops-audit", "export-audit-orphans")
def _export_audit(api: Api) -> Any:
    api.child()
    archive = zipfile.ZipFile(io.BytesIO(api.admin.get("/export").content))
    if "audit.jsonl" not in archive.namelist():
        return "no audit.jsonl"
    practitioners = {json.loads(line)["id"] for line in archive.read("practitioners.jsonl").splitlines()}
    return all(
        json.loads(line)["practitioner_id"] in practitioners for line in archive.read("audit.jsonl").splitlines()
    )


@scenario("audit-misses-transfer-out")
def _transfer_out(api: Api) -> list[str]:
    child = api.child()
    _package(api, child["id"])
    return _actions(api, child_id=child["id"])


@scenario("audit-misses-transfer-in")
def _transfer_in(api: Api) -> list[str]:
    return _actions(api, child_id=_imported(api)["child_id"])


# -- shielding ------------------------------------------------------------------------------------


@scenario("shielded-forbidden-not-hidden", "shielded-attempt-not-audited")
def _shielded(api: Api) -> Any:
    who, child = api.practitioner(), api.child(shielded=True)
    return who.client.get(f"/children/{child['id']}").status_code, _actions(api, practitioner_id=who.id)


@scenario("shielded-ended-allocation-sees")
def _shielded_ended(api: Api) -> int:
    who, child = api.practitioner(), api.child(shielded=True)
    allocation = api.allocate(child["id"], who.id, start_date="2008-01-02")
    api.admin.post(f"/allocations/{allocation['id']}/end", json={"end_date": "2008-02-01"})
    return who.client.get(f"/children/{child['id']}").status_code


# -- visits -----------------------------------------------------------------------------------------


def _assessment(api: Api) -> str:
    return api.assessment(api.child()["id"], start="2008-09-01").json()["id"]


scenario("seen-alone-not-recorded")(lambda api: api.visit(_assessment(api), "2008-09-02", seen_alone=True).json())
scenario("seen-alone-unseen-accepted")(
    lambda api: api.visit(_assessment(api), "2008-09-02", seen=False, seen_alone=True).status_code
)
scenario("not-alone-reason-optional")(
    lambda api: api.visit(_assessment(api), "2008-09-02", seen_alone=False).status_code
)
scenario("not-alone-reason-dropped")(
    lambda api: api.visit(_assessment(api), "2008-09-02", seen_alone=False, not_seen_alone_reason="Carer").json()[
        "not_seen_alone_reason"
    ]
)

# -- chronology ---------------------------------------------------------------------------------------


@scenario("chronology-newest-first", "chronology-misses-seen-visits", "chronology-links-assessment-for-visits")
def _chronology(api: Api) -> list[tuple[str, str, str]]:
    child = _history(api)
    items = api.admin.get(f"/children/{child['id']}/chronology").json()["items"]
    return [(e["date"], e["type"], e["source_id"]) for e in items]


# -- the tests ---------------------------------------------------------------------------------------


def test_every_1c_fault_has_a_scenario_and_1c_targets() -> None:
    assert set(SCENARIOS) == PHASE_1C
    for name in PHASE_1C:
        fault = FAULTS[name]
        assert fault.targets and all(t.startswith("ICS-1C-") for t in fault.targets), fault


_CLEAN: dict[Scenario, Any] = {}


@pytest.fixture(scope="module")
def faulty() -> Iterator[Callable[[str], Api]]:
    managers: list[Any] = []
    apis: dict[str, Api] = {}

    def get(fault: str) -> Api:
        if fault not in apis:
            manager = serve(faults=[fault], today=lambda: TODAY)
            apis[fault] = Api(manager.__enter__())
            managers.append(manager)
        return apis[fault]

    yield get
    for manager in managers:
        manager.__exit__(None, None, None)


@pytest.mark.parametrize("fault", sorted(PHASE_1C))
def test_1c_fault_changes_behaviour(fault: str, api: Api, faulty: Callable[[str], Api]) -> None:
    run = SCENARIOS[fault]
    if run not in _CLEAN:
        _CLEAN[run] = run(api)
    clean = _CLEAN[run]
    result = run(faulty(fault))
    if isinstance(clean, list) and clean and isinstance(clean[0], tuple):  # chronologies: compare their shape
        clean = [(d, t) for d, t, _ in clean], [s for *_, s in clean]
        result = [(d, t) for d, t, _ in result], [s for *_, s in result]
    assert result != clean, f"{fault}: same behaviour as the clean service: {clean!r}"


# -- the clean reference, directly --------------------------------------------------------------------


def test_round_trip_between_two_councils() -> None:
    with serve(today=lambda: TODAY, council="Council A") as a, serve(today=lambda: TODAY, council="Council B") as b:
        sender, receiver = Api(a), Api(b)
        child = _history(sender, shielded=True)
        package = _package(sender, child["id"])
        files = _files(package)
        assert files["manifest"]["kind"] == "transfer"
        assert files["manifest"]["source"] == {
            "council": "Council A",
            "child_id": child["id"],
            "local_id": child["local_id"],
        }
        assert [c["id"] for c in files["children"]] == [child["id"]] and len(files["chronology"]) == 8
        response = _import(receiver, package)
        assert response.status_code == 201, response.text
        transfer = response.json()
        new = receiver.admin.get(f"/children/{transfer['child_id']}").json()
        assert new["shielded"] is True and new["local_id"] is None and new["family_name"] == child["family_name"]
        assert receiver.admin.get(f"/transfers/{transfer['id']}").json() == transfer
        allocations = receiver.admin.get(f"/children/{transfer['child_id']}/allocations").json()["items"]
        assert sorted(a["end_date"] for a in allocations) == ["2008-02-01", TODAY.isoformat()]
        outsider = receiver.practitioner()
        assert outsider.client.get(f"/children/{transfer['child_id']}").status_code == 404
        notes = outsider.client.get(f"/children/{transfer['child_id']}/case-notes").json()["items"]
        assert [(n["restricted"], n["text"]) for n in notes] == [(True, None)]
        back = _import(sender, _package(receiver, transfer["child_id"]))  # and home again
        assert back.status_code == 201 and back.json()["source"]["council"] == "Council B"


def test_invalid_packages_refused_and_nothing_stored(api: Api) -> None:
    child = _history(api)
    package = _package(api, child["id"])
    before = api.search_ids(family_name=child["family_name"])
    for body in (b"not a zip", package[: len(package) // 2], b"PK\x03\x04" + b"\x00" * 40):
        response = _import(api, body)
        assert response.status_code == 422 and response.json()["code"] == "INVALID_TRANSFER_PACKAGE", response.text
    assert api.search_ids(family_name=child["family_name"]) == before
    practitioner = api.practitioner()
    assert practitioner.client.post("/transfers", content=package).status_code == 403


def test_seen_alone_rules(api: Api) -> None:
    aid = _assessment(api)
    assert api.visit(aid, "2008-09-02", seen=False, seen_alone=True).json()["code"] == "VALIDATION_ERROR"
    assert api.visit(aid, "2008-09-02", seen_alone=False).json()["code"] == "VALIDATION_ERROR"
    assert api.visit(aid, "2008-09-02", seen_alone=True, not_seen_alone_reason="x").status_code == 422
    ok = api.visit(aid, "2008-09-02", seen_alone=False, not_seen_alone_reason="Parent insisted")
    assert ok.status_code == 201 and ok.json()["not_seen_alone_reason"] == "Parent insisted"


def test_audit_log_cannot_be_changed(api: Api) -> None:
    entry = api.admin.get("/audit", params={"child_id": api.child()["id"]}).json()["items"][0]
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        for path in ("/audit", f"/audit/{entry['id']}"):
            assert 400 <= api.admin.request(method, path, json={"action": "view"}).status_code < 500
    assert api.admin.get("/audit", params={"child_id": entry["child_id"]}).json()["items"][0] == entry


def test_database_written_before_1c_is_migrated(tmp_path: Any) -> None:
    """A SQLite file of an earlier version: visits gain the reason column, audit entries may name no child."""
    import sqlite3

    from conformance.reference.store import Store

    path = tmp_path / "old.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, at TEXT NOT NULL,"
        " practitioner_id TEXT NOT NULL, child_id TEXT NOT NULL, action TEXT NOT NULL);"
        "CREATE INDEX audit_child ON audit(child_id);"
        "CREATE TABLE visits (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, assessment_id TEXT NOT NULL,"
        " visit_date TEXT NOT NULL, child_seen INTEGER NOT NULL, seen_alone INTEGER, recorded_by TEXT NOT NULL);"
        "INSERT INTO audit (id, at, practitioner_id, child_id, action) VALUES ('au-1', 't', 'p', 'c', 'view');"
    )
    connection.commit()
    connection.close()
    store = Store(path)
    store.insert("audit", {"id": "au-2", "at": "t", "practitioner_id": "p", "child_id": None, "action": "search"})
    assert [r["child_id"] for r in store.all("SELECT child_id FROM audit ORDER BY seq")] == ["c", None]
    assert "not_seen_alone_reason" in {r["name"] for r in store.all("PRAGMA table_info(visits)")}
    store.close()
