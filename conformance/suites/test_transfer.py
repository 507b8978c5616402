"""Phase 1C inter-council transfer checks (ICS-1C-XFER-001..006, ICS-1C-AUD-004), scenario kind.

Each sending side builds two children through its API — a *rich* one (shielded when it
declares shielded_records; two aliases; an allocation ended and one still open; a
referral; a completed assessment whose visits saw the child not alone (with a reason),
alone, and not at all; an open assessment seen once; a plain and a restricted case note)
and a *plain* one (unborn when it declares unborn_children, no history) — and gives a
manager their transfer packages. The sender is judged on the packages: valid (XFER-001),
faithful to its own API (XFER-002), refused to practitioners (XFER-005), audited
(AUD-004). Each receiving side imports them and is judged on the import: the history
read back unchanged (XFER-003), broken packages refused (XFER-004), restricted notes
still restricted and the shielded child still shielded (XFER-005, -006), audited (AUD-004).

In a pair run children go both ways (target to peer, peer to target) and every verdict
is counted for the side that broke or kept the requirement; without a peer the target
imports its own packages. A receiver is judged on the sender's package only when that
package passed XFER-001 and XFER-002; otherwise on a package the harness builds from the
sender's API (:func:`conformance.checking.packages.harness_package`), so it is never
blamed for the sender.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from conformance.checking.checks import (
    RequirementFailure,
    check,
    describe,
    error_code,
    expect_status,
    fail,
    not_applicable,
    prerequisite_missing,
)
from conformance.checking.packages import EXPORT_FIELDS, MUTATIONS, harness_package, renamed
from conformance.checking.search_oracle import name_token, valid_nhs_number, valid_upn
from conformance.checking.world import PEER, TARGET, Practitioner, RunContext, Side, World
from conformance.domain.names import normalise_postcode
from conformance.suites.pairing import Sides, describe_side, directions_of, ics_sides, on_side, sides_of

XFER_001 = "ICS-1C-XFER-001"
XFER_002 = "ICS-1C-XFER-002"
XFER_003 = "ICS-1C-XFER-003"
XFER_004 = "ICS-1C-XFER-004"
XFER_005 = "ICS-1C-XFER-005"
XFER_006 = "ICS-1C-XFER-006"
AUD_004 = "ICS-1C-AUD-004"
KINDS = ("rich", "plain")
LISTED = ("aliases", "allocations", "referrals", "case_notes", "assessments", "visits")
CHILD_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "expected_date_of_birth",
    "gender",
    "date_of_death",
    "upn",
    "nhs_number",
    "postcode",
    "shielded",
)
_LONDON = ZoneInfo("Europe/London")

pytestmark = pytest.mark.xdist_group("ics-transfer")
__all__ = ["ics_sides"]  # the fixture, imported for this module


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sender" in metafunc.fixturenames:
        metafunc.parametrize("sender", sides_of(metafunc.config))
    if "receiver" in metafunc.fixturenames:
        metafunc.parametrize("receiver", sides_of(metafunc.config))
    if "direction" in metafunc.fixturenames:
        pairs = directions_of(metafunc.config)
        metafunc.parametrize("direction", pairs, ids=[f"{s}-to-{r}" for s, r in pairs])


def _today() -> date:
    return datetime.now(_LONDON).date()


def _stamp(value: Any) -> datetime | Any:
    """A timestamp as an aware datetime (so equal instants compare equal whatever their spelling)."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def _same(a: Any, b: Any, key: str) -> bool:
    """A value read back equals the package's, as ICS-1A-REC-001 compares a stored child:
    instants as instants, a postcode by its normalised value (its stored form is the
    system's choice), names after NFC normalisation (their form is the system's choice)."""
    if key in ("created_at", "updated_at"):
        return bool(_stamp(a) == _stamp(b))
    if key == "postcode" and isinstance(a, str) and isinstance(b, str):
        return normalise_postcode(a) == normalise_postcode(b)
    if key in ("given_name", "family_name") and isinstance(a, str) and isinstance(b, str):
        return unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b)
    return bool(a == b)


# -- the sending side ------------------------------------------------------------------------------


