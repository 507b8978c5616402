"""Flat-memory validation: hashed IDs, spilled duplicate detection, batch lookups, parts.

Each test compares the validator with a plain in-memory reference (string sets and
dicts, the way the rules read in the catalogue), so hashing, spilling, partitioning and
vectorised joins must give exactly the same findings.
"""

from __future__ import annotations

import io
import random
import shutil
import zipfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest

from conformance.domain.identifiers import is_valid_nhs_number, is_valid_upn
from conformance.domain.workingdays import due_date
from conformance.export import keys, rules, validate_export
from conformance.export import validate as validate_module
from conformance.export.generate import generate_export, write_manifest
from conformance.export.records import _Part, due_days, nhs_numbers_ok, upns_ok
from conformance.results.verdicts import Verdict

ALL = 10**9  # max_examples: keep every finding


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def _save(path: Path, records: list[dict]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate_export(tmp_path_factory.mktemp("gen") / "export", children=120, seed=11)


@pytest.fixture
def export(generated: Path, tmp_path: Path) -> Path:
    target = tmp_path / "export"
    shutil.copytree(generated, target)
    return target


def _in_parts(monkeypatch, part: int = 2000) -> None:
    """Scan every file in small parts on two forked workers."""
    monkeypatch.setattr(validate_module, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(validate_module, "MIN_PART", part)
    monkeypatch.setattr(validate_module, "MAX_PART", part)


def _findings(report, *requirements: str) -> list[str]:
    return sorted(str(f) for r in requirements for f in report.examples(r))


def _inject_duplicates(export: Path, rng: random.Random) -> None:
    notes = _lines(export / "case_notes.jsonl")
    for _ in range(25):
        notes[rng.randrange(len(notes))]["id"] = notes[rng.randrange(len(notes))]["id"]
    notes.append(dict(notes[3]))
    _save(export / "case_notes.jsonl", notes)
    children = _lines(export / "children.jsonl")
    children[-1]["local_id"] = children[0]["local_id"]
    children.append(dict(children[1], local_id=None))  # a repeated child ID (its references still resolve)
    _save(export / "children.jsonl", children)
    write_manifest(export)


def _reference_duplicates(export: Path) -> list[str]:
    """``file:line pointer message`` of every repeated ID and local child ID, from string sets."""
    out = []
    for path in sorted(export.glob("*.jsonl")):
        record_type = path.stem
        seen: dict[str, set] = {"id": set(), "local_id": set()}
        for n, record in enumerate(_lines(path), 1):
            for key, what in (("id", f"duplicate {record_type} id"), ("local_id", "duplicate local child ID")):
                value = record.get(key)
                if not isinstance(value, str) or (key == "local_id" and record_type != "children"):
                    continue
                if value in seen[key]:
                    out.append(f"{path.name}:{n} /{key} {what} {value!r}")
                seen[key].add(value)
    return sorted(out)


def test_hash_collisions_never_make_a_finding(monkeypatch, export):
    """Every ID hashes alike: a valid export stays conformant, inline and in parts."""
    monkeypatch.setattr(keys, "_H1_MASK", np.uint64(0))
    assert validate_export(export, workers=1).conformant
    _in_parts(monkeypatch)
    assert validate_export(export, workers=2).conformant


@pytest.mark.parametrize("degenerate", ["constant", "low-bits"])
def test_real_duplicates_found_exactly_despite_collisions(monkeypatch, export, degenerate):
    _inject_duplicates(export, random.Random(3))
    expected = _reference_duplicates(export)
    assert len(expected) > 20
    honest = validate_export(export, max_examples=ALL)
    assert _findings(honest, "ICS-1A-EXP-004") == expected
    monkeypatch.setattr(keys, "_H1_MASK", np.uint64(0 if degenerate == "constant" else 0xF))
    for workers in (1, 2):
        if workers == 2:
            _in_parts(monkeypatch)
        report = validate_export(export, max_examples=ALL, workers=workers)
        assert _findings(report, "ICS-1A-EXP-004") == expected
        assert report.count("ICS-1A-EXP-004") == len(expected) and report.count("ICS-1A-REC-008") == 1
        assert {r for r in report.judged if report.verdict(r) is not Verdict.PASS} == {
            "ICS-1A-EXP-004",
            "ICS-1A-REC-008",
        }


def test_spilled_partitioned_duplicates_agree_with_in_memory_reference(monkeypatch, export):
    _inject_duplicates(export, random.Random(5))
    expected = _reference_duplicates(export)
    monkeypatch.setattr(keys, "SPILL_ENTRIES", 16)  # spill every few chunks
    monkeypatch.setattr(keys, "PARTITION_BYTES", 2048)  # many partitions per file
    monkeypatch.setattr(keys, "CONFIRM_LINES", 3)  # several confirmation passes
    inline = validate_export(export, max_examples=ALL, workers=1)
    assert _findings(inline, "ICS-1A-EXP-004") == expected
    _in_parts(monkeypatch)
    parallel = validate_export(export, max_examples=ALL, workers=2)
    assert _findings(parallel, "ICS-1A-EXP-004") == expected
    # bounded examples are the first ones in line order, the count covers all of them
    few = validate_export(export, max_examples=4, workers=2)
    assert few.count("ICS-1A-EXP-004") == len(expected)
    first = sorted(expected, key=lambda x: (x.split(":")[0], int(x.split(":")[1].split()[0])))
    by_file = [x for x in first if x.startswith("case_notes")][:4]
    assert [str(f) for f in few.examples("ICS-1A-EXP-004")] == by_file


def _reference_cross_file(export: Path) -> list[str]:
    """EXP-005/006/008 findings of the rules as dicts and sets of strings (the last record of a repeated ID wins)."""
    from conformance.export.records import validator

    def records(name: str) -> list[tuple[int, dict, bool]]:
        out = []
        for n, raw in enumerate((export / f"{name}.jsonl").read_bytes().splitlines(), 1):
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                out.append((n, record, validator(name).is_valid(record)))
        return out

    children = {r["id"]: (r["date_of_death"] if ok else None) for _n, r, ok in records("children")}
    practitioners = {r["id"] for _n, r, _ok in records("practitioners")}
    referrals = {r["id"]: ((r["child_id"], r["received_on"], n) if ok else None) for n, r, ok in records("referrals")}
    assessments = {r["id"]: ((r, n) if ok else None) for n, r, ok in records("assessments")}
    out = []
    for entry in referrals.values():
        if entry:
            child, received, n = entry
            if child not in children:
                out.append(f"referrals.jsonl:{n} /child_id child_id {child!r} not found in children.jsonl")
            elif children[child] and received > children[child]:
                out.append(
                    f"referrals.jsonl:{n} /received_on referral received {received}, after the child's date of death {children[child]}"
                )
    for entry in assessments.values():
        if not entry:
            continue
        a, n = entry
        if a["child_id"] not in children:
            out.append(f"assessments.jsonl:{n} /child_id child_id {a['child_id']!r} not found in children.jsonl")
        elif children[a["child_id"]] and a["start_date"] > children[a["child_id"]]:
            out.append(
                f"assessments.jsonl:{n} /start_date assessment started {a['start_date']}, after the child's date of death {children[a['child_id']]}"
            )
        if a["referral_id"] is not None:
            if a["referral_id"] not in referrals:
                out.append(
                    f"assessments.jsonl:{n} /referral_id referral_id {a['referral_id']!r} not found in referrals.jsonl"
                )
            elif referrals[a["referral_id"]] and a["start_date"] < referrals[a["referral_id"]][1]:
                out.append(
                    f"assessments.jsonl:{n} /start_date assessment started {a['start_date']}, before its referral was received ({referrals[a['referral_id']][1]})"
                )
    seen = set()
    for n, v, ok in records("visits"):
        if not ok:
            continue
        aid = v["assessment_id"]
        if aid not in assessments:
            out.append(f"visits.jsonl:{n} /assessment_id assessment_id {aid!r} not found in assessments.jsonl")
        elif assessments[aid] and v["child_seen"]:
            a = assessments[aid][0]
            death = children.get(a["child_id"])
            if v["visit_date"] < a["start_date"]:
                out.append(
                    f"visits.jsonl:{n} /visit_date child seen on {v['visit_date']}, before the assessment started ({a['start_date']})"
                )
            if death and v["visit_date"] > death:
                out.append(
                    f"visits.jsonl:{n} /visit_date child seen on {v['visit_date']}, after their date of death {death}"
                )
            if a["completed_on"] and a["start_date"] <= v["visit_date"] <= a["completed_on"]:
                seen.add(aid)
    for aid, entry in assessments.items():
        if entry and entry[0]["completed_on"] and aid not in seen:
            a, n = entry
            out.append(
                f"assessments.jsonl:{n} /status assessment {aid!r} completed on {a['completed_on']} without a visit "
                f"seeing the child between {a['start_date']} and {a['completed_on']}"
            )
    for name, keys_ in (
        ("case_notes", (("child_id", children, "children"), ("author_id", practitioners, "practitioners"))),
        ("allocations", (("child_id", children, "children"), ("practitioner_id", practitioners, "practitioners"))),
        ("aliases", (("child_id", children, "children"),)),
    ):
        for n, r, ok in records(name):
            for key, known, target in keys_:
                if ok and r[key] not in known:
                    out.append(f"{name}.jsonl:{n} /{key} {key} {r[key]!r} not found in {target}.jsonl")
    return sorted(out)


def _break_references(export: Path, rng: random.Random) -> None:
    data = {
        t: _lines(export / f"{t}.jsonl")
        for t in ("children", "referrals", "assessments", "visits", "case_notes", "allocations", "aliases")
    }
    for _ in range(30):
        kind = rng.randrange(9)
        if kind == 0:
            rng.choice(data["case_notes"])["child_id"] = f"C-gone-{rng.randrange(4)}"
        elif kind == 1:
            rng.choice(data["allocations"])["practitioner_id"] = "P-gone"
        elif kind == 2:
            rng.choice(data["children"])["date_of_death"] = (
                f"200{rng.randrange(4, 8)}-0{rng.randrange(1, 9)}-1{rng.randrange(10)}"
            )
        elif kind == 3:
            rng.choice(data["assessments"])["referral_id"] = rng.choice(["R-gone", None])
        elif kind == 4:
            rng.choice(data["visits"])["assessment_id"] = "A-gone"
        elif kind == 5:
            v = rng.choice(data["visits"])
            v["child_seen"], v["seen_alone"] = False, None
        elif kind == 6:
            rng.choice(data["referrals"])["received_on"] = "2008-09-29"
        elif kind == 7:
            data["assessments"].append(
                dict(rng.choice(data["assessments"]), child_id="C-gone")
            )  # repeated ID, last wins
        else:
            rng.choice(data["aliases"]).pop("type", None)  # schema-invalid: its ID still counts as present
    for t, records in data.items():
        _save(export / f"{t}.jsonl", records)
    write_manifest(export)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_lookups_agree_with_dict_reference(monkeypatch, export, seed):
    _break_references(export, random.Random(seed))
    expected = _reference_cross_file(export)
    assert expected
    inline = validate_export(export, max_examples=ALL, workers=1)
    assert _findings(inline, "ICS-1A-EXP-005", "ICS-1A-EXP-006", "ICS-1A-EXP-008") == expected
    _in_parts(monkeypatch, 1500)
    monkeypatch.setattr(rules, "SLICE", 7)  # joins over many slices of table rows
    parallel = validate_export(export, max_examples=ALL, workers=2)
    assert _findings(parallel, "ICS-1A-EXP-005", "ICS-1A-EXP-006", "ICS-1A-EXP-008") == expected
    assert inline.sink.counts == parallel.sink.counts
    # h1 collisions everywhere: joins compare (h1, h2) and stay exact; existence checks on h1
    # alone can only miss a dangling reference (never report a false one)
    monkeypatch.setattr(keys, "_H1_MASK", np.uint64(0x3))
    degenerate = validate_export(export, max_examples=ALL, workers=2)
    existence = {"case_notes.jsonl", "allocations.jsonl", "aliases.jsonl"}
    assert [f for f in _findings(degenerate, "ICS-1A-EXP-006", "ICS-1A-EXP-008")] == [
        f for f in expected if "/visit_date" in f or "/received_on" in f or "/start_date" in f or "/status" in f
    ]
    assert [f for f in _findings(degenerate, "ICS-1A-EXP-005") if f.split(":")[0] not in existence] == [
        f for f in expected if "not found" in f and f.split(":")[0] not in existence
    ]
    assert set(_findings(degenerate, "ICS-1A-EXP-005")) <= set(expected)


def test_zip_export_scanned_in_parts_agrees(monkeypatch, export, tmp_path):
    _break_references(export, random.Random(9))
    notes = export / "case_notes.jsonl"
    notes.write_bytes(notes.read_bytes()[:-15])  # truncated last line, in the last part
    write_manifest(export)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(export.iterdir()):
            z.write(f, f.name)
    inline = validate_export(archive, max_examples=ALL, workers=1)
    _in_parts(monkeypatch, 1000)
    parallel = validate_export(archive, max_examples=ALL, workers=2)
    assert inline.sink.counts == parallel.sink.counts and inline.sink.counts
    assert sorted(str(f) for f in inline.findings) == sorted(str(f) for f in parallel.findings)
    assert [(f.name, f.records, f.bytes, f.sha256) for f in inline.files] == [
        (f.name, f.records, f.bytes, f.sha256) for f in parallel.files
    ]
    assert parallel.verdict("ICS-1A-EXP-002") is Verdict.PASS  # whole-member sha256 from the last part


@pytest.mark.parametrize("seekable", [True, False])
def test_parts_cover_every_line_once(seekable):
    rng = random.Random(4)
    data = b"".join(b"x" * rng.randrange(0, 40) + b"\n" for _ in range(300)) + b"tail"
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randrange(1, 8)))
        bounds = [0, *cuts, None]
        pieces, offset = [], 0
        for a, b in zip(bounds, bounds[1:]):
            stream = io.BytesIO(data) if seekable else io.BufferedReader(io.BytesIO(data))
            part = _Part(stream, a, b, seekable=seekable)
            piece = b"".join(iter(lambda part=part: part.read(7), b""))
            if piece:  # starts at a line start, ends at one (except the file's tail)
                assert offset == 0 or data[offset - 1 : offset] == b"\n"
                assert piece.endswith(b"\n") or offset + len(piece) == len(data)
            pieces.append(piece)
            offset += len(piece)
        assert b"".join(pieces) == data


