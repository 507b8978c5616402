"""Hostile and malformed exports: a clear finding or error, never a crash or a hang."""

from __future__ import annotations

import os
import random
import stat
import zipfile
from pathlib import Path

import orjson
import pytest
from export_support import VALID, run_cli

from conformance.domain.identifiers import is_valid_nhs_number, is_valid_upn
from conformance.errors import InconclusiveError
from conformance.export import Limits, validate_export
from conformance.export.generate import write_manifest
from conformance.export.records import nhs_ok, upn_ok
from conformance.results.verdicts import Verdict

pytestmark = pytest.mark.timeout(60)


def _append(path: Path, data: bytes, *, manifest: bool = True) -> None:
    with open(path, "ab") as fh:
        fh.write(data)
    if manifest:
        write_manifest(path.parent)


def _only(report, requirement: str) -> list:
    bad = {r for r in report.requirements if report.verdict(r) is not Verdict.PASS}
    assert bad == {requirement}, {r: [str(f) for f in report.examples(r)] for r in bad}
    return report.examples(requirement)


def _zip_of(directory: Path, target: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(directory.iterdir()):
            z.write(f, f.name)
        for info, data in extra:
            z.writestr(info, data)
    return target


def test_truncated_last_line(export_dir):
    notes = export_dir / "case_notes.jsonl"
    data = notes.read_bytes()
    notes.write_bytes(data[: len(data) - 20])  # cut inside the last record, no final newline
    write_manifest(export_dir)
    (finding,) = _only(validate_export(export_dir), "ICS-1A-EXP-003")
    assert finding.file == "case_notes.jsonl" and finding.line == data.count(b"\n")
    assert "truncated last line" in finding.message


def test_invalid_utf8(export_dir):
    _append(
        export_dir / "aliases.jsonl",
        b'{"id":"AK\xff\xfe","child_id":"C0000001","given_name":"A","family_name":"B","type":"alias"}\n',
    )
    (finding,) = _only(validate_export(export_dir), "ICS-1A-EXP-003")
    assert "UTF-8" in finding.message and finding.file == "aliases.jsonl"


def test_single_100_mb_line(export_dir):
    with open(export_dir / "case_notes.jsonl", "ab") as fh:
        fh.write(b'{"id":"' + b"x" * (100 * 1024 * 1024) + b'"}\n')
    _append(export_dir / "case_notes.jsonl", orjson.dumps({"id": "after"}) + b"\n")
    report = validate_export(export_dir)
    examples = report.examples("ICS-1A-EXP-003")
    assert "longer than" in examples[0].message and examples[0].file == "case_notes.jsonl"
    assert examples[1].line == examples[0].line + 1  # the scan resumed after the long line
    assert report.verdict("ICS-1A-EXP-002") is Verdict.PASS  # count and hash still cover the long line


def test_non_json_line_nan_array_and_blank(export_dir):
    _append(export_dir / "aliases.jsonl", b'this is not json\n{"id": NaN}\n[1, 2, 3]\n\n')
    report = validate_export(export_dir)
    messages = [f.message for f in _only(report, "ICS-1A-EXP-003")]
    assert any("not valid JSON" in m for m in messages)
    assert sum("not valid JSON" in m for m in messages) == 2  # the text line and NaN
    assert any("array" in m for m in messages)
    assert any("blank line" in m for m in messages)


def test_duplicate_keys(export_dir):
    line = b'{"id":"AK9","id":"AK8","child_id":"C0000001","given_name":"A","family_name":"B","type":"alias"}\n'
    spaced = (
        b'{"id" : "AK7", "child_id":"C0000001","given_name":"A","family_name":"B","type":"alias","type":"previous"}\n'
    )
    _append(export_dir / "aliases.jsonl", line + spaced)
    findings = _only(validate_export(export_dir), "ICS-1A-EXP-003")
    assert [(f.pointer, "duplicate key" in f.message) for f in findings] == [("/id", True), ("/type", True)]


def test_duplicate_key_check_ignores_quotes_in_text(export_dir):
    record = {
        "id": "N-q",
        "child_id": "C0000001",
        "author_id": "P0000002",
        "text": 'she said "no": twice ":"',
        "restricted": False,
        "created_at": "2008-01-01T10:00:00Z",
    }
    _append(export_dir / "case_notes.jsonl", orjson.dumps(record) + b"\n")
    assert validate_export(export_dir).conformant


def test_missing_and_extra_files(export_dir):
    (export_dir / "visits.jsonl").unlink()
    (export_dir / "notes.txt").write_text("hello")
    report = validate_export(export_dir)
    assert [f.file for f in report.examples("ICS-1A-EXP-001")] == ["visits.jsonl"]
    extra = [f for f in report.examples("ICS-1A-EXP-002")]
    assert {f.file for f in extra} >= {"notes.txt"}
    assert any("missing" in f.message and "visits.jsonl" in f.message for f in extra)


def test_manifest_hash_and_count_mismatch(export_dir):
    notes = export_dir / "case_notes.jsonl"
    notes.write_bytes(notes.read_bytes().replace(b"Home visit", b"Home vIsit", 1))
    lines = (export_dir / "aliases.jsonl").read_bytes().splitlines(keepends=True)
    (export_dir / "aliases.jsonl").write_bytes(b"".join(lines[:-1]))
    findings = _only(validate_export(export_dir), "ICS-1A-EXP-002")
    text = "\n".join(str(f) for f in findings)
    assert "case_notes.jsonl: sha256" in text and "aliases.jsonl: count" in text
    assert all(f.file == "manifest.json" and f.line for f in findings)


def test_manifest_not_json(export_dir):
    (export_dir / "manifest.json").write_bytes(b"{nope")
    (finding,) = _only(validate_export(export_dir), "ICS-1A-EXP-002")
    assert "manifest is not valid JSON" in finding.message


@pytest.mark.parametrize("name", ["../evil.jsonl", "/etc/evil.jsonl", "sub/../../evil.jsonl", "C:/evil.jsonl"])
def test_zip_slip_entries_refused(tmp_path, name):
    before = set(tmp_path.parent.iterdir())
    z = _zip_of(VALID, tmp_path / "e.zip", [(name, b'{"id":"x"}\n')])
    report = validate_export(z)
    findings = _only(report, "ICS-1A-EXP-002")
    assert findings[0].file == name and "refused" in findings[0].message
    assert set(tmp_path.parent.iterdir()) == before and not (tmp_path.parent / "evil.jsonl").exists()


def test_symlink_in_directory_not_followed(export_dir, tmp_path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"id":"leak"}\n')
    (export_dir / "aliases.jsonl").unlink()
    os.symlink(secret, export_dir / "aliases.jsonl")
    report = validate_export(export_dir)
    assert any("symbolic link" in f.message and f.file == "aliases.jsonl" for f in report.examples("ICS-1A-EXP-002"))
    assert [f.file for f in report.examples("ICS-1A-EXP-001")] == ["aliases.jsonl"]


def test_symlink_in_zip_refused(tmp_path):
    info = zipfile.ZipInfo("link.jsonl")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = _zip_of(VALID, tmp_path / "s.zip", [(info, b"/etc/passwd")])
    (finding,) = _only(validate_export(z), "ICS-1A-EXP-002")
    assert finding.file == "link.jsonl" and "symbolic link" in finding.message


def test_fifo_in_directory_does_not_hang(export_dir):
    os.mkfifo(export_dir / "pipe.jsonl")
    report = validate_export(export_dir)
    assert any(f.file == "pipe.jsonl" and "regular file" in f.message for f in report.examples("ICS-1A-EXP-002"))


def test_zip_bomb_refused(tmp_path):
    z = _zip_of(VALID, tmp_path / "bomb.zip")
    with zipfile.ZipFile(z, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("case_notes_big.jsonl", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(64):
                member.write(chunk)
    with pytest.raises(InconclusiveError, match="case_notes_big.jsonl.*zip bomb"):
        validate_export(z)
    with pytest.raises(InconclusiveError, match="over the limit"):
        validate_export(_zip_of(VALID, tmp_path / "big.zip"), limits=Limits(max_member_bytes=1000))
    assert run_cli("validate-export", str(z), "--output", str(tmp_path / "r")) == 3


def test_nested_zip_not_opened(tmp_path):
    inner = _zip_of(VALID, tmp_path / "inner.zip")
    z = _zip_of(VALID, tmp_path / "outer.zip", [("inner.zip", inner.read_bytes())])
    (finding,) = _only(validate_export(z), "ICS-1A-EXP-002")
    assert finding.file == "inner.zip" and "nested archive" in finding.message


def test_zip_under_one_folder_and_disguised_zip(tmp_path):
    z = tmp_path / "folder.zip"
    with zipfile.ZipFile(z, "w") as archive:
        for f in sorted(VALID.iterdir()):
            archive.write(f, "export-2008/" + f.name)
    assert validate_export(z).conformant
    disguised = tmp_path / "d"
    disguised.mkdir()
    for f in VALID.iterdir():
        (disguised / f.name).write_bytes(f.read_bytes())
    (disguised / "aliases.jsonl").write_bytes((tmp_path / "folder.zip").read_bytes())
    write_manifest(disguised)
    report = validate_export(disguised)
    assert report.verdict("ICS-1A-EXP-003") is Verdict.FAIL  # binary content: findings, no crash


def test_empty_archive_and_empty_directory(tmp_path):
    z = tmp_path / "empty.zip"
    zipfile.ZipFile(z, "w").close()
    report = validate_export(z)
    assert report.count("ICS-1A-EXP-001") == 9 and report.verdict("ICS-1A-EXP-001") is Verdict.FAIL
    (tmp_path / "emptydir").mkdir()
    assert validate_export(tmp_path / "emptydir").count("ICS-1A-EXP-001") == 9
    assert run_cli("validate-export", str(z), "--output", str(tmp_path / "r")) == 1


def test_unreadable_archives_are_inconclusive(tmp_path, capsys):
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04" + os.urandom(2000))
    truncated = tmp_path / "truncated.zip"
    data = _zip_of(VALID, tmp_path / "whole.zip").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "plain.txt"
    text.write_text("not an export")
    for path in (garbage, truncated, text):
        with pytest.raises(InconclusiveError):
            validate_export(path)
        assert run_cli("validate-export", str(path), "--output", str(tmp_path / "r")) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "garbage.zip" in err


def test_corrupt_member_data_is_error_not_pass(tmp_path):
    z = _zip_of(VALID, tmp_path / "c.zip")
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as archive:
        info = archive.getinfo("case_notes.jsonl")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 10
    for i in range(start, start + 40):
        data[i] ^= 0x5A
    z.write_bytes(bytes(data))
    report = validate_export(z)
    assert report.verdict("ICS-1A-EXP-005") in (Verdict.ERROR, Verdict.FAIL)
    assert not report.conformant and any("case_notes.jsonl" in e for e in report.errors)


def test_fast_identifier_checks_agree_with_stdnum():
    rng = random.Random(7)
    letters = "ABCDEFGHJKLMNPQRTUVWXYZ"
    from conformance.domain.identifiers import nhs_check_digit, upn_check_letter

    for _ in range(3000):
        body = f"{rng.choice([202, 204, 999, 100, 938]):03d}{rng.randrange(10**8):08d}{rng.choice('0123456789ABIOSZ')}"
        values = [rng.choice(letters) + body]
        if body[-1] not in "IOS":
            values.append(upn_check_letter(body) + body)
        for value in values:
            assert upn_ok(value) == is_valid_upn(value), value
        nhs_body = f"{rng.randrange(10**9):09d}"
        for value in (nhs_body + str(rng.randrange(10)),):
            assert nhs_ok(value) == is_valid_nhs_number(value), value
        try:
            good = nhs_body + nhs_check_digit(nhs_body)
        except ValueError:
            continue
        assert nhs_ok(good) and is_valid_nhs_number(good)


_ALIAS = b'"child_id":"C0000006","given_name":"Scott","family_name":"Murphy","type":"alias"'


@pytest.mark.parametrize(
    "lines",
    [
        # one record over two lines, and two records on one line: as many records as lines
        [b'{"id":"X1",' + _ALIAS[:21], _ALIAS[22:] + b"}", b'{"id":"X2",' + _ALIAS + b'},{"id":"X3",' + _ALIAS + b"}"],
        # a string value running over the line break
        [b'{"id":"X4",' + _ALIAS[:-5], b'{"id":"' + b"x" * 3 + b'",' + _ALIAS + b"}"],
        # an overwritten value (duplicate key) hiding brackets and braces across lines
        [
            b'{"id":"X5","type":[[1',
            b'{"a":2}]],' + _ALIAS + b"}",
            b'{"id":"X6",' + _ALIAS + b'},{"id":"X7",' + _ALIAS + b"}",
        ],
        [
            b'{"id":"X8","type":{"a":"',
            b'{"b":1}"},' + _ALIAS + b"}",
            b'{"id":"X9",' + _ALIAS + b'},{"id":"XA",' + _ALIAS + b"}",
        ],
        # valid JSON lines that are not canonical: a leading space, a space after a colon, an escape
        [b' {"id":"XB",' + _ALIAS + b"}", b'{"id": "XC",' + _ALIAS + b"}", b'{"id":"X\\u0031",' + _ALIAS + b"}"],
        [b'{"id":"XD",' + _ALIAS + b',"id":"XE"}'],
    ],
)
def test_block_fast_path_agrees_with_line_by_line(export_dir, monkeypatch, lines):
    """Lines that a naive parse of the whole block as one array would misread are read as
    each line alone reads (the fast path falls back to line by line)."""
    from conformance.export import records

    _append(export_dir / "aliases.jsonl", b"\n".join(lines) + b"\n")
    fast = validate_export(export_dir, max_examples=100)
    monkeypatch.setattr(records, "flat_records", lambda name: False)
    slow = validate_export(export_dir, max_examples=100)
    assert [str(f) for f in fast.findings] == [str(f) for f in slow.findings]
    assert fast.sink.counts == slow.sink.counts


def test_block_fast_path_reads_valid_blocks_whole(export_dir, monkeypatch):
    from conformance.export import records

    calls = []
    monkeypatch.setattr(records._Scanner, "chunk", lambda self, *args: calls.append(args))
    assert validate_export(export_dir).conformant and not calls