@dataclass
class Sent:
    """One child built on a sending side, what its API says of it, and its transfer package."""

    side: Side
    kind: str
    api: dict[str, Any] = field(default_factory=dict)  # child + LISTED, as an admin reads them
    practitioners: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> name, role (harness-provisioned)
    taken_by: Practitioner | None = None
    response: httpx.Response | None = None
    path: Path | None = None
    report: Any = None  # conformance.export.transfer.TransferReport
    package: Any = None  # conformance.export.transfer.Package
    setup_failure: RequirementFailure | None = None

    @property
    def child_id(self) -> str:
        return str(self.api["child"]["id"])

    def usable(self) -> bool:
        """The sender's package passed XFER-001 and XFER-002 (a receiver may be judged on it)."""
        return self.report is not None and self.report.conformant and not faithful_problems(self)


def _json_list(world: World, path: str) -> list[dict[str, Any]]:
    body = expect_status(world.client.get(path, token=world.admin.token), 200, world.requirements, f"GET {path}")
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        fail(world.requirements, f"GET {path} is not {{items: [...]}}: {str(body)[:200]}")
    return [i for i in items if isinstance(i, dict)]


def api_snapshot(world: World, child_id: str) -> dict[str, Any]:
    """The child and its records as an admin of ``world``'s side reads them."""
    child = expect_status(
        world.client.get(f"/children/{child_id}", token=world.admin.token), 200, world.requirements, "read the child"
    )
    out: dict[str, Any] = {"child": child}
    for record_type, path in (
        ("aliases", "aliases"),
        ("allocations", "allocations"),
        ("referrals", "referrals"),
        ("case_notes", "case-notes"),
        ("assessments", "assessments"),
    ):
        out[record_type] = _json_list(world, f"/children/{child_id}/{path}")
    out["visits"] = [v for a in out["assessments"] for v in (a.get("visits") or []) if isinstance(v, dict)]
    return out


def _seed_rich(world: World, side: Side) -> tuple[str, dict[str, dict[str, str]]]:
    """A shielded (when declared) child with a full history; returns its ID and the practitioners involved."""
    worker = world.practitioner("practitioner", fresh=True)
    colleague = world.practitioner("practitioner", fresh=True)
    shielded = side.has("shielded_records")
    child = world.child(
        worker,
        given_name="Zoë",
        family_name=f"Transferred-{name_token()}",
        date_of_birth="2002-06-17",
        gender="female",
        upn=valid_upn(),
        nhs_number=valid_nhs_number(),
        postcode="sw1a 1aa",
        shielded=True if shielded else None,
    )
    cid = str(child["id"])
    world.allocate(cid, worker, start_date="2008-01-02")
    ended = world.allocate(cid, colleague, start_date="2008-01-02")
    world.end_allocation(str(ended["id"]), end_date="2008-02-01")
    world.alias(cid, "Zoe", f"Previous-{name_token()}", "previous", actor=worker)
    world.alias(cid, "Zed", f"Known-{name_token()}", "known_as", actor=worker)
    referral = world.referral(cid, "2008-01-07", source="school", reason="Bruising noticed at school", actor=worker)
    first = world.assessment(cid, "2008-01-08", kind="initial", referral_id=str(referral["id"]), actor=worker)
    seen_alone = side.has("seen_alone")
    visits: list[dict[str, Any]] = [
        {"visit_date": "2008-01-09", "child_seen": True}
        | ({"seen_alone": False, "not_seen_alone_reason": "Mother would not leave the room"} if seen_alone else {}),
        {"visit_date": "2008-01-10", "child_seen": True} | ({"seen_alone": True} if seen_alone else {}),
        {"visit_date": "2008-01-11", "child_seen": False},
    ]
    for body in visits:
        expect_status(
            world.client.post(f"/assessments/{first['id']}/visits", token=worker.token, json=body),
            201,
            world.requirements,
            f"record a visit {body}",
        )
    expect_status(
        world.client.post(
            f"/assessments/{first['id']}/complete",
            token=worker.token,
            json={"completed_on": "2008-01-14", "authorised_by": "Team manager"},
        ),
        200,
        world.requirements,
        "complete the assessment",
    )
    second = world.assessment(cid, "2008-02-04", kind="core", actor=worker)
    expect_status(world.visit(str(second["id"]), "2008-02-05", actor=worker), 201, world.requirements, "record a visit")
    world.case_note(cid, worker, "Home visit: the flat was cold; food in the cupboards.")
    restricted = side.has("restricted_notes")
    world.case_note(cid, worker, "Disclosure by the child about her stepfather.", restricted=restricted)
    people = {p.id: {"name": p.name, "role": p.role} for p in (worker, colleague)}
    return cid, people


