"""``pytest --ics-export PATH`` alone judges only the export: no target, no reference service."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "exports"


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict | None]:
    report = pytester.path / "report"
    run = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "0", "--ics-report", str(report), *args, timeout=300
    )
    path = report / "result.json"
    result = json.loads(path.read_text()) if path.exists() else None
    if result is not None:
        from conformance.results.result import result_problems

        assert not result_problems(result), result_problems(result)[:10]
    return run, result


def _checks(result: dict) -> dict[str, str]:
    return {c["id"].split("::")[-1]: c["verdict"] for r in result["requirements"] for c in r["checks"]}


def test_valid_export_alone_is_certified_on_the_export_channel_only(pytester: pytest.Pytester) -> None:
    run, result = _run(pytester, "--ics-export", str(FIXTURES / "valid"))
    assert result is not None, run.stdout.str()
    assert result["verdict"] == "CERTIFIED", run.stdout.str()
    assert result["channels"] == ["export"]
    assert result["target"]["url"] is None and result["target"]["builtin_reference"] is False
    assert result["target"]["about"] == {} and result["target"]["export"] == str(FIXTURES / "valid")
    # only export checks were collected: nothing went through an API
    kinds = {c["kind"] for r in result["requirements"] for c in r["checks"]}
    assert kinds == {"export"}, kinds
    judged = {r["id"]: r["verdict"] for r in result["requirements"]}
    assert judged["ICS-1A-REC-008"] == "PASS"  # local IDs judged in the export
    assert judged["ICS-1A-EXP-009"] == "NOT_APPLICABLE"  # nothing created through an API to reconcile
    assert not any(rid.startswith("ICS-1B-") for rid in judged), sorted(judged)  # no API-only requirement in scope
    assert run.ret == 0
    assert "--ics-export" in result["command"]
    # one word for one thing: an export judged alone is CONFORMANT, as validate-export says
    assert "Phase 1B export: CONFORMANT" in run.stdout.str(), run.stdout.str()
    assert "CERTIFIED" not in run.stdout.str()


def test_invalid_export_alone_fails_exactly_its_requirement(pytester: pytest.Pytester) -> None:
    run, result = _run(pytester, "--ics-export", str(FIXTURES / "invalid" / "ICS-1A-EXP-005"))
    assert result is not None, run.stdout.str()
    assert result["verdict"] == "NOT_CERTIFIED"
    failed = {r["id"] for r in result["requirements"] if r["verdict"] == "FAIL"}
    assert failed == {"ICS-1A-EXP-005"}, failed
    assert "test_export_005" in run.stdout.str() and run.ret == 1
    assert "Phase 1B export: NOT CONFORMANT" in run.stdout.str()


def test_duplicate_local_ids_fail_rec_008_through_the_plugin(pytester: pytest.Pytester, tmp_path: Path) -> None:
    from conformance.export.generate import write_manifest

    export = tmp_path / "export"
    shutil.copytree(FIXTURES / "valid", export)
    children = [orjson.loads(x) for x in (export / "children.jsonl").read_bytes().splitlines()]
    holder = next(c for c in children if c["local_id"])
    children.append(dict(children[-1], id="C-local-dup", local_id=holder["local_id"]))
    (export / "children.jsonl").write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in children))
    write_manifest(export)
    run, result = _run(pytester, "--ics-export", str(export))
    assert result is not None, run.stdout.str()
    failed = {r["id"] for r in result["requirements"] if r["verdict"] == "FAIL"}
    assert failed == {"ICS-1A-EXP-004", "ICS-1A-REC-008"}, failed


def test_unreadable_archive_is_error_not_fail(pytester: pytest.Pytester, tmp_path: Path) -> None:
    broken = tmp_path / "export.zip"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip")
    run, result = _run(pytester, "--ics-export", str(broken))
    assert result is not None, run.stdout.str()
    assert result["verdict"] == "INCONCLUSIVE"
    assert not any(r["verdict"] == "FAIL" for r in result["requirements"])
    output = run.stdout.str() + run.stderr.str()
    assert "unreadable zip archive" in output and "INCONCLUSIVE" in output
    assert "Traceback" not in output and "archive.py" not in output  # a plain message, no stack


def test_missing_export_path_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    run, _ = _run(pytester, "--ics-export", str(tmp_path / "nowhere"))
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "--ics-export" in run.stderr.str() and "no such file" in run.stderr.str()


def test_ini_export_setting_alone_selects_export_only(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\nics_export = {FIXTURES / 'valid'}\n")
    run, result = _run(pytester)
    assert result is not None, run.stdout.str()
    assert result["channels"] == ["export"] and result["verdict"] == "CERTIFIED"


def test_summary_words_match_validate_export() -> None:
    from conformance.plugin.collect import summary_lines

    base = {"phase": "1B", "run_id": "r-1", "profile": "quick", "seed": 1, "requirements": []}
    words = {
        ("CERTIFIED", ("export",)): "Phase 1B export: CONFORMANT",
        ("NOT_CERTIFIED", ("export",)): "Phase 1B export: NOT CONFORMANT",
        ("INCONCLUSIVE", ("export",)): "Phase 1B export: INCONCLUSIVE",
        ("CERTIFIED", ("api", "export")): "Phase 1B: CERTIFIED",
        ("NOT_CERTIFIED", ("api",)): "Phase 1B: NOT CERTIFIED",
    }
    for (verdict, channels), first in words.items():
        line = summary_lines(dict(base, verdict=verdict, channels=list(channels)))[0]
        assert line.startswith(first + " "), line


def test_adapted_csv_export_through_the_plugin(pytester: pytest.Pytester) -> None:
    legacy = FIXTURES.parent / "export-formats" / "legacy-csv"
    run, result = _run(pytester, "--ics-export", str(legacy / "valid"), "--ics-export-format", "legacy-csv")
    assert result is not None, run.stdout.str()
    assert result["verdict"] == "CERTIFIED" and run.ret == 0, run.stdout.str()
    assert "--ics-export-format legacy-csv" in result["command"]
    run, result = _run(
        pytester, "--ics-export", str(legacy / "invalid" / "orphan-reference"), "--ics-export-format", "legacy-csv"
    )
    assert result is not None, run.stdout.str()
    assert {r["id"] for r in result["requirements"] if r["verdict"] == "FAIL"} == {"ICS-1A-EXP-005"}
    (check,) = [c for r in result["requirements"] for c in r["checks"] if c["id"].endswith("test_export_005")] or [
        c for r in result["requirements"] if r["id"] == "ICS-1A-EXP-005" for c in r["checks"]
    ]
    assert "CASE_NOTES.csv:6 [CHILD_REF, column 2]" in check["message"], check["message"]
    run, result = _run(pytester, "--ics-export", str(legacy / "valid"), "--ics-export-format", "no-such-format")
    assert run.ret == 4 or run.ret == 2, run.stdout.str()  # pytest's usage-error exit
    assert "unknown export format" in run.stderr.str() + run.stdout.str()
