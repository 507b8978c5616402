"""Malformed catalogues are refused with a SpecError naming file, requirement and field.

Each case is checked through the API (``load_catalogue``) and through ``specs check DIR``
(exit 2, the same message, no traceback).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.errors import SpecError
from conformance.spec.catalogue import load_catalogue

Edit = Callable[..., Path]


def _missing_field(edit: Edit) -> Path:
    return edit("1A", "    rationale: Pre-birth assessments start before a child has a date of birth.\n", "")


def _missing_id(edit: Edit) -> Path:
    return edit("1A", "  - id: ICS-1A-REC-001\n    title:", "  - title:")


def _unknown_phase_field(edit: Edit) -> Path:
    return edit("1B", 'phase: "1B"\n    area: gating', 'phase: "1D"\n    area: gating')


def _unknown_phase_file(edit: Edit) -> Path:
    directory = edit("1C", "status: draft", "status: draft")
    (directory / "phase-1C.yaml").rename(directory / "phase-1D.yaml")
    return directory


def _duplicate_in_file(edit: Edit) -> Path:
    return edit("1B", "id: ICS-1B-SRCH-002", "id: ICS-1B-SRCH-001")


def _duplicate_across_files(edit: Edit) -> Path:
    return edit("1C", "id: ICS-1C-SEEN-002", "id: ICS-1B-SRCH-001")


def _bad_level(edit: Edit) -> Path:
    return _replace_after(edit, "1B", "ICS-1B-SRCH-003", "level: MUST", 'level: "MUSTN\'T"')


def _bad_area_code(edit: Edit) -> Path:
    return _replace_after(edit, "1B", "ICS-1B-GATE-002", "area: gating", "area: search")


def _unknown_area_code_in_id(edit: Edit) -> Path:
    return edit("1A", "id: ICS-1A-REF-002", "id: ICS-1A-XYZ-002")


def _id_phase_mismatch(edit: Edit) -> Path:
    return edit("1A", "id: ICS-1A-REF-002", "id: ICS-1B-REF-002")


def _yaml_syntax(edit: Edit) -> Path:
    return edit("1A", "  - id: ICS-1A-REC-002\n", "  - id: [ICS-1A-REC-002\n")


def _unknown_capability(edit: Edit) -> Path:
    return _replace_after(edit, "1C", "ICS-1C-SEEN-001", "capability: seen_alone", "capability: seen_on_tuesdays")


def _unknown_field(edit: Edit) -> Path:
    return _replace_after(edit, "1A", "ICS-1A-REF-001", "level: MUST", "level: MUST\n    levle: MUST")


def _duplicate_key(edit: Edit) -> Path:
    return _replace_after(edit, "1A", "ICS-1A-REF-001", "level: MUST", "level: MUST\n    level: MAY")


def _replace_after(edit: Edit, phase: str, rid: str, old: str, new: str) -> Path:
    """Replace the first ``old`` after requirement ``rid`` in a phase file."""
    directory = edit(phase, f"id: {rid}\n", f"id: {rid}\n")
    path = directory / f"phase-{phase}.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index(f"id: {rid}\n")
    pos = text.index(old, start)
    path.write_text(text[:pos] + new + text[pos + len(old) :], encoding="utf-8")
    return directory


# (case, edit, fragments every message must contain)
CASES: list[tuple[str, Callable[[Edit], Path], tuple[str, ...]]] = [
    ("missing-field", _missing_field, ("phase-1A.yaml", "requirement ICS-1A-REC-006", "field 'rationale'", "missing")),
    ("missing-id", _missing_id, ("phase-1A.yaml", "requirement #1 (no id)", "field 'id'", "missing")),
    (
        "unknown-phase-field",
        _unknown_phase_field,
        ("phase-1B.yaml", "requirement ICS-1B-GATE-001", "field 'phase'", "1D"),
    ),
    ("unknown-phase-file", _unknown_phase_file, ("phase-1D.yaml", "unknown phase '1D'")),
    (
        "duplicate-in-file",
        _duplicate_in_file,
        ("phase-1B.yaml", "requirement ICS-1B-SRCH-001", "field 'id'", "duplicate"),
    ),
    (
        "duplicate-across-files",
        _duplicate_across_files,
        ("phase-1C.yaml", "requirement ICS-1B-SRCH-001", "field 'id': duplicate ID", "phase-1B.yaml"),
    ),
    (
        "bad-level",
        _bad_level,
        (
            "phase-1B.yaml",
            "requirement ICS-1B-SRCH-003",
            "field 'level'",
            "MUSTN'T",
            "is not one of ['MUST', 'SHOULD', 'MAY']",
        ),
    ),
    ("bad-area", _bad_area_code, ("phase-1B.yaml", "requirement ICS-1B-GATE-002", "field 'area'", "GATE")),
    (
        "unknown-area-code",
        _unknown_area_code_in_id,
        ("phase-1A.yaml", "requirement ICS-1A-XYZ-002", "field 'id'", "does not match"),
    ),
    ("id-phase-mismatch", _id_phase_mismatch, ("phase-1A.yaml", "requirement ICS-1B-REF-002", "field 'id'", "1A")),
    ("yaml-syntax", _yaml_syntax, ("phase-1A.yaml", "YAML syntax error", "line")),
    (
        "unknown-capability",
        _unknown_capability,
        ("phase-1C.yaml", "requirement ICS-1C-SEEN-001", "field 'capability'", "seen_on_tuesdays"),
    ),
    (
        "unknown-field",
        _unknown_field,
        ("phase-1A.yaml", "requirement ICS-1A-REF-001", "field 'levle'", "unknown field"),
    ),
    ("duplicate-key", _duplicate_key, ("phase-1A.yaml", "duplicate key 'level'", "line")),
]


@pytest.mark.parametrize(("case", "make", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_refused_by_api(case: str, make: Callable[[Edit], Path], fragments: tuple[str, ...], edit: Edit) -> None:
    directory = make(edit)
    with pytest.raises(SpecError) as info:
        load_catalogue(directory)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


@pytest.mark.parametrize(("case", "make", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_refused_by_specs_check(
    case: str, make: Callable[[Edit], Path], fragments: tuple[str, ...], edit: Edit, capsys: pytest.CaptureFixture[str]
) -> None:
    from conformance.cli import main

    directory = make(edit)
    assert main(["specs", "check", str(directory)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in captured.err


def test_specs_check_subprocess_no_traceback(edit: Edit) -> None:
    directory = _bad_level(edit)
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "specs", "check", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "requirement ICS-1B-SRCH-003: field 'level'" in proc.stderr


def test_errors_collected_together(edit: Edit) -> None:
    _bad_level(edit)
    _unknown_capability(edit)
    directory = _missing_field(edit)
    with pytest.raises(SpecError) as info:
        load_catalogue(directory)
    message = str(info.value)
    assert "3 problems" in message
    assert "ICS-1B-SRCH-003" in message and "ICS-1C-SEEN-001" in message and "ICS-1A-REC-006" in message


def test_many_errors_capped(edit: Edit) -> None:
    edit("1A", "level: ", "level: X", 100)
    directory = edit("1B", "level: ", "level: X", 100)
    with pytest.raises(SpecError) as info:
        load_catalogue(directory)
    message = str(info.value)
    assert "(62 problems)" in message
    assert "... and 12 more problem(s)" in message
    assert message.count("field 'level'") == 50


def test_retired_not_after_phase(edit: Edit) -> None:
    directory = _replace_after(edit, "1B", "ICS-1B-SRCH-004", "level: MUST", 'level: MUST\n    retired: "1A"')
    with pytest.raises(SpecError, match=r"requirement ICS-1B-SRCH-004: field 'retired'"):
        load_catalogue(directory)


def test_missing_phase_file(catalogue_copy: Path) -> None:
    (catalogue_copy / "phase-1B.yaml").unlink()
    with pytest.raises(SpecError, match="missing phase file.*phase-1B.yaml"):
        load_catalogue(catalogue_copy)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such catalogue directory"):
        load_catalogue(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="no catalogue files"):
        load_catalogue(tmp_path / "empty")


def test_not_utf8(catalogue_copy: Path) -> None:
    (catalogue_copy / "phase-1A.yaml").write_bytes(b"spec_version: \xff\xfe\n")
    with pytest.raises(SpecError, match=r"phase-1A.yaml: not valid UTF-8"):
        load_catalogue(catalogue_copy)


def test_top_level_not_mapping(catalogue_copy: Path) -> None:
    (catalogue_copy / "phase-1A.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"phase-1A.yaml: expected a mapping"):
        load_catalogue(catalogue_copy)


def test_spec_version_disagreement(edit: Edit) -> None:
    directory = edit("1C", 'spec_version: "2008.2"', 'spec_version: "2009.1"')
    with pytest.raises(SpecError, match="field 'spec_version': phase files disagree"):
        load_catalogue(directory)


def test_valid_copy_accepted_as_catalogue_or_specs_dir(catalogue_copy: Path) -> None:
    assert len(load_catalogue(catalogue_copy)) == len(load_catalogue())
    assert len(load_catalogue(catalogue_copy.parent)) == len(load_catalogue())  # holds catalogue/


def test_design_section_4_lists_exactly_the_openapi_error_codes() -> None:
    import re
    from pathlib import Path

    from conformance.spec.error_codes import error_codes

    design = (Path(__file__).resolve().parents[2] / "docs" / "design.md").read_text(encoding="utf-8")
    section = design[design.index("Errors: JSON") : design.index("Paging:")]
    assert set(re.findall(r"`([A-Z_]{4,})` \d{3}", section)) == error_codes()