def _seed_plain(world: World, side: Side) -> tuple[str, dict[str, dict[str, str]]]:
    """A child with no history (unborn when declared)."""
    fields: dict[str, Any] = {"given_name": "Baby", "family_name": f"Plain-{name_token()}", "gender": "not_known"}
    if side.has("unborn_children"):
        fields["expected_date_of_birth"] = "2009-03-01"
    else:
        fields["date_of_birth"] = "2008-03-01"
    child = world.child(world.practitioner("practitioner"), **fields)
    return str(child["id"]), {}


@dataclass
class Received:
    """One package imported by a receiving side."""

    sent: Sent
    receiver: Side
    via: str  # "sender" (its own package) or "harness" (the sender's failed XFER-001/002)
    package: Any  # conformance.export.transfer.Package: what was imported
    imported_by: Practitioner
    response: httpx.Response
    days: tuple[date, date]  # the receiver's possible import dates (London "today" before and after)

    @property
    def transfer(self) -> dict[str, Any] | None:
        body = _body(self.response)
        return body if self.response.status_code == 201 and isinstance(body, dict) else None

    def note(self) -> str:
        if self.via == "harness":
            return " (the sender's own package failed XFER-001/002, so a package built from its API was imported)"
        return ""


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class TransferRun:
    """Everything the transfer checks judge, built once per session and side (lazily)."""

    def __init__(self, sides: Sides, context: RunContext, work: Path) -> None:
        self.sides, self.context, self.work = sides, context, work
        self._sent: dict[tuple[str, str], Sent] = {}
        self._received: dict[tuple[str, str, str], Received] = {}

    def sent(self, side_name: str, kind: str) -> Sent:
        key = (side_name, kind)
        if key not in self._sent:
            self._sent[key] = self._send(side_name, kind)
        return self._sent[key]

    def _send(self, side_name: str, kind: str) -> Sent:
        from conformance.export.transfer import read_package, validate_transfer

        side = self.sides.side(side_name)
        world = self.sides.world(side_name, XFER_002)
        sent = Sent(side, kind)
        try:
            cid, people = (_seed_rich if kind == "rich" else _seed_plain)(world, side)
            sent.practitioners = people
            sent.api = api_snapshot(world, cid)
        except RequirementFailure as failure:
            sent.setup_failure = failure
            return sent
        manager = world.practitioner("manager", fresh=True)
        sent.taken_by = manager
        response = world.client.get(f"/children/{cid}/transfer-package", token=manager.token)
        sent.response = response
        if response.status_code == 200 and response.content:
            path = self.work / f"{side_name}-{kind}-{secrets.token_hex(4)}.zip"
            path.write_bytes(response.content)
            sent.path = path
            sent.report = validate_transfer(path, chronology_required=side.has("chronology_export"))
            try:
                sent.package = read_package(path)
            except Exception:  # unreadable: XFER-001 says why
                sent.package = None
        return sent

    def received(self, sender: str, receiver: str, kind: str) -> Received:
        key = (sender, receiver, kind)
        if key not in self._received:
            self._received[key] = self._receive(self.sent(sender, kind), receiver)
        return self._received[key]

    def good_package(self, sent: Sent) -> tuple[str, bytes]:
        """The package a receiver is judged on: the sender's when it passed XFER-001/002, else the harness's."""
        if sent.usable() and sent.response is not None:
            return "sender", sent.response.content
        council = sent.side.council
        return "harness", harness_package(
            council, sent.api, sent.practitioners, chronology=sent.side.has("chronology_export")
        )

    def _receive(self, sent: Sent, receiver_name: str) -> Received:
        from conformance.export.transfer import read_package

        if sent.setup_failure is not None:
            prerequisite_missing(
                f"the sending side ({sent.side.label}) could not build the {sent.kind} child: {sent.setup_failure}"
            )
        via, data = self.good_package(sent)
        path = self.work / f"import-{receiver_name}-{secrets.token_hex(4)}.zip"
        path.write_bytes(data)
        package = read_package(path)
        world = self.sides.world(receiver_name, XFER_003)
        manager = world.practitioner("manager", fresh=True)
        before = _today()
        response = world.client.post(
            "/transfers", token=manager.token, content=data, headers={"Content-Type": "application/zip"}
        )
        return Received(sent, self.sides.side(receiver_name), via, package, manager, response, (before, _today()))