def test_vectorised_checks_agree_with_the_authorities():
    rng = random.Random(8)
    upns, numbers = (
        ["", "A", "A12345678901B", "Ä12345678901B", "A1234567890１B", "A123456789012B"],
        ["", "123", "１２３４５６７８９０"],
    )
    from conformance.domain.identifiers import nhs_check_digit, upn_check_letter

    for _ in range(5000):
        body = (
            f"{rng.choice([202, 204, 999, 100, 938, 0]):03d}{rng.randrange(10**8):08d}{rng.choice('0123456789ABIOSZ')}"
        )
        upns.append(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + body)
        if body[-1] not in "IOS":
            upns.append(upn_check_letter(body) + body)
        nine = f"{rng.randrange(10**9):09d}"
        numbers.append(nine + str(rng.randrange(10)))
        try:
            numbers.append(nine + nhs_check_digit(nine))
        except ValueError:
            pass
    assert upns_ok(upns).tolist() == [is_valid_upn(u) for u in upns]
    assert nhs_numbers_ok(numbers).tolist() == [is_valid_nhs_number(n) for n in numbers]
    starts = [date(1999, 12, 1) + timedelta(days=d) for d in range(0, 3700, 3)]
    for kind in ("initial", "core"):
        got = [due_date(kind, d).isoformat() for d in starts]
        computed = due_days([kind] * len(starts), keys.days([d.isoformat() for d in starts]))
        assert computed is not None and computed.astype(str).tolist() == got
    assert due_days(["core"], keys.days(["1899-12-31"])) is None  # outside the calendar: one by one
    dates = [date(1, 1, 1) + timedelta(days=d) for d in range(0, 3_652_000, 997)]
    assert keys.days([d.isoformat() for d in dates]).tolist() == [int(d.strftime("%Y%m%d")) for d in dates]
    assert keys.days(["2008-02-29", None, "1999-12-31", None]).tolist() == [20080229, 0, 19991231, 0]


