"""Phase 1C export rules: the chronology oracle, the audit and chronology rules, transfer packages.

Every broken package the XFER-004 check sends is itself judged invalid by the package
rules (so a receiver that accepts one is truly wrong), and each rule's boundary is pinned
on a small hand-made export.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from conformance.checking.packages import MUTATIONS, package_records, renamed, write_package
from conformance.domain import identifiers
from conformance.domain.chronology import derive_events, order_key
from conformance.export import validate_export
from conformance.export.extensions import declared_capabilities, validate_extensions
from conformance.export.transfer import read_package, validate_transfer
from conformance.results.verdicts import Verdict

CHILD = "c-1"
BODY = "801000000123"
UPN = identifiers.upn_check_letter(BODY) + BODY
PEOPLE = {"p-1": {"name": "Pat Worker", "role": "practitioner"}, "p-2": {"name": "Max Manager", "role": "manager"}}


def _api() -> dict[str, Any]:
    """What a sender's API gives for a child with a small history (the shape of the transfer checks' snapshot)."""
    child = {
        "id": CHILD,
        "local_id": "L-1",
        "given_name": "Zoë",
        "family_name": "Smith",
        "date_of_birth": "2002-06-17",
        "expected_date_of_birth": None,
        "gender": "female",
        "date_of_death": None,
        "upn": UPN,
        "nhs_number": None,
        "postcode": "SW1A 1AA",
        "shielded": True,
        "created_at": "2008-01-02T10:00:00Z",
        "updated_at": "2008-01-02T10:00:00Z",
    }
    assessment = {
        "id": "as-1",
        "child_id": CHILD,
        "referral_id": "r-1",
        "type": "initial",
        "start_date": "2008-01-08",
        "due_date": "2008-01-17",
        "status": "completed",
        "completed_on": "2008-01-14",
        "authorised_by": None,
        "overdue": False,
        "visits": [],
    }
    visits = [
        {
            "id": "v-1",
            "assessment_id": "as-1",
            "visit_date": "2008-01-09",
            "child_seen": True,
            "seen_alone": False,
            "not_seen_alone_reason": "Carer present",
            "recorded_by": "p-1",
        },
        {
            "id": "v-2",
            "assessment_id": "as-1",
            "visit_date": "2008-01-10",
            "child_seen": False,
            "seen_alone": None,
            "recorded_by": "p-1",
        },
    ]
    return {
        "child": child,
        "aliases": [{"id": "al-1", "child_id": CHILD, "given_name": "Zoe", "family_name": "Jones", "type": "previous"}],
        "allocations": [
            {"id": "a-1", "child_id": CHILD, "practitioner_id": "p-1", "start_date": "2008-01-02", "end_date": None},
            {
                "id": "a-2",
                "child_id": CHILD,
                "practitioner_id": "p-2",
                "start_date": "2008-01-02",
                "end_date": "2008-02-01",
            },
        ],
        "referrals": [
            {"id": "r-1", "child_id": CHILD, "received_on": "2008-01-07", "source": "school", "reason": "Bruise"}
        ],
        "case_notes": [
            {
                "id": "n-1",
                "child_id": CHILD,
                "author_id": "p-1",
                "text": "Secret",
                "restricted": True,
                "created_at": "2008-01-09T11:00:00Z",
            }
        ],
        "assessments": [assessment],
        "visits": visits,
    }


def _package(tmp_path: Path, name: str = "package.zip", **change: Any) -> Path:
    files = package_records(_api(), PEOPLE)
    files["chronology"] = [
        e.to_json()
        for e in derive_events(
            referrals=files["referrals"],
            assessments=files["assessments"],
            visits=files["visits"],
            allocations=files["allocations"],
        )
    ]
    files.update(change)
    head = {
        "kind": "transfer",
        "spec_version": "2008.2",
        "generated_at": "2008-09-30T12:00:00Z",
        "producer": {"supplier": "s", "product": "p", "version": "1"},
        "source": {"council": "Council A", "child_id": CHILD, "local_id": "L-1"},
    }
    path = tmp_path / name
    path.write_bytes(write_package(head, files))
    return path


def test_chronology_oracle_orders_ties_by_type_then_source() -> None:
    events = derive_events(
        referrals=[{"id": "r-1", "child_id": "c", "received_on": "2008-01-08"}],
        assessments=[
            {"id": "as-1", "child_id": "c", "start_date": "2008-01-08", "status": "open", "completed_on": None}
        ],
        visits=[
            {"id": "v-1", "assessment_id": "as-1", "visit_date": "2008-01-08", "child_seen": True},
            {"id": "v-0", "assessment_id": "as-1", "visit_date": "2008-01-08", "child_seen": False},
        ],
        allocations=[
            {"id": "a-2", "child_id": "c", "start_date": "2008-01-08", "end_date": None},
            {"id": "a-1", "child_id": "c", "start_date": "2008-01-08", "end_date": "2008-01-09"},
        ],
    )
    assert [(e.type, e.source_id) for e in events] == [
        ("allocation_started", "a-1"),
        ("allocation_started", "a-2"),
        ("assessment_started", "as-1"),
        ("child_seen", "v-1"),
        ("referral_received", "r-1"),
        ("allocation_ended", "a-1"),
    ]
    assert events == sorted(events, key=order_key)


def test_a_good_package_is_valid(tmp_path: Path) -> None:
    report = validate_transfer(_package(tmp_path), chronology_required=True)
    assert report.verdict() is Verdict.PASS, report.summary()
    package = read_package(tmp_path / "package.zip")
    assert package.child is not None and package.manifest["source"]["council"] == "Council A"


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_every_broken_package_the_checks_send_is_invalid(mutation: Any, tmp_path: Path) -> None:
    base = read_package(_package(tmp_path, "base.zip"))
    body = mutation.apply(dict(base.manifest), renamed(base.records, "Renamed"))
    assert body is not None, f"{mutation.name} does not apply to the sample package"
    path = tmp_path / "broken.zip"
    path.write_bytes(body)
    report = validate_transfer(path)
    assert report.verdict() is Verdict.FAIL, f"{mutation.name}: {report.summary()} {report.errors}"


def test_package_rules(tmp_path: Path) -> None:
    stranger = {"id": "p-9", "name": "Someone Else", "role": "admin"}
    extra = validate_transfer(
        _package(tmp_path, practitioners=[*package_records(_api(), PEOPLE)["practitioners"], stranger])
    )
    assert "referenced by no record" in extra.summary()
    missing = validate_transfer(_package(tmp_path, "no-chronology.zip", chronology=[]), chronology_required=True)
    assert missing.verdict() is Verdict.FAIL  # events missing from the chronology
    files = package_records(_api(), PEOPLE)
    head = {
        "kind": "transfer",
        "spec_version": "2008.2",
        "generated_at": "2008-09-30T12:00:00Z",
        "producer": {"supplier": "s", "product": "p", "version": "1"},
        "source": {"council": "A", "child_id": CHILD, "local_id": "L-1"},
    }
    (tmp_path / "no-chron.zip").write_bytes(write_package(head, files))
    assert (
        "holds no chronology.jsonl" in validate_transfer(tmp_path / "no-chron.zip", chronology_required=True).summary()
    )
    assert validate_transfer(tmp_path / "no-chron.zip").verdict() is Verdict.PASS
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    assert validate_transfer(tmp_path / "junk.zip").verdict() is Verdict.FAIL


def _export(tmp_path: Path, audit: list[dict[str, Any]], chronology: list[dict[str, Any]] | None) -> Path:
    """A bulk export: the sample child's records, an audit log and a chronology."""
    files: dict[str, list[Any]] = dict(package_records(_api(), PEOPLE))
    files["audit"] = audit
    if chronology is not None:
        files["chronology"] = chronology
    head = {
        "spec_version": "2008.2",
        "generated_at": "2008-09-30T12:00:00Z",
        "producer": {"supplier": "s", "product": "p", "version": "1"},
    }
    path = tmp_path / "export.zip"
    path.write_bytes(write_package(head, files))
    return path