@pytest.fixture(scope="session")
def transfer_run(
    ics_sides: Sides, ics_context: RunContext, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TransferRun]:
    yield TransferRun(ics_sides, ics_context, tmp_path_factory.mktemp("transfers"))


def _declared(context: RunContext, *sides: str) -> None:
    for name in sides:
        if not context.side(name).has("inter_council_transfer"):
            not_applicable(f"the {describe_side(context, name)} does not declare the inter_council_transfer capability")


def _sent(run: TransferRun, side: str, kind: str) -> Sent:
    sent = run.sent(side, kind)
    if sent.setup_failure is not None:
        prerequisite_missing(f"could not build the {kind} child on the {sent.side.label}: {sent.setup_failure}")
    return sent


# -- XFER-001 / XFER-002: the package sent -------------------------------------------------------------


@check(XFER_001, kind="export")
def test_transfer_package_valid(
    sender: str, transfer_run: TransferRun, ics_context: RunContext, request: pytest.FixtureRequest
) -> None:
    """XFER-001: a manager's GET /children/{id}/transfer-package of a rich and a plain child answers
    200 with a package that passes the package rules and the export rules (the harness's validator)."""
    on_side(request, ics_context, sender)
    _declared(ics_context, sender)
    who = describe_side(ics_context, sender)
    problems = []
    for kind in KINDS:
        sent = _sent(transfer_run, sender, kind)
        response = sent.response
        if response is None or response.status_code != 200:
            problems.append(f"{kind} child: no package ({describe(response) if response is not None else 'no answer'})")
            continue
        if sent.report.errors and not sent.report.count():
            raise RuntimeError(f"the package rules could not run: {'; '.join(sent.report.errors)}")
        if not sent.report.conformant:
            problems.append(f"{kind} child: {sent.report.summary()}")
    if problems:
        fail(XFER_001, f"{who}: " + "\n".join(problems))


def faithful_problems(sent: Sent) -> list[str]:
    """Where the package departs from what the sender's API gives an admin (XFER-002)."""
    if sent.package is None:
        return ["the package could not be read"]
    problems: list[str] = []
    files = sent.package.records
    children = files.get("children") or []
    mine = [c for c in children if c.get("id") == sent.child_id]
    if not mine:
        problems.append(f"children.jsonl does not hold the child {sent.child_id!r}")
    else:
        child = mine[0]
        for key in EXPORT_FIELDS["children"]:
            if key in sent.api["child"] and not _same(child.get(key), sent.api["child"][key], key):
                problems.append(f"child {key}: package {child.get(key)!r}, API {sent.api['child'][key]!r}")
    for record_type in LISTED:
        packaged = {r.get("id"): r for r in files.get(record_type) or []}
        for record in sent.api[record_type]:
            got = packaged.get(record.get("id"))
            if got is None:
                problems.append(f"{record_type} {record.get('id')!r} missing from the package")
                continue
            for key in EXPORT_FIELDS[record_type]:
                if key in record and not _same(got.get(key), record[key], key):
                    problems.append(
                        f"{record_type} {record.get('id')!r} {key}: package {got.get(key)!r}, API {record[key]!r}"
                    )
    return problems


@check(XFER_002, kind="scenario")
def test_transfer_package_faithful(
    sender: str, transfer_run: TransferRun, ics_context: RunContext, request: pytest.FixtureRequest
) -> None:
    """XFER-002: the package holds the child record and every alias, allocation (current and
    ended), referral, case note (restricted ones with text and flag), assessment and visit the
    API gives an admin, with the same values."""
    on_side(request, ics_context, sender)
    _declared(ics_context, sender)
    problems = []
    for kind in KINDS:
        sent = _sent(transfer_run, sender, kind)
        if sent.response is None or sent.response.status_code != 200:
            prerequisite_missing(f"no package to compare ({XFER_001} failed)")
        problems += [f"{kind} child: {p}" for p in faithful_problems(sent)]
    if problems:
        fail(
            XFER_002,
            f"{describe_side(ics_context, sender)}: package departs from the API:\n" + "\n".join(problems[:20]),
        )


