"""``ics-conformance specs list/show/check/hash``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.spec.catalogue import load_catalogue, spec_digest

CATALOGUE = load_catalogue()
REPO = Path(__file__).resolve().parents[2]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "specs", "list")
    assert code == 0 and not err
    assert "spec version 2008.2" in out
    lines = out.splitlines()
    for phase, status in (("1A", "final"), ("1B", "final"), ("1C", "draft")):
        row = next(line for line in lines if line.startswith(f"{phase} ") and status in line)
        musts = sum(1 for r in CATALOGUE if r.phase == phase and r.level == "MUST")
        assert str(musts) in row.split()
    total = next(line for line in lines if line.startswith("total") and "MUST" not in line)
    assert str(len(CATALOGUE)) in total.split()
    for area in {r.area for r in CATALOGUE}:
        assert any(line.startswith(area + " ") for line in lines), area
    assert "\x1b[" not in out  # no terminal escapes when captured


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "specs", "list", "--json")
    assert code == 0
    data = json.loads(out)
    assert len(data) == len(CATALOGUE) >= 40
    for item in data:
        assert {
            "id",
            "title",
            "statement",
            "level",
            "phase",
            "area",
            "channel",
            "rationale",
            "source",
            "capability",
        } <= set(item)


@pytest.mark.parametrize(("phase", "phases"), [("1A", {"1A"}), ("1B", {"1A", "1B"}), ("1C", {"1A", "1B", "1C"})])
def test_list_phase_cumulative(capsys: pytest.CaptureFixture[str], phase: str, phases: set[str]) -> None:
    code, out, _ = _run(capsys, "specs", "list", "--json", "--phase", phase)
    assert code == 0
    data = json.loads(out)
    assert {item["phase"] for item in data} == phases
    assert [item["id"] for item in data] == [r.id for r in CATALOGUE.in_scope(phase)]
    code, out, _ = _run(capsys, "specs", "list", "--phase", phase)
    assert code == 0 and f"in scope for {phase}" in out


def test_list_unknown_phase(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["specs", "list", "--phase", "1D"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "specs", "show", "ICS-1B-GATE-001")
    req = CATALOGUE.get("ICS-1B-GATE-001")
    assert code == 0
    for text in (req.id, req.title, req.level, req.area, req.channel, "CHILD_NOT_SEEN", "rationale:", "source:"):
        assert text in out
    code, out, _ = _run(capsys, "specs", "show", "ics-1a-rec-006", "--json")
    assert code == 0 and json.loads(out)["capability"] == "unborn_children"


def test_show_lists_the_test_design_cases(capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.spec.testdesign import load_test_design

    cases = load_test_design().cases("ICS-1B-SRCH-009")
    code, out, _ = _run(capsys, "specs", "show", "ICS-1B-SRCH-009")
    assert code == 0 and f"cases ({len(cases)}, " in out
    for case in cases:
        assert f"- {case.id}{' (free)' if case.free else ''}:" in out
    assert "checks: test_search.py::test_paging_neither_drops_nor_repeats" in out
    assert "faults: search-drops-last-page" in out
    code, out, _ = _run(capsys, "specs", "show", "ICS-1B-SRCH-009", "--json")
    listed = json.loads(out)["cases"]
    assert [c["id"] for c in listed] == [c.id for c in cases]
    assert all(("covered_by" in c) != bool(c.get("free")) for c in listed)


def test_show_unknown_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "specs", "show", "ICS-1B-SRH-001")
    assert code == 2 and not out
    assert "unknown requirement 'ICS-1B-SRH-001'" in err
    assert "ICS-1B-SRCH-001" in err
    code, _, err = _run(capsys, "specs", "show", "nothing-like-it")
    assert code == 2 and "specs list" in err and "Traceback" not in err


def test_check_shipped_and_copy(capsys: pytest.CaptureFixture[str], catalogue_copy: Path) -> None:
    code, out, _ = _run(capsys, "specs", "check")
    assert code == 0 and out.startswith("OK:")
    code, out, _ = _run(capsys, "specs", "check", str(catalogue_copy))
    assert code == 0 and f"{len(CATALOGUE)} requirements" in out


def test_check_missing_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "specs", "check", str(tmp_path / "nope"))
    assert code == 2 and "no such catalogue directory" in err


def test_hash(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "specs", "hash")
    assert code == 0 and "2008.2" in out and spec_digest() in out
    code, out, _ = _run(capsys, "specs", "hash", "--json")
    assert json.loads(out) == {"version": "2008.2", "sha256": spec_digest()}


def test_specs_without_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "specs")
    assert code == 2 and "list" in err


class _ClosedPipe:
    """A stdout whose reader has gone away."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise ValueError("no descriptor")


@pytest.mark.parametrize("argv", [["specs", "list"], ["specs", "list", "--json"], ["specs", "show", "ICS-1A-REC-001"]])
def test_closed_reader_ends_quietly(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    """``specs list --json | head -1`` must not become an internal error (exit 4)."""
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(argv) == 0


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("ics-conformance")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "conformance"]
    proc = subprocess.run([*cmd, "specs", "list"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "1C" in proc.stdout and "draft" in proc.stdout