def test_id_hashes_are_one_function_of_the_string():
    """``h1`` and ``h2`` of an ID do not depend on its batch (fixed-width path or not, alone
    or with others), ``keys`` is ``key_pair``'s first, and the two hashes are independent."""
    tricky = ["", "\x00", "\x00\x00", "a", "a\x00", "é", "e\u0301", "12345678", "123456789", "y" * 200, "C0000001"]
    values = [f"N{i:07d}" for i in range(300)] + tricky
    h1, h2 = (h.tolist() for h in keys.key_pair(values))
    assert keys.keys(values).tolist() == h1
    for alone in ([v] for v in values), ([v, "zz"] for v in values), ([v, v] for v in values):
        pairs = [keys.key_pair(batch) for batch in alone]
        assert [int(a[0]) for a, _ in pairs] == h1 and [int(b[0]) for _, b in pairs] == h2
    assert len(set(h1)) == len(set(h2)) == len(values)
    assert not set(h1) & set(h2)
    rng = random.Random(2)
    many = sorted({"".join(rng.choice("ab\x00é") for _ in range(rng.randrange(12))) for _ in range(20000)})
    many_h1, many_h2 = keys.key_pair(many)
    assert len(set(many_h1.tolist())) == len(set(many_h2.tolist())) == len(many)