@check(XFER_005, kind="scenario")
def test_transfer_package_refused_to_practitioners(
    sender: str, transfer_run: TransferRun, ics_sides: Sides, ics_context: RunContext, request: pytest.FixtureRequest
) -> None:
    """XFER-005 (sending side): a practitioner and a read_only user asking for a package get 403 FORBIDDEN."""
    on_side(request, ics_context, sender)
    _declared(ics_context, sender)
    sent = _sent(transfer_run, sender, "rich")
    world = ics_sides.world(sender, XFER_005)
    for role in ("practitioner", "read_only"):
        who = world.practitioner(role, fresh=True)
        response = world.client.get(f"/children/{sent.child_id}/transfer-package", token=who.token)
        if response.status_code != 403 or error_code(response) != "FORBIDDEN":
            fail(
                XFER_005,
                f"{describe_side(ics_context, sender)}: a {role} asking for a transfer package (it carries restricted "
                f"notes' text) must get 403 FORBIDDEN, got {describe(response, 120)}",
            )


def _audit_entries(world: World, child_id: str) -> list[dict[str, Any]]:
    manager = world.practitioner("manager")
    entries: list[dict[str, Any]] = []
    for body in world.pages("/audit", manager, {"child_id": child_id}):
        entries.extend(e for e in body["items"] if isinstance(e, dict))
    return entries


@check(AUD_004, kind="scenario")
def test_transfer_out_audited(
    sender: str, transfer_run: TransferRun, ics_sides: Sides, ics_context: RunContext, request: pytest.FixtureRequest
) -> None:
    """AUD-004 (sending side): producing a package writes an entry naming the manager, the child and transfer_out."""
    on_side(request, ics_context, sender)
    _declared(ics_context, sender)
    if not ics_context.side(sender).has("audit"):
        not_applicable(f"the {describe_side(ics_context, sender)} does not declare the audit capability")
    sent = _sent(transfer_run, sender, "rich")
    if sent.response is None or sent.response.status_code != 200 or sent.taken_by is None:
        prerequisite_missing(f"no package was produced ({XFER_001} failed)")
    entries = _audit_entries(ics_sides.world(sender, AUD_004), sent.child_id)
    hits = [
        e
        for e in entries
        if e.get("action") == "transfer_out"
        and str(e.get("practitioner_id")) == sent.taken_by.id
        and str(e.get("child_id")) == sent.child_id
    ]
    if not hits:
        shown = [(e.get("practitioner_id"), e.get("action")) for e in entries][:10]
        fail(
            AUD_004,
            f"{describe_side(ics_context, sender)}: no audit entry (transfer_out) names manager {sent.taken_by.id} "
            f"taking child {sent.child_id}'s package; the child's entries: {shown}",
        )


# -- XFER-003..006, AUD-004: the receiving side ---------------------------------------------------------


def _received(run: TransferRun, direction: tuple[str, str], kind: str) -> Received:
    sender, receiver = direction
    return run.received(sender, receiver, kind)


def _transfer_or_fail(received: Received, requirement: str, context: RunContext) -> dict[str, Any]:
    transfer = received.transfer
    if transfer is None:
        fail(
            requirement,
            f"{describe_side(context, received.receiver.name)}: importing a valid {received.sent.kind} package "
            f"was refused{received.note()}: {describe(received.response)}",
        )
    return transfer


