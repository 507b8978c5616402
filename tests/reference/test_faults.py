"""Every injectable fault changes the reference's behaviour: one scenario per fault,
run against the clean service and against a service with only that fault."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from reference_helpers import TODAY, Api, unique_name, valid_nhs, valid_upn

from conformance.domain import identifiers
from conformance.reference import FAULTS, serve
from conformance.reference.faults_1c import PHASE_1C_FAULTS
from conformance.reference.rules import wrong_check_letter

Scenario = Callable[[Api], Any]
SCENARIOS: dict[str, Scenario] = {}


def scenario(*faults: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        for fault in faults:
            assert fault not in SCENARIOS, fault
            SCENARIOS[fault] = fn
        return fn

    return register


def _create(api: Api, **fields: Any) -> int:
    body = {
        "given_name": "Ann",
        "family_name": unique_name(),
        "date_of_birth": "2001-05-06",
        "gender": "female",
        **fields,
    }
    body = {k: v for k, v in body.items() if v is not ...}
    return api.admin.post("/children", json=body).status_code


# -- records, referrals, allocations, case notes ----------------------------------------------

scenario("upn-no-check-letter")(lambda api: _create(api, upn=wrong_check_letter(valid_upn())))
scenario("nhs-no-modulus")(lambda api: _create(api, nhs_number="9434765918"))
scenario("records-accepts-death-before-birth")(lambda api: _create(api, date_of_death="2000-01-01"))
scenario("unborn-requires-dob")(lambda api: _create(api, date_of_birth=..., expected_date_of_birth="2008-12-01"))
scenario("accepts-invalid-input")(lambda api: _create(api, gender="robot"))


@scenario("aliases-not-listed")
def _aliases(api: Api) -> Any:
    child = api.child()
    alias = unique_name("Al")
    api.admin.post(f"/children/{child['id']}/aliases", json={"given_name": "Bo", "family_name": alias, "type": "alias"})
    listed = api.admin.get(f"/children/{child['id']}/aliases").json()["items"]
    return len(listed), api.search_ids(family_name=alias) == {child["id"]}


@scenario("local-id-duplicates-allowed")
def _local_id(api: Api) -> Any:
    local = unique_name("L")
    return _create(api, local_id=local), _create(api, local_id=local)


scenario("child-read-back-drops-postcode")(
    lambda api: api.admin.get(f"/children/{api.child(postcode='LS1 4AP')['id']}").json()["postcode"]
)


@scenario("patch-ignored")
def _patch(api: Api) -> Any:
    child = api.child()
    api.admin.patch(f"/children/{child['id']}", json={"given_name": "Changed"})
    return api.admin.get(f"/children/{child['id']}").json()["given_name"]


def _referral(api: Api, received_on: str = "2008-09-01", source: str = "health") -> Any:
    child = api.child()
    r = api.admin.post(
        "/referrals", json={"child_id": child["id"], "received_on": received_on, "source": source, "reason": "concern"}
    )
    return r


scenario("referral-accepts-future-date")(lambda api: _referral(api, received_on="2008-10-01").status_code)
scenario("referral-loses-source")(
    lambda api: api.admin.get(f"/referrals/{_referral(api).json()['id']}").json()["source"]
)


@scenario("allocations-not-listed", "allocation-end-not-recorded")
def _allocations(api: Api) -> Any:
    author, kept, ended = api.practitioner(), api.practitioner(), api.practitioner()
    child = api.child()
    api.allocate(child["id"], kept.id)
    gone = api.allocate(child["id"], ended.id, start_date="2008-09-01")
    ended_reply = api.admin.post(f"/allocations/{gone['id']}/end", json={"end_date": "2008-09-29"}).json()
    listed = [
        (a["practitioner_id"] == kept.id, a["end_date"])
        for a in api.admin.get(f"/children/{child['id']}/allocations").json()["items"]
    ]
    api.note(child["id"], author)
    return ended_reply["end_date"], listed, len(api.inbox(kept)), len(api.inbox(ended))


@scenario("allocation-unknown-practitioner")
def _unknown_practitioner(api: Api) -> Any:
    return api.admin.post(
        f"/children/{api.child()['id']}/allocations", json={"practitioner_id": "p-nobody"}
    ).status_code


@scenario("case-notes-newest-first", "restricted-note-visible")
def _case_notes(api: Api) -> Any:
    author, reader = api.practitioner(), api.practitioner()
    child = api.child()
    api.note(child["id"], author, text="first")
    api.note(child["id"], author, text="second", restricted=True)
    return [n["text"] for n in reader.client.get(f"/children/{child['id']}/case-notes").json()["items"]]


# -- timescales and assessments ------------------------------------------------------------


@scenario("timescale-calendar-days", "timescale-ignores-bank-holidays", "timescale-wrong-holiday-year")
def _timescales(api: Api) -> Any:
    dues = []
    for kind, start in (("initial", "2008-03-19"), ("initial", "2007-12-21"), ("core", "2008-04-28")):
        dues.append(api.assessment(api.child()["id"], kind, start).json()["due_date"])
    return dues


scenario("overdue-never")(lambda api: api.assessment(api.child()["id"], "initial", "2008-01-02").json()["overdue"])
scenario("assessment-accepts-future-start")(
    lambda api: api.assessment(api.child()["id"], start="2008-10-02").status_code
)


@scenario("gating-allows-second-open")
def _second_open(api: Api) -> Any:
    child = api.child()
    return api.assessment(child["id"]).status_code, api.assessment(child["id"]).status_code


@scenario("visits-not-listed")
def _visits_listed(api: Api) -> Any:
    asmt = api.assessment(api.child()["id"]).json()
    api.visit(asmt["id"], "2008-09-02")
    return len(api.admin.get(f"/assessments/{asmt['id']}").json()["visits"])


# -- gating ----------------------------------------------------------------------------------


def _gate(api: Api, visits: list[tuple[str, bool]], completed_on: str | None = None) -> Any:
    asmt = api.assessment(api.child()["id"], start="2008-09-10").json()
    statuses = [api.visit(asmt["id"], day, seen).status_code for day, seen in visits]
    body = {"completed_on": completed_on} if completed_on else {}
    done = api.complete(asmt["id"], **body)
    after = api.admin.get(f"/assessments/{asmt['id']}").json()
    return statuses, done.status_code, done.json().get("code"), after["status"]


scenario("gating-off", "gating-generic-error-code", "gating-completes-despite-refusal")(lambda api: _gate(api, []))
scenario("gating-accepts-future-seen")(lambda api: _gate(api, [("2008-10-03", True)]))
scenario("gating-ignores-start-date")(lambda api: _gate(api, [("2008-09-01", True)]))
scenario("gating-ignores-completion-date")(lambda api: _gate(api, [("2008-09-25", True)], "2008-09-20"))
scenario("gating-counts-unseen-visits")(lambda api: _gate(api, [("2008-09-12", False)]))


# -- search ------------------------------------------------------------------------------------


@scenario(
    "search-accent-sensitive",
    "search-case-sensitive",
    "search-exact-names-only",
    "search-ignores-aliases",
    "search-substring-overmatch",
)
def _names(api: Api) -> Any:
    family = unique_name("Climb")
    child = api.child(given_name="Zoë", family_name=f"{family}ié-Ward")
    api.admin.post(
        f"/children/{child['id']}/aliases", json={"given_name": "Kim", "family_name": f"{family}ox", "type": "known_as"}
    )
    terms = [f"{family}ie", f"{family.upper()}IÉ", family[:6], "ward", f"{family}ox", family[2:]]
    return [api.search_ids(family_name=t) == {child["id"]} for t in terms]


@scenario("search-ignores-dob", "search-ignores-unborn")
def _dob(api: Api) -> Any:
    family = unique_name()
    born = api.child(family_name=family, date_of_birth="2003-03-03")
    unborn = api.child(family_name=family, date_of_birth=..., expected_date_of_birth="2008-12-12")
    return [
        api.search_ids(family_name=family, date_of_birth=d) == {c["id"]}
        for d, c in (("2003-03-03", born), ("2008-12-12", unborn))
    ]


@scenario("search-postcode-exact")
def _postcode(api: Api) -> Any:
    family = unique_name()
    child = api.child(family_name=family, postcode="SW1A 1AA")
    return api.search_ids(family_name=family, postcode="sw1a1aa") == {child["id"]}


@scenario("search-ignores-nhs-number")
def _nhs(api: Api) -> Any:
    nhs = valid_nhs()
    child = api.child(nhs_number=nhs)
    return api.search_ids(nhs_number=nhs) == {child["id"]}


@scenario("search-includes-deceased")
def _deceased(api: Api) -> Any:
    family = unique_name()
    api.child(family_name=family, date_of_death="2008-01-01")
    return len(api.search_ids(family_name=family))


@scenario("search-drops-last-page", "search-repeats-across-pages")
def _paging(api: Api) -> Any:
    family = unique_name("Pg")
    ids = [api.child(family_name=family)["id"] for _ in range(5)]
    pages = [
        [ids.index(c["id"]) for c in api.search(family_name=family, page=p, page_size=2)["items"]] for p in (1, 2, 3)
    ]
    return pages


@scenario("search-shows-shielded")
def _shielded(api: Api) -> Any:
    family = unique_name()
    api.child(family_name=family, shielded=True)
    return len(api.search_ids(api.practitioner().client, family_name=family))


# -- notifications -------------------------------------------------------------------------------


@scenario(
    "notify-missing-co-allocated",
    "notify-author",
    "notify-ended-allocation",
    "notify-unrelated",
    "notify-duplicate",
    "notify-delayed",
)
def _notify(api: Api) -> Any:
    author, b, c, ended, outsider = (api.practitioner() for _ in range(5))
    child = api.child()
    api.allocate(child["id"], author.id)
    api.allocate(child["id"], b.id)
    api.allocate(child["id"], c.id)
    gone = api.allocate(child["id"], ended.id)
    api.admin.post(f"/allocations/{gone['id']}/end", json={})
    api.note(child["id"], author)
    return [len(api.inbox(p)) for p in (author, b, c, ended, outsider)]


@scenario("restricted-note-leaks-text", "notify-ack-lost")
def _alert_content(api: Api) -> Any:
    author, reader = api.practitioner(), api.practitioner()
    child = api.child()
    api.allocate(child["id"], reader.id)
    api.note(child["id"], author, text="secret", restricted=True)
    (first,) = api.inbox(reader)
    reader.client.post(f"/notifications/{first['id']}/acknowledge")
    api.note(child["id"], author, text="open")
    return [(n["preview"], n["acknowledged_at"] is not None) for n in api.inbox(reader)]


# -- access ---------------------------------------------------------------------------------------

scenario("auth-ignored")(lambda api: api.anon.get("/practitioners/me").status_code)
scenario("auth-accepts-any-token")(
    lambda api: api.anon.get("/practitioners/me", headers={"Authorization": "Bearer made-up-token"}).status_code
)
scenario("rights-ignored")(lambda api: _create_as(api, "read_only"))


def _create_as(api: Api, role: str) -> int:
    who = api.practitioner(role)
    return who.client.post(
        "/children", json={"given_name": "A", "family_name": "Bee", "gender": "male", "date_of_birth": "2000-01-01"}
    ).status_code


@scenario("audit-misses-views")
def _audit(api: Api) -> Any:
    child = api.child()
    api.admin.get(f"/children/{child['id']}")
    return [e["action"] for e in api.admin.get("/audit", params={"child_id": child["id"]}).json()["items"]]


# -- export -------------------------------------------------------------------------------------------


@scenario(
    "export-drops-aliases",
    "export-bad-manifest-count",
    "export-bad-hash",
    "export-bad-date-format",
    "export-duplicate-ids",
    "export-orphan-case-notes",
    "export-shifts-visit-dates",
    "export-bad-check-digits",
    "export-unavailable",
)
def _export(api: Api) -> Any:
    upn = valid_upn()
    child = api.child(upn=upn, date_of_birth="2002-02-02", local_id="LA-EXPORT-1")
    api.admin.post(
        f"/children/{child['id']}/aliases", json={"given_name": "Bo", "family_name": "Peep", "type": "alias"}
    )
    api.note(child["id"])
    asmt = api.assessment(child["id"], start="2008-09-01").json()
    api.visit(asmt["id"], "2008-09-03")
    r = api.admin.get("/export")
    if r.status_code != 200:
        return r.status_code
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    manifest = json.loads(archive.read("manifest.json"))
    records = {f["path"]: [json.loads(x) for x in archive.read(f["path"]).splitlines()] for f in manifest["files"]}
    facts = {
        "counts": all(f["count"] == len(records[f["path"]]) for f in manifest["files"]),
        "hashes": all(f["sha256"] == hashlib.sha256(archive.read(f["path"])).hexdigest() for f in manifest["files"]),
    }
    children = records["children.jsonl"]
    ours = [c for c in children if c["id"] == child["id"]]
    child_ids = {c["id"] for c in children}
    facts["unique_ids"] = len(child_ids) == len(children)
    facts["dob"] = ours[0]["date_of_birth"]
    facts["upn_valid"] = identifiers.is_valid_upn(ours[0]["upn"])
    facts["aliases"] = sum(a["child_id"] == child["id"] for a in records["aliases.jsonl"])
    facts["notes_linked"] = all(n["child_id"] in child_ids for n in records["case_notes.jsonl"])
    facts["visits"] = [v["visit_date"] for v in records["visits.jsonl"] if v["assessment_id"] == asmt["id"]]
    return facts


# -- contract -----------------------------------------------------------------------------------------

scenario("server-error-on-unknown-child")(lambda api: api.admin.get("/children/c-unknown").status_code)
scenario("about-schema-violation")(lambda api: type(api.anon.get("/about").json()["spec_versions"]).__name__)


# -- the faults of the cases in specs/test-design (allocations, notes, notifications, access) -------


@scenario("allocation-end-ends-all-of-practitioner", "allocation-end-twice-overwrites")
def _ending(api: Api) -> Any:
    who, child = api.practitioner(), api.child()
    first = api.allocate(child["id"], who.id, start_date="2008-09-01")
    api.allocate(child["id"], who.id, start_date="2008-09-01")
    api.admin.post(f"/allocations/{first['id']}/end", json={"end_date": "2008-09-10"})
    api.admin.post(f"/allocations/{first['id']}/end", json={"end_date": "2008-09-20"})
    return sorted(str(a["end_date"]) for a in api.admin.get(f"/children/{child['id']}/allocations").json()["items"])


@scenario("case-note-text-truncated", "restricted-note-visible-to-allocated")
def _notes(api: Api) -> Any:
    child, author, allocated = api.child(), api.practitioner(), api.practitioner()
    api.allocate(child["id"], allocated.id)
    api.note(child["id"], author, text="x" * 5000)
    api.note(child["id"], author, text="secret", restricted=True)
    items = allocated.client.get(f"/children/{child['id']}/case-notes").json()["items"]
    return [len(n["text"]) if n["text"] else None for n in items]


@scenario(
    "notify-practitioner-role-only",
    "notify-only-practitioner-authors",
    "notify-skips-once-ended",
    "notify-author-excluded-once",
    "notify-all-managers",
    "notify-once-per-allocation",
)
def _notify_roles(api: Api) -> Any:
    child = api.child()
    manager, twice, again, outside = (
        api.practitioner("manager"),
        api.practitioner(),
        api.practitioner(),
        api.practitioner("manager"),
    )
    api.allocate(child["id"], manager.id)
    api.allocate(child["id"], twice.id)
    api.allocate(child["id"], twice.id)
    gone = api.allocate(child["id"], again.id, start_date="2008-09-01")
    api.admin.post(f"/allocations/{gone['id']}/end", json={"end_date": "2008-09-10"})
    api.allocate(child["id"], again.id)
    api.note(child["id"], twice)
    api.note(child["id"], outside)
    return [len(api.inbox(who)) for who in (manager, twice, again, outside)]


@scenario("restricted-preview-for-managers")
def _manager_preview(api: Api) -> Any:
    child, manager = api.child(), api.practitioner("manager")
    api.allocate(child["id"], manager.id)
    api.note(child["id"], api.practitioner(), text="secret", restricted=True)
    return [n["preview"] for n in api.inbox(manager)]


@scenario("ack-by-managers", "ack-twice-overwrites-time")
def _acknowledging(api: Api) -> Any:
    child, who = api.child(), api.practitioner()
    api.allocate(child["id"], who.id)
    api.note(child["id"], api.practitioner())
    nid = api.inbox(who)[0]["id"]
    by_manager = api.practitioner("manager").client.post(f"/notifications/{nid}/acknowledge").status_code
    first = who.client.post(f"/notifications/{nid}/acknowledge").json()["acknowledged_at"]
    second = who.client.post(f"/notifications/{nid}/acknowledge").json()["acknowledged_at"]
    return by_manager, first == second


scenario("auth-missing-on-referrals")(lambda api: api.anon.get(f"/referrals/{_referral(api).json()['id']}").status_code)


@scenario(
    "rights-assessments-unchecked",
    "rights-managers-create-practitioners",
    "rights-allocation-denied-to-practitioners-only",
)
def _rights(api: Api) -> Any:
    reader, manager, child = api.practitioner("read_only"), api.practitioner("manager"), api.child()
    return (
        reader.client.post(
            f"/children/{child['id']}/assessments", json={"type": "initial", "start_date": "2008-09-01"}
        ).status_code,
        manager.client.post("/practitioners", json={"name": "New", "role": "practitioner"}).status_code,
        reader.client.post(f"/children/{child['id']}/allocations", json={"practitioner_id": reader.id}).status_code,
    )


@scenario("audit-skips-privileged-views", "audit-views-deduplicated")
def _audited_views(api: Api) -> Any:
    child, manager, who = api.child(), api.practitioner("manager"), api.practitioner()
    for viewer in (manager.client, who.client, who.client):
        viewer.get(f"/children/{child['id']}")
    entries = api.admin.get("/audit", params={"child_id": child["id"], "page_size": 100}).json()["items"]
    return sorted((e["practitioner_id"] == manager.id, e["action"]) for e in entries if e["action"] == "view")


# -- the faults of the cases in specs/test-design (gating, assessments, timescales, referrals) ------


@scenario("gating-counts-other-assessments-visits")
def _other_assessment(api: Api) -> Any:
    child = api.child()
    first = api.assessment(child["id"], start="2008-09-01").json()
    api.visit(first["id"], "2008-09-01")
    api.complete(first["id"], completed_on="2008-09-01")
    second = api.assessment(child["id"], start="2008-09-01").json()
    return api.complete(second["id"], completed_on="2008-09-05").status_code


scenario("gating-managers-exempt")(lambda api: _gate(api, []))
scenario("gating-latest-visit-only")(lambda api: _gate(api, [("2008-09-12", True), ("2008-09-25", True)], "2008-09-20"))
scenario("gating-start-off-by-one")(lambda api: _gate(api, [("2008-09-09", True)]))
scenario("gating-accepts-tomorrow")(lambda api: _gate(api, [("2008-10-01", True)], "2008-10-01"))
scenario("assessment-accepts-tomorrow")(lambda api: api.assessment(api.child()["id"], start="2008-10-01").status_code)
scenario("assessment-refuses-today")(lambda api: api.assessment(api.child()["id"], start="2008-09-30").status_code)


@scenario("assessment-referral-off-by-one")
def _referral_eve(api: Api) -> Any:
    referral = _referral(api, received_on="2008-09-10").json()
    return api.assessment(referral["child_id"], start="2008-09-09", referral_id=referral["id"]).status_code


@scenario("visits-today-refused", "visits-listed-by-child")
def _own_visits(api: Api) -> Any:
    child = api.child()
    first = api.assessment(child["id"], start="2008-09-01").json()
    api.visit(first["id"], "2008-09-01")
    api.complete(first["id"], completed_on="2008-09-01")
    second = api.assessment(child["id"], start="2008-09-02").json()
    status = api.visit(second["id"], "2008-09-30", seen=False).status_code
    return status, len(api.admin.get(f"/assessments/{second['id']}").json()["visits"])


@scenario("timescale-no-substitute-days", "timescale-no-one-off-holidays", "timescale-holiday-start-shifted")
def _holiday_edges(api: Api) -> Any:
    return [
        api.assessment(api.child()["id"], "initial", start).json()["due_date"]
        for start in ("2004-12-21", "2002-05-29", "2008-03-21")  # Christmas 2004 observed, Golden Jubilee 2002
    ]


@scenario("overdue-grace-day", "overdue-open-always", "overdue-on-due-day")
def _overdue_edges(api: Api) -> Any:
    late = api.assessment(api.child()["id"], "initial", "2008-09-01").json()  # due 2008-09-10
    api.visit(late["id"], "2008-09-02")
    completed = api.complete(late["id"], completed_on="2008-09-11").json()["overdue"]
    started_today = api.assessment(api.child()["id"], "initial", TODAY.isoformat()).json()["overdue"]
    due_today = api.assessment(api.child()["id"], "initial", "2008-09-19").json()  # due 2008-09-30, TODAY
    return completed, started_today, due_today["due_date"], due_today["overdue"]


@scenario("referral-local-authority-as-other", "referral-reason-truncated")
def _referral_fields(api: Api) -> Any:
    child = api.child()
    r = api.admin.post(
        "/referrals",
        json={"child_id": child["id"], "received_on": "2008-09-01", "source": "local_authority", "reason": "x" * 300},
    ).json()
    read = api.admin.get(f"/referrals/{r['id']}").json()
    return read["source"], len(read["reason"])


scenario("referral-accepts-tomorrow")(lambda api: _referral(api, received_on="2008-10-01").status_code)
scenario("referral-refuses-today")(lambda api: _referral(api, received_on="2008-09-30").status_code)


# -- the faults of the cases in specs/test-design (records) -----------------------------------------


def _upn_letter(letter: str, last: str = "5") -> str:
    for serial in range(10**6):
        body = f"20108{serial:06d}{last}"
        if identifiers.upn_check_letter(body) == letter:
            return letter + body
    raise AssertionError(letter)  # pragma: no cover


@scenario("upn-stored-as-written", "upn-validated-before-compacting")
def _upn_written(api: Api) -> Any:
    upn = valid_upn()
    r = api.admin.post(
        "/children",
        json={
            "given_name": "Ann",
            "family_name": unique_name(),
            "date_of_birth": "2001-05-06",
            "gender": "female",
            "upn": f"{upn[0].lower()}{upn[1:7]} {upn[7:]}",
        },
    )
    return r.status_code, r.json().get("upn")


@scenario("gender-not-specified-read-as-not-known", "names-truncated")
def _read_back(api: Api) -> Any:
    child = api.child(gender="not_specified", given_name="A" * 100)
    return child["gender"], len(child["given_name"])


@scenario("upn-check-letter-table-short", "upn-final-letter-refused", "upn-length-unchecked")
def _upn_forms(api: Api) -> Any:
    return (
        _create(api, upn=_upn_letter("Z")),
        _create(api, upn=_upn_letter("A", last="K")),
        _create(api, upn=valid_upn() + "7"),
    )


@scenario("nhs-check-eleven-not-zero", "nhs-length-unchecked")
def _nhs_forms(api: Api) -> Any:
    zero = next(n for n in (valid_nhs() for _ in range(1000)) if n.endswith("0"))
    return _create(api, nhs_number=zero), _create(api, nhs_number=valid_nhs() + "3")


scenario("nhs-length-by-check-digit-only")(
    lambda api: _create(api, nhs_number=identifiers.nine_digits_fitting_the_sum())
)


@scenario("records-today-is-future", "records-death-on-birth-day-refused")
def _date_edges(api: Api) -> Any:
    return (
        _create(api, date_of_birth=TODAY.isoformat()),
        _create(api, date_of_birth="2004-03-01", date_of_death="2004-03-01"),
    )


@scenario("records-patch-checks-sent-dates-only", "local-id-clashes-with-itself")
def _patches(api: Api) -> Any:
    local = unique_name("L")
    child = api.child(date_of_birth="2004-03-01", date_of_death="2006-07-01", local_id=local)
    order = api.admin.patch(f"/children/{child['id']}", json={"date_of_birth": "2006-08-01"}).status_code
    own = api.admin.patch(f"/children/{child['id']}", json={"local_id": local, "given_name": "Bea"}).status_code
    return order, own


@scenario("aliases-listed-one-per-type")
def _same_type(api: Api) -> Any:
    child = api.child()
    for given in ("Jo", "Joanne"):
        api.admin.post(
            f"/children/{child['id']}/aliases", json={"given_name": given, "family_name": "Smith", "type": "previous"}
        )
    return len(api.admin.get(f"/children/{child['id']}/aliases").json()["items"])


# -- the faults of the cases in specs/test-design (search) ------------------------------------------


def _found_by(
    api: Api, fields: dict[str, Any], alias: tuple[str, str] | None, client: Any = None, **params: Any
) -> bool:
    child = api.child(**fields)
    if alias:
        api.admin.post(
            f"/children/{child['id']}/aliases", json={"given_name": alias[0], "family_name": alias[1], "type": "alias"}
        )
    return child["id"] in api.search_ids(client, **params)


@scenario("search-lowercase-not-casefold", "search-nfd-not-nfkd")
def _folding(api: Api) -> Any:
    g = unique_name("G")
    return (
        _found_by(api, {"given_name": g, "family_name": "Stra\u00dfe"}, None, given_name=g, family_name="Strasse"),
        _found_by(api, {"given_name": g, "family_name": "\uff2b\uff49\uff4d"}, None, given_name=g, family_name="Kim"),
    )


@scenario("search-aliases-not-folded", "search-aliases-whole-only", "search-aliases-need-family-name")
def _alias_terms(api: Api) -> Any:
    g, f = unique_name("G"), unique_name("F")
    return (
        _found_by(api, {}, (g, f + "\u00e9"), given_name=g, family_name=f + "e"),
        _found_by(api, {}, (g + "x", f + "-Jones"), given_name=g + "x", family_name="Jon"),
        _found_by(api, {}, (g + "y", f), given_name=g + "y"),
    )


@scenario("search-two-parts-only")
def _parts(api: Api) -> Any:
    g = unique_name("G")
    return _found_by(
        api, {"given_name": g, "family_name": "Ward-Price Llewellyn Jones"}, None, given_name=g, family_name="Jon"
    )


@scenario("search-dob-within-a-day", "search-gender-alone-refused")
def _dob_gender(api: Api) -> Any:
    f = unique_name("F")
    day_before = _found_by(
        api, {"family_name": f, "date_of_birth": "2001-05-05"}, None, family_name=f, date_of_birth="2001-05-06"
    )
    return day_before, api.admin.get("/children", params={"gender": "male"}).status_code


@scenario("search-local-id-symbols-refused")
def _local_id_symbols(api: Api) -> Any:
    return api.admin.get("/children", params={"local_id": "LA/2008#7"}).status_code


@scenario("search-postcode-prefix")
def _postcode_prefix(api: Api) -> Any:
    f = unique_name("F")
    return _found_by(api, {"family_name": f, "postcode": "SW1A 1AA"}, None, family_name=f, postcode="SW1A")


@scenario("search-local-id-raw")
def _local_id_search(api: Api) -> Any:
    local = unique_name("lid")
    return _found_by(api, {"local_id": local}, None, local_id=local.upper())


@scenario("search-alias-includes-deceased", "search-identifier-includes-deceased", "search-alias-skips-criteria")
def _alias_paths(api: Api) -> Any:
    g, f, upn = unique_name("G"), unique_name("F"), valid_upn()
    dead = {"date_of_death": "2002-01-01", "upn": upn}
    return (
        _found_by(api, dead, (g, f), given_name=g, family_name=f),
        upn in {c["upn"] for c in api.search(upn=upn)["items"]},
        _found_by(api, {"gender": "female"}, (g + "z", f), given_name=g + "z", family_name=f, gender="male"),
    )


@scenario("search-full-last-page-dropped", "search-alias-matches-duplicated")
def _pages(api: Api) -> Any:
    f = unique_name("F")
    first = api.child(family_name=f)
    api.child(family_name=f)
    api.admin.post(f"/children/{first['id']}/aliases", json={"given_name": "Al", "family_name": f, "type": "alias"})
    page = api.search(family_name=f, page=2, page_size=1)
    return len(page["items"]), page["total"]


scenario("search-keys-truncated")(
    lambda api: _found_by(
        api, {"given_name": "A" * 100, "family_name": "B" * 100}, None, given_name="A" * 100, family_name="B" * 100
    )
)


@scenario(
    "search-shielded-visible-to-managers",
    "search-shielded-any-allocation",
    "search-shielded-once-anyone-allocated",
    "search-alias-shows-shielded",
    "search-identifier-shows-shielded",
)
def _shielded_paths(api: Api) -> Any:
    g, f, upn = unique_name("G"), unique_name("F"), valid_upn()
    manager, elsewhere, allocated, outsider = (
        api.practitioner("manager"),
        api.practitioner(),
        api.practitioner(),
        api.practitioner(),
    )
    child = api.child(given_name=g, family_name=f, shielded=True, upn=upn)
    api.admin.post(f"/children/{child['id']}/aliases", json={"given_name": g + "a", "family_name": f, "type": "alias"})
    api.allocate(api.child()["id"], elsewhere.id)
    api.allocate(child["id"], allocated.id)
    seen = [child["id"] in api.search_ids(who.client, family_name=f) for who in (manager, elsewhere, outsider)]
    seen.append(child["id"] in api.search_ids(outsider.client, given_name=g + "a", family_name=f))
    seen.append(child["id"] in api.search_ids(outsider.client, upn=upn))
    return seen


# -- cases added by the mutation survivors (issue 9) ---------------------------------------------

scenario("gating-stops-at-unseen")(lambda api: _gate(api, [("2008-09-12", False), ("2008-09-15", True)]))
scenario("names-any-character")(lambda api: (_create(api, given_name="Ann3"), _create(api, family_name="Sm\u200bith")))


@scenario("upn-length-by-letter-only")
def _upn_lengths(api: Api) -> Any:
    short = "801" + f"{secrets.randbelow(10**8):08d}"  # 11 characters after the letter: a 12-character UPN
    long = short + "99"  # 13 after the letter: a 14-character UPN
    return [_create(api, upn=identifiers.upn_check_letter(body) + body) for body in (short, long)]


@scenario("notify-ended-before-today")
def _notify_ended_yesterday(api: Api) -> Any:
    author, ended = api.practitioner(), api.practitioner()
    child = api.child()
    api.allocate(child["id"], author.id)
    gone = api.allocate(child["id"], ended.id, start_date="2008-09-01")
    api.admin.post(f"/allocations/{gone['id']}/end", json={"end_date": "2008-09-29"})
    api.note(child["id"], author)
    return len(api.inbox(ended))


@scenario("notify-preview-whole-text")
def _preview_length(api: Api) -> Any:
    author, reader = api.practitioner(), api.practitioner()
    child = api.child()
    api.allocate(child["id"], reader.id)
    api.note(child["id"], author, text="x" * 150)
    return [len(n["preview"] or "") for n in api.inbox(reader)]


# -- the tests ---------------------------------------------------------------------------------------


#: phase 1C faults have their scenarios in test_faults_1c.py
PHASE_1C = {name for name, *_ in PHASE_1C_FAULTS}


def test_every_fault_has_a_scenario_and_targets() -> None:
    assert set(SCENARIOS) == set(FAULTS) - PHASE_1C
    for fault in (f for f in FAULTS.values() if f.name not in PHASE_1C):
        assert fault.targets and all(t.startswith(("ICS-1A-", "ICS-1B-")) for t in fault.targets), fault


_CLEAN: dict[Scenario, Any] = {}


@pytest.fixture(scope="module")
def faulty() -> Iterator[Callable[[str], Api]]:
    """A service per fault, started on first use; all stopped together at the end (uvicorn takes 0.1 s each)."""
    managers: list[Any] = []
    apis: dict[str, Api] = {}

    def get(fault: str) -> Api:
        if fault not in apis:
            manager = serve(faults=[fault], today=lambda: TODAY)
            apis[fault] = Api(manager.__enter__())
            managers.append(manager)
        return apis[fault]

    yield get
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda m: m.__exit__(None, None, None), managers))


@pytest.mark.parametrize("fault", sorted(set(FAULTS) - PHASE_1C))
def test_fault_changes_behaviour(fault: str, api: Api, faulty: Callable[[str], Api]) -> None:
    run = SCENARIOS[fault]
    if run not in _CLEAN:  # a scenario shared by several faults needs one clean run (its data is unique per run)
        _CLEAN[run] = run(api)
    clean = _CLEAN[run]
    result = run(faulty(fault))
    assert result != clean, f"{fault}: same behaviour as the clean service: {clean!r}"