def test_id_hashes_tell_apart_ids_whose_length_term_and_first_word_cancel():
    """A 68- and a 72-character ID whose first eight bytes differ by exactly the difference
    of ``68 * GOLDEN`` and ``72 * GOLDEN`` (the rest the same, NUL-padded): a hash that mixed
    the length into its start state gave both the same value under every key (``h2``
    before it took the length last)."""
    first = b"ABCDEFGH"
    apart = (68 * 0x9E3779B97F4A7C15 ^ 72 * 0x9E3779B97F4A7C15) & 0xFFFF_FFFF_FFFF_FFFF
    other = (int.from_bytes(first, "little") ^ apart).to_bytes(8, "little")
    assert other == b"=RyG+/a1"
    a, b = (first + b"x" * 60).decode(), (other + b"x" * 60 + b"\x00" * 4).decode()
    h1, h2 = keys.key_pair([a, b])
    assert h1[0] != h1[1] and h2[0] != h2[1]


@pytest.mark.parametrize("block", [5, 37, 64])
def test_blocks_hold_the_lines_batches_hold(monkeypatch, block):
    """``iter_blocks`` (the scan's reader) gives the same lines, overlong and final ones
    included, as ``iter_batches`` (every other reader)."""
    from conformance.export import lines as lines_module

    monkeypatch.setattr(lines_module, "BLOCK", block)
    rng = random.Random(block)

    class NoHash:
        def update(self, data: bytes) -> None:
            pass

    for _ in range(1500):
        data = b"".join(b"x" * rng.choice([0, 1, 5, 20, 60, 100]) + b"\n" for _ in range(rng.randrange(30)))
        data += b"y" * rng.choice([0, 0, rng.randrange(90)])
        max_line = rng.choice([3, 10, 30, 50, 1000])
        batches = list(lines_module.iter_batches(io.BytesIO(data), NoHash(), max_line, [0]))
        blocks, first = [], 1
        for raw, lines, final in lines_module.iter_blocks(io.BytesIO(data), NoHash(), max_line, [0]):
            if raw is not None:
                lines = raw.split(b"\n")
                assert lines.pop() == b"" and not final
            blocks.append((first, lines, final))
            first += len(lines)
        assert blocks == batches


