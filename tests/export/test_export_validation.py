"""Export validation: the issue's done-when, fixtures, rules, aggregation, verdicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest
from export_support import INVALID, VALID, run_cli

from conformance.export import EXPORT_REQUIREMENTS, validate_export
from conformance.export import validate as validate_module
from conformance.export.generate import generate_export, write_manifest
from conformance.results.verdicts import Verdict


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def _save(path: Path, records: list[dict]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def _verdicts(path: Path, **kw) -> dict[str, Verdict]:
    report = validate_export(path, **kw)
    return {r: report.verdict(r) for r in report.requirements}


def test_done_when_generated_2000_children_is_conformant(tmp_path, capsys):
    out = tmp_path / "gen"
    assert run_cli("fixtures", "generate", "--children", "2000", "--seed", "1", "--output", str(out)) == 0
    assert run_cli("validate-export", str(out), "--output", str(tmp_path / "reports")) == 0
    text = capsys.readouterr().out
    assert "CONFORMANT" in text and "FAIL" not in text
    if (tmp_path / "reports" / "result.json").exists():
        result = json.loads((tmp_path / "reports" / "result.json").read_text())
        assert result["verdict"] == "CERTIFIED", result["counts"]


@pytest.mark.parametrize("requirement", [r for r in EXPORT_REQUIREMENTS if r != "ICS-1A-EXP-001"])
def test_each_invalid_fixture_fails_exactly_its_requirement(requirement, tmp_path, capsys):
    fixture = INVALID / requirement
    verdicts = _verdicts(fixture)
    assert verdicts[requirement] is Verdict.FAIL
    assert {r for r, v in verdicts.items() if v is not Verdict.PASS} == {requirement}
    assert run_cli("validate-export", str(fixture), "--output", str(tmp_path)) == 1
    text = capsys.readouterr().out
    fail_lines = [line for line in text.splitlines() if line.strip().startswith("FAIL")]
    assert len(fail_lines) == 1 and requirement in fail_lines[0]
    example = text.split(fail_lines[0], 1)[1].splitlines()[1].strip()
    location = example.split()[0]
    file, _, line = location.partition(":")
    assert file.endswith((".jsonl", ".json")) and line.isdigit(), example


def test_valid_fixture_passes_and_fixtures_are_reproducible(tmp_path):
    assert all(v is Verdict.PASS for v in _verdicts(VALID).values())
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_fixtures", VALID.parent / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(tmp_path)
    for fresh in sorted(tmp_path.rglob("*.json*")):
        committed = VALID.parent / fresh.relative_to(tmp_path)
        assert committed.read_bytes() == fresh.read_bytes(), f"{committed} is stale: rerun fixtures/exports/build.py"


def test_generator_is_deterministic_and_zip_validates(tmp_path):
    a = generate_export(tmp_path / "a", children=30, seed=5)
    b = generate_export(tmp_path / "b", children=30, seed=5)
    for f in sorted(a.iterdir()):
        assert f.read_bytes() == (b / f.name).read_bytes()
    names = " ".join(c["family_name"] + c["given_name"] for c in _lines(a / "children.jsonl"))
    assert any(ord(ch) > 127 for ch in names) or "'" in names or "-" in names
    z = generate_export(tmp_path / "c.zip", children=30, seed=5, zip=True)
    assert all(v is Verdict.PASS for v in _verdicts(z).values())


def test_format_checking_rejects_impossible_date(export_dir):
    children = _lines(export_dir / "children.jsonl")
    children[0]["created_at"] = "2015-02-30T10:00:00Z"
    children[1]["date_of_birth"], children[1]["expected_date_of_birth"] = "2015-02-30", None
    _save(export_dir / "children.jsonl", children)
    write_manifest(export_dir)
    report = validate_export(export_dir)
    assert report.count("ICS-1A-EXP-003") == 2
    pointers = {(f.line, f.pointer) for f in report.examples("ICS-1A-EXP-003")}
    assert pointers == {(1, "/created_at"), (2, "/date_of_birth")}


def test_completed_assessment_without_seen_visit(export_dir):
    visits = _lines(export_dir / "visits.jsonl")
    assessments = {a["id"]: a for a in _lines(export_dir / "assessments.jsonl")}
    target = next(a for a in assessments.values() if a["status"] == "completed")
    for v in visits:
        if v["assessment_id"] == target["id"]:
            v["child_seen"], v["seen_alone"] = False, None
    _save(export_dir / "visits.jsonl", visits)
    write_manifest(export_dir)
    report = validate_export(export_dir)
    assert report.count("ICS-1A-EXP-008") == 1
    assert target["id"] in report.examples("ICS-1A-EXP-008")[0].message
    assert report.verdict("ICS-1A-EXP-006") is Verdict.PASS


def test_nothing_after_date_of_death(export_dir):
    children = {c["id"]: c for c in _lines(export_dir / "children.jsonl")}
    referral = next(
        r
        for r in _lines(export_dir / "referrals.jsonl")
        if (children[r["child_id"]]["date_of_birth"] or "9") < r["received_on"]
    )
    children[referral["child_id"]]["date_of_death"] = children[referral["child_id"]]["date_of_birth"]
    _save(export_dir / "children.jsonl", list(children.values()))
    write_manifest(export_dir)
    report = validate_export(export_dir)
    assert report.verdict("ICS-1A-EXP-006") is Verdict.FAIL
    messages = [f.message for f in report.examples("ICS-1A-EXP-006")]
    assert any("referral received" in m and "date of death" in m for m in messages), messages


def test_aggregation_is_bounded(tmp_path, export_dir):
    notes = _lines(export_dir / "case_notes.jsonl")
    template = dict(notes[0], restricted="no")  # systematic schema fault
    with open(export_dir / "case_notes.jsonl", "wb") as fh:
        for i in range(50_000):
            fh.write(orjson.dumps(dict(template, id=f"X{i}")) + b"\n")
    write_manifest(export_dir)
    report = validate_export(export_dir, max_examples=7)
    assert report.count("ICS-1A-EXP-003") == 50_000
    examples = report.examples("ICS-1A-EXP-003")
    assert len(examples) == 7 and [f.line for f in examples] == list(range(1, 8))
    assert examples[0].pointer == "/restricted"
    check = next(c for c in report.checks() if c.id == "export::ICS-1A-EXP-003")
    assert check.verdict is Verdict.FAIL and len(check.evidence) == 7 and "50000 findings" in check.message


@pytest.mark.parametrize("requirement", ["ICS-1A-EXP-004", "ICS-1A-EXP-005", "ICS-1A-EXP-008"])
def test_parallel_parts_and_inline_agree(monkeypatch, requirement, tmp_path):
    fixture = tmp_path / "e"
    shutil.copytree(INVALID / requirement, fixture)
    notes = _lines(fixture / "case_notes.jsonl")
    notes[-1]["id"] = notes[0]["id"]  # a duplicate far apart: lands in different parts
    _save(fixture / "case_notes.jsonl", notes)
    write_manifest(fixture)
    inline = validate_export(fixture, workers=1)
    monkeypatch.setattr(validate_module, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(validate_module, "MIN_PART", 1500)
    monkeypatch.setattr(validate_module, "MAX_PART", 1500)
    parallel = validate_export(fixture, workers=2)
    assert inline.sink.counts == parallel.sink.counts
    assert sorted(str(f) for f in inline.findings) == sorted(str(f) for f in parallel.findings)
    assert [(f.name, f.records, f.sha256) for f in inline.files] == [
        (f.name, f.records, f.sha256) for f in parallel.files
    ]
    assert any(f.line == len(notes) for f in parallel.examples("ICS-1A-EXP-004"))


def test_crashed_rule_is_error_never_pass(monkeypatch, tmp_path, capsys):
    from conformance.export import records

    def boom(self, *chunk):
        raise RuntimeError("rule bug")

    monkeypatch.setattr(records._Scanner, "_aliases", boom)
    report = validate_export(VALID)
    assert report.verdict("ICS-1A-EXP-005") is Verdict.ERROR
    assert report.verdict("ICS-1A-EXP-004") is Verdict.ERROR
    assert not report.conformant
    check = next(c for c in report.checks() if c.id == "export::ICS-1A-EXP-005")
    assert check.verdict is Verdict.ERROR and "rule bug" in check.message
    assert run_cli("validate-export", str(VALID), "--output", str(tmp_path)) == 3


def test_json_output_and_result_file(tmp_path, capsys):
    code = run_cli("validate-export", str(INVALID / "ICS-1A-EXP-007"), "--json", "--output", str(tmp_path))
    assert code == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["requirements"]["ICS-1A-EXP-007"]["verdict"] == "FAIL"
    assert summary["requirements"]["ICS-1A-EXP-007"]["examples"][0]["line"] >= 1
    pytest.importorskip("conformance.spec.catalogue")
    pytest.importorskip("conformance.spec.capabilities")
    result = json.loads((tmp_path / "result.json").read_text())
    by_id = {r["id"]: r for r in result["requirements"]}
    assert by_id["ICS-1A-EXP-007"]["verdict"] == "FAIL"
    assert by_id["ICS-1A-EXP-003"]["verdict"] == "PASS"
    assert result["verdict"] == "NOT_CERTIFIED"


def test_usage_errors(tmp_path, capsys):
    assert run_cli("validate-export", str(tmp_path / "nope")) == 2
    assert run_cli("validate-export", str(VALID), "--max-examples", "-1") == 2
    assert "no such export" in capsys.readouterr().err


def test_local_id_duplicates_also_fail_rec_008_and_only_they(export_dir):
    """A repeated local child ID breaks EXP-004 and REC-008; a repeated record ID only EXP-004."""
    children = _lines(export_dir / "children.jsonl")
    holder = next(c for c in children if c["local_id"] is not None)
    other = next(c for c in children if c is not holder)
    _save(export_dir / "children.jsonl", [*children, dict(other, local_id=None)])  # repeated record ID only
    write_manifest(export_dir)
    report = validate_export(export_dir)
    assert report.verdict("ICS-1A-EXP-004") is Verdict.FAIL
    assert report.verdict("ICS-1A-REC-008") is Verdict.PASS and not report.examples("ICS-1A-REC-008")

    _save(export_dir / "children.jsonl", [*children, dict(other, id="child-local-dup", local_id=holder["local_id"])])
    write_manifest(export_dir)
    report = validate_export(export_dir)
    assert report.verdict("ICS-1A-EXP-004") is Verdict.FAIL and report.verdict("ICS-1A-REC-008") is Verdict.FAIL
    assert report.count("ICS-1A-REC-008") == 1
    [example] = report.examples("ICS-1A-REC-008")
    assert (example.file, example.line, example.pointer) == ("children.jsonl", len(children) + 1, "/local_id")
    checks = {c.id: c for c in report.checks()}
    assert checks["export::ICS-1A-REC-008"].failed_requirements == ("ICS-1A-REC-008",)
    assert checks["export::ICS-1A-EXP-004"].failed_requirements == ("ICS-1A-EXP-004",)
