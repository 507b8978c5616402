"""Reconciliation of an export with the records created through the API (ICS-1A-EXP-009)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from conformance.export import ExpectedRecords, generate_export, reconcile, validate_export


def _records(export: Path, record_type: str) -> list[dict]:
    return [orjson.loads(x) for x in (export / f"{record_type}.jsonl").read_bytes().splitlines()]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return generate_export(tmp_path_factory.mktemp("rec") / "export", children=60, seed=11)


def _expected(export: Path) -> ExpectedRecords:
    children = _records(export, "children")[5:15]
    ids = {c["id"] for c in children}
    assessments = [a for a in _records(export, "assessments") if a["child_id"] in ids]
    aids = {a["id"] for a in assessments}
    return ExpectedRecords(
        children=[
            {k: c[k] for k in ("id", "local_id", "given_name", "family_name", "upn", "nhs_number")} for c in children
        ],
        aliases=[a for a in _records(export, "aliases") if a["child_id"] in ids],
        allocations=[a for a in _records(export, "allocations") if a["child_id"] in ids],
        assessments=assessments,
        seen_visits=[v for v in _records(export, "visits") if v["assessment_id"] in aids and v["child_seen"]],
    )


def test_harness_records_found_unchanged(export):
    expected = _expected(export)
    assert expected.aliases and expected.seen_visits
    assert reconcile(export, expected) == []
    assert reconcile(validate_export(export), expected) == []  # a report works too


def test_differences_and_missing_records_are_findings(export):
    expected = _expected(export)
    child = dict(expected.children[0], given_name="Zoë-Renée", upn=None if expected.children[0]["upn"] else "A123")
    spaced_nhs = dict(expected.children[1])
    if spaced_nhs["nhs_number"]:
        n = spaced_nhs["nhs_number"]
        spaced_nhs["nhs_number"] = f"{n[:3]} {n[3:6]} {n[6:]}"  # spaces are not a difference
    ghost_visit = {"id": "V-ghost", "assessment_id": expected.assessments[0]["id"], "visit_date": "2008-01-01"}
    changed_alloc = dict(expected.allocations[0], end_date="2008-09-01")
    findings = reconcile(
        export,
        ExpectedRecords(
            children=[child, spaced_nhs, *expected.children[2:]],
            aliases=expected.aliases,
            allocations=[changed_alloc, *expected.allocations[1:]],
            assessments=expected.assessments,
            seen_visits=[*expected.seen_visits, ghost_visit],
        ),
    )
    assert all(f.requirement == "ICS-1A-EXP-009" for f in findings)
    text = [str(f) for f in findings]
    assert any(f.file == "children.jsonl" and f.pointer == "/given_name" and f.line for f in findings), text
    assert any(f.pointer == "/upn" for f in findings), text
    assert not any(f.pointer == "/nhs_number" for f in findings), text
    assert any(f.file == "allocations.jsonl" and f.pointer == "/end_date" for f in findings), text
    assert any(f.file == "visits.jsonl" and "V-ghost" in f.message and "missing" in f.message for f in findings), text


def test_seen_visit_exported_as_not_seen(export, tmp_path):
    expected = _expected(export)
    visit = expected.seen_visits[0]
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in export.iterdir():
        data = f.read_bytes()
        if f.name == "visits.jsonl":
            old = orjson.dumps({k: visit[k] for k in ("id", "assessment_id", "visit_date", "child_seen")})[:-1]
            data = data.replace(old, old.replace(b'"child_seen":true', b'"child_seen":false'), 1)
        (copy / f.name).write_bytes(data)
    findings = reconcile(copy, ExpectedRecords(seen_visits=[visit]))
    assert [f.pointer for f in findings] == ["/child_seen"]