def import_problems(received: Received, world: World) -> list[str]:
    """Where the import departs from the package it was given (XFER-003)."""
    transfer = received.transfer
    assert transfer is not None
    problems: list[str] = []
    package = received.package
    files = package.records
    source = package.manifest.get("source") or {}
    for key in ("id", "child_id", "source", "records"):
        if key not in transfer:
            problems.append(f"the transfer record has no {key}")
    if problems:
        return problems
    records = transfer["records"] if isinstance(transfer["records"], dict) else {}
    got_source = transfer["source"] if isinstance(transfer["source"], dict) else {}
    for key in ("council", "child_id", "local_id"):
        if got_source.get(key) != source.get(key):
            problems.append(f"transfer source.{key} is {got_source.get(key)!r}, the manifest says {source.get(key)!r}")
    again = world.client.get(f"/transfers/{transfer['id']}", token=world.admin.token)
    if again.status_code != 200:
        problems.append(f"GET /transfers/{transfer['id']} -> {describe(again, 120)}")
    else:
        body = _body(again) or {}
        for key in ("id", "child_id", "source", "records"):
            if body.get(key) != transfer.get(key):
                problems.append(f"GET /transfers/{{id}} gives another {key}: {str(body.get(key))[:120]}")
    child = files["children"][0]
    new_id = str(transfer["child_id"])
    if received.sent.side.name == received.receiver.name and new_id == child["id"]:
        problems.append("the import did not create a new child: it answered with the sending child's own ID")
    if (records.get("children") or {}).get(child["id"]) != new_id:
        problems.append(f"records.children does not map {child['id']!r} to the new child {new_id!r}")
    try:
        local = api_snapshot(world, new_id)
    except RequirementFailure as failure:
        return problems + [f"the imported child cannot be read back: {failure.message}"]
    for key in CHILD_FIELDS:
        if not _same(local["child"].get(key), child.get(key), key):
            problems.append(f"child {key}: read back {local['child'].get(key)!r}, package {child.get(key)!r}")
    mapped_people = records.get("practitioners") or {}
    for practitioner in files.get("practitioners") or []:
        if practitioner["id"] not in mapped_people:
            problems.append(f"records.practitioners does not map the package's practitioner {practitioner['id']!r}")

    def mapped(record_type: str, source_id: Any) -> Any:
        return (records.get(record_type) or {}).get(source_id) if source_id is not None else None

    references = {
        "assessments": {"referral_id": "referrals"},
        "visits": {"assessment_id": "assessments", "recorded_by": "practitioners"},
        "case_notes": {"author_id": "practitioners"},
        "allocations": {"practitioner_id": "practitioners"},
    }
    for record_type in LISTED:
        by_id = {r.get("id"): r for r in local[record_type]}
        for record in files.get(record_type) or []:
            local_id = mapped(record_type, record["id"])
            if local_id is None:
                problems.append(f"records.{record_type} does not map the package's {record['id']!r}")
                continue
            got = by_id.get(local_id)
            if got is None:
                problems.append(f"{record_type} {record['id']!r} (local {local_id!r}) does not read back")
                continue
            for key in EXPORT_FIELDS[record_type]:
                if key in ("id", "child_id") or key not in record:
                    continue
                want: Any = record[key]
                if key in references.get(record_type, {}):
                    want = mapped(references[record_type][key], record[key])
                if record_type == "allocations" and key == "end_date" and record[key] is None:
                    if got.get(key) not in {d.isoformat() for d in received.days}:
                        problems.append(
                            f"allocation {record['id']!r} open in the package reads back end_date {got.get(key)!r}, "
                            f"not the import date {received.days[-1].isoformat()}"
                        )
                    continue
                if not _same(got.get(key), want, key):
                    problems.append(
                        f"{record_type} {record['id']!r} {key}: read back {got.get(key)!r}, expected {want!r}"
                    )
    return problems


@check(XFER_003, kind="scenario")
def test_transfer_imported(
    direction: tuple[str, str],
    transfer_run: TransferRun,
    ics_sides: Sides,
    ics_context: RunContext,
    request: pytest.FixtureRequest,
) -> None:
    """XFER-003: a manager's POST /transfers of a valid package answers 201 with the transfer record;
    the new child, and each of its aliases, referrals, assessments, visits, case notes and
    allocations, reads back with the package's values, mapped by ``records``; open allocations
    end on the import date; GET /transfers/{id} gives the same record."""
    sender, receiver = direction
    on_side(request, ics_context, receiver)
    _declared(ics_context, sender, receiver)
    world = ics_sides.world(receiver, XFER_003)
    problems = []
    for kind in KINDS:
        received = _received(transfer_run, direction, kind)
        _transfer_or_fail(received, XFER_003, ics_context)
        problems += [f"{kind} child{received.note()}: {p}" for p in import_problems(received, world)]
    if problems:
        fail(
            XFER_003,
            f"{describe_side(ics_context, receiver)} importing from the {describe_side(ics_context, sender)}:\n"
            + "\n".join(problems[:20]),
        )