def test_absent_agrees_with_has():
    rng = np.random.default_rng(5)
    for size in (0, 1, 50, 5000):
        h1 = np.sort(rng.integers(-50, 50, size) if size < 5000 else rng.integers(-(2**62), 2**62, size))
        table = keys.KeyTable(h1, np.zeros(size, np.int64))
        for queries in (rng.choice(h1, 300) if size else np.zeros(0, np.int64), rng.integers(-60, 60, 300)):
            assert table.absent(queries).tolist() == (table.has(queries) < 0).tolist()


@pytest.mark.parametrize("flat", [True, False])
def test_a_due_date_past_9999_is_not_judged_and_hides_no_assessment(monkeypatch, export, flat):
    """A schema-valid start of 9999-12-31 has a due date no ISO date can state: not judged, no
    crash, and its chunk's assessments stay known to the visits (it used to crash the due-date
    rule, and the lost table rows became false "not found" findings), whichever path read them."""
    from conformance.export import records

    monkeypatch.setattr(records, "CHUNK", 7)
    if not flat:
        monkeypatch.setattr(records, "flat_records", lambda name: False)
    assessments = _lines(export / "assessments.jsonl")
    assessments[9]["start_date"] = "9999-12-31"
    _save(export / "assessments.jsonl", assessments)
    write_manifest(export)
    reports = [validate_export(export, max_examples=ALL, workers=n) for n in (1, 2)]
    for report in reports:
        assert report.error("ICS-1A-EXP-008") is None
        assert not [f for f in _findings(report, "ICS-1A-EXP-005") if f.startswith("visits")]
        assert not [f for f in _findings(report, "ICS-1A-EXP-008") if f.startswith("assessments.jsonl:10 /due_date")]
    judged = sorted({c.id for c in reports[0].checks()})
    assert judged and [_findings(reports[0], *judged)] == [_findings(reports[1], *judged)]


def test_a_crashed_due_date_rule_is_error_and_keeps_its_table_rows(monkeypatch, export):
    """A rule crash is ERROR, and the chunk's assessments are still in the table: no cascade of
    false "assessment not found" findings on the visits."""
    from conformance.export import records

    monkeypatch.setattr(records, "CHUNK", 7)

    def boom(kinds, starts):
        raise RuntimeError("due-date rule bug")

    monkeypatch.setattr(records, "due_days", boom)
    report = validate_export(export, max_examples=ALL, workers=1)
    assert "due-date rule bug" in (report.error("ICS-1A-EXP-008") or "")
    assert not [f for f in _findings(report, "ICS-1A-EXP-005") if f.startswith("visits")]