def _events() -> list[dict[str, Any]]:
    files = package_records(_api(), PEOPLE)
    return [
        e.to_json()
        for e in derive_events(
            referrals=files["referrals"],
            assessments=files["assessments"],
            visits=files["visits"],
            allocations=files["allocations"],
        )
    ]


AUDIT = [
    {"id": "au-1", "at": "2008-01-02T10:00:00Z", "practitioner_id": "p-1", "child_id": CHILD, "action": "view"},
    {"id": "au-2", "at": "2008-01-02T10:01:00Z", "practitioner_id": "p-2", "child_id": None, "action": "search"},
]


def test_1c_export_passes_and_1a_rules_accept_its_extra_files(tmp_path: Path) -> None:
    path = _export(tmp_path, AUDIT, _events())
    report = validate_extensions(path, keep_for=[CHILD])
    assert {r: report.verdict(r).value for r in report.judged} == dict.fromkeys(report.judged, "PASS")
    assert [e["id"] for e in report.audit] == ["au-1"] and len(report.chronology) == len(_events())
    base = validate_export(path, phase="1C", workers=1)
    assert base.conformant, [str(f) for f in base.findings]
    assert declared_capabilities(path) == {"bulk_export": True, "audit": True, "chronology_export": True}


@pytest.mark.parametrize(
    ("audit", "chronology", "requirement", "words"),
    [
        ([{**AUDIT[0], "practitioner_id": "p-ghost"}], _events(), "ICS-1C-AUD-002", "not exported"),
        ([AUDIT[0], AUDIT[0]], _events(), "ICS-1C-AUD-002", "duplicate"),
        ([{**AUDIT[0], "action": "deleted"}], _events(), "ICS-1C-AUD-002", "is not one of"),
        (AUDIT, list(reversed(_events())), "ICS-1C-CHRON-001", "listed after"),
        (AUDIT, [e for e in _events() if e["type"] != "child_seen"], "ICS-1C-CHRON-001", "missing"),
        (AUDIT, _events() + _events()[:1], "ICS-1C-CHRON-001", "the records give"),
        (AUDIT, None, "ICS-1C-CHRON-001", "missing from the export"),
        (
            AUDIT,
            [{**e, "source_id": "as-1"} if e["type"] == "child_seen" else e for e in _events()],
            "ICS-1C-CHRON-003",
            "not in the export",
        ),
        (
            AUDIT,
            [{**e, "date": "2008-01-05"} if e["type"] == "referral_received" else e for e in _events()],
            "ICS-1C-CHRON-003",
            "has received_on",
        ),
    ],
)
def test_1c_export_rules_catch(
    audit: list[dict[str, Any]], chronology: list[dict[str, Any]] | None, requirement: str, words: str, tmp_path: Path
) -> None:
    report = validate_extensions(_export(tmp_path, audit, chronology))
    assert report.verdict(requirement) is Verdict.FAIL
    assert any(words in f.message for f in report.examples(requirement)), [str(f) for f in report.examples(requirement)]
    others = [r for r in report.judged if r != requirement and report.verdict(r) is not Verdict.PASS]
    if words == "has received_on":  # a moved date is also an event missing on its day (CHRON-001)
        others = [r for r in others if r != "ICS-1C-CHRON-001"]
    assert not others, others


def test_unlisted_extension_file_is_an_export_finding(tmp_path: Path) -> None:
    path = _export(tmp_path, AUDIT, _events())
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "manifest.json":
                manifest = json.loads(data)
                manifest["files"] = [f for f in manifest["files"] if f["path"] != "audit.jsonl"]
                data = json.dumps(manifest).encode()
            target.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    assert validate_export(path, workers=1).verdict("ICS-1A-EXP-002") is Verdict.FAIL
    assert any("not listed" in f.message for f in validate_extensions(path).examples("ICS-1C-AUD-002"))