@check(XFER_004, kind="scenario")
def test_invalid_package_refused(
    receiver: str, transfer_run: TransferRun, ics_sides: Sides, ics_context: RunContext, request: pytest.FixtureRequest
) -> None:
    """XFER-004: each of ten broken copies of a valid package (not a zip, no manifest, a sha256
    mismatch, a duplicate ID, a dangling reference, a seen visit before the start, a wrong UPN
    check letter, an unseen completion, a second child, another child's record) is refused 422
    INVALID_TRANSFER_PACKAGE, and no child or alias of it can be found afterwards."""
    from conformance.export.transfer import read_package

    on_side(request, ics_context, receiver)
    _declared(ics_context, receiver)
    sender = receiver if not ics_context.paired else (PEER if receiver == TARGET else TARGET)
    sent = _sent(transfer_run, sender, "rich")
    via, data = transfer_run.good_package(sent)
    path = transfer_run.work / f"base-{secrets.token_hex(4)}.zip"
    path.write_bytes(data)
    base = read_package(path)
    world = ics_sides.world(receiver, XFER_004)
    manager = world.practitioner("manager", fresh=True)
    problems = []
    for mutation in MUTATIONS:
        family = f"Refused-{name_token()}"
        files = renamed(base.records, family)
        body = mutation.apply(dict(base.manifest), files)
        if body is None:
            continue
        response = world.client.post(
            "/transfers", token=manager.token, content=body, headers={"Content-Type": "application/zip"}
        )
        if response.status_code != 422 or error_code(response) != "INVALID_TRANSFER_PACKAGE":
            problems.append(
                f"{mutation.description}: expected 422 INVALID_TRANSFER_PACKAGE, got {describe(response, 160)}"
            )
        found = world.search(world.admin, family_name=family, include_deceased="true")
        if found:
            problems.append(f"{mutation.description}: {len(found)} child(ren) named {family} stored after the refusal")
    if problems:
        fail(XFER_004, f"{describe_side(ics_context, receiver)}:\n" + "\n".join(problems))


@check(XFER_005, kind="scenario")
def test_restricted_notes_stay_restricted(
    direction: tuple[str, str],
    transfer_run: TransferRun,
    ics_sides: Sides,
    ics_context: RunContext,
    request: pytest.FixtureRequest,
) -> None:
    """XFER-005 (receiving side): an imported restricted note reads back restricted with text null to a
    practitioner and to a read_only user, and with its text to a manager, each of them allocated to the
    new child (shielding cannot stand in the way); and with text null to a practitioner and a read_only
    user not allocated, unless the child is shielded there and its notes are hidden from them (404
    or 403: whether shielding hides a shielded child's sub-resources is the system's choice, and
    ICS-1C-SHLD-001 and ICS-1B-SRCH-011 name no exception for managers)."""
    sender, receiver = direction
    on_side(request, ics_context, receiver)
    _declared(ics_context, sender, receiver)
    received = _received(transfer_run, direction, "rich")
    restricted = [n for n in received.package.records.get("case_notes") or [] if n.get("restricted") is True]
    if not restricted:
        not_applicable("the package holds no restricted note (the sender does not declare restricted_notes)")
    transfer = _transfer_or_fail(received, XFER_005, ics_context)
    world = ics_sides.world(receiver, XFER_005)
    new_id = str(transfer["child_id"])
    mapping = (transfer.get("records") or {}).get("case_notes") or {}
    shielded = received.package.records["children"][0].get("shielded") is True and ics_context.side(receiver).has(
        "shielded_records"
    )
    allocated = [
        ("an allocated practitioner", world.practitioner("practitioner", fresh=True), False, False),
        ("an allocated read_only user", world.practitioner("read_only", fresh=True), False, False),
        ("an allocated manager", world.practitioner("manager", fresh=True), True, False),
    ]
    for _label, who, _sees, _may_hide in allocated:
        world.allocate(new_id, who)
    outside = [
        ("a practitioner not allocated", world.practitioner("practitioner", fresh=True), False, shielded),
        ("a read_only user not allocated", world.practitioner("read_only", fresh=True), False, shielded),
    ]
    problems = []
    for label, who, sees, may_hide in allocated + outside:
        response = world.client.get(f"/children/{new_id}/case-notes", token=who.token)
        if may_hide and response.status_code in (403, 404):
            continue  # the shielded child's notes are hidden from this reader: nothing disclosed
        notes = {n.get("id"): n for n in _notes(world, response)}
        for note in restricted:
            got = notes.get(mapping.get(note["id"]))
            if got is None:
                problems.append(f"{label} does not find the imported restricted note {note['id']!r}")
                continue
            if got.get("restricted") is not True:
                problems.append(
                    f"the imported restricted note reads back restricted={got.get('restricted')!r} to {label}"
                )
            if sees and got.get("text") != note["text"]:
                problems.append(f"{label} reads the imported restricted note's text as {got.get('text')!r}")
            if not sees and got.get("text") is not None:
                problems.append(f"{label} reads the imported restricted note's text: {str(got.get('text'))[:60]!r}")
    if problems:
        fail(XFER_005, f"{describe_side(ics_context, receiver)}{received.note()}:\n" + "\n".join(problems))


def _notes(world: World, response: httpx.Response) -> list[dict[str, Any]]:
    """The items of a ``GET /children/{id}/case-notes`` answer (200 required)."""
    body = expect_status(response, 200, world.requirements, "read notes")
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        fail(world.requirements, f"GET case-notes is not {{items: [...]}}: {str(body)[:200]}")
    return [n for n in items if isinstance(n, dict)]


@check(XFER_006, kind="scenario")
def test_shielded_child_stays_shielded(
    direction: tuple[str, str],
    transfer_run: TransferRun,
    ics_sides: Sides,
    ics_context: RunContext,
    request: pytest.FixtureRequest,
) -> None:
    """XFER-006: an imported shielded child is 404 NOT_FOUND and not in search to a practitioner and a
    read_only user of the receiver not allocated to it; once a manager allocates the practitioner, it reads."""
    sender, receiver = direction
    on_side(request, ics_context, receiver)
    _declared(ics_context, sender, receiver)
    if not ics_context.side(receiver).has("shielded_records"):
        not_applicable(f"the {describe_side(ics_context, receiver)} does not declare shielded_records")
    received = _received(transfer_run, direction, "rich")
    child = received.package.records["children"][0]
    if child.get("shielded") is not True:
        not_applicable("the package's child is not shielded (the sender does not declare shielded_records)")
    transfer = _transfer_or_fail(received, XFER_006, ics_context)
    world = ics_sides.world(receiver, XFER_006)
    new_id = str(transfer["child_id"])
    problems = []
    worker = world.practitioner("practitioner", fresh=True)
    reader = world.practitioner("read_only", fresh=True)
    for label, who in (("a practitioner not allocated", worker), ("a read_only user", reader)):
        response = world.client.get(f"/children/{new_id}", token=who.token)
        if response.status_code != 404 or error_code(response) != "NOT_FOUND":
            problems.append(
                f"{label} reading the imported shielded child got {describe(response, 120)}, not 404 NOT_FOUND"
            )
        found = [c for c in world.search(who, family_name=child["family_name"]) if str(c.get("id")) == new_id]
        if found:
            problems.append(f"search by {label} returns the imported shielded child")
    world.allocate(new_id, worker)
    allowed = world.client.get(f"/children/{new_id}", token=worker.token)
    if allowed.status_code != 200:
        problems.append(
            f"once allocated, the practitioner still cannot read the imported child: {describe(allowed, 120)}"
        )
    if problems:
        fail(XFER_006, f"{describe_side(ics_context, receiver)}{received.note()}:\n" + "\n".join(problems))


@check(AUD_004, kind="scenario")
def test_transfer_in_audited(
    direction: tuple[str, str],
    transfer_run: TransferRun,
    ics_sides: Sides,
    ics_context: RunContext,
    request: pytest.FixtureRequest,
) -> None:
    """AUD-004 (receiving side): an import writes an entry naming the importing manager, the new child and transfer_in."""
    sender, receiver = direction
    on_side(request, ics_context, receiver)
    _declared(ics_context, sender, receiver)
    if not ics_context.side(receiver).has("audit"):
        not_applicable(f"the {describe_side(ics_context, receiver)} does not declare the audit capability")
    received = _received(transfer_run, direction, "rich")
    transfer = received.transfer
    if transfer is None:
        prerequisite_missing(f"the import was refused ({XFER_003} failed)")
    new_id = str(transfer.get("child_id"))
    entries = _audit_entries(ics_sides.world(receiver, AUD_004), new_id)
    hits = [
        e
        for e in entries
        if e.get("action") == "transfer_in"
        and str(e.get("practitioner_id")) == received.imported_by.id
        and str(e.get("child_id")) == new_id
    ]
    if not hits:
        shown = [(e.get("practitioner_id"), e.get("action")) for e in entries][:10]
        fail(
            AUD_004,
            f"{describe_side(ics_context, receiver)}: no audit entry (transfer_in) names manager "
            f"{received.imported_by.id} importing child {new_id}; its entries: {shown}",
        )


def warm_up() -> None:
    """Import the export validator before checks start on several threads (``conformance.plugin.lanes``)."""
    import conformance.export.transfer  # noqa: F401  (numpy, the validator)
