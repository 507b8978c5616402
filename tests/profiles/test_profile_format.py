"""The local profile format: the examples load, and every bad profile is refused naming file, path and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance.errors import UsageError
from conformance.profiles import load_profile
from conformance.profiles.verdict import deviations

EXAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "profiles"


def _requirement(rid: str = "LOCAL-TESTSHIRE-001", **check: object) -> dict[str, object]:
    return {
        "id": rid,
        "statement": "A local statement of what the council needs.",
        "level": "MUST",
        "reason": "The council's own procedure relies on it.",
        "check": check or {"kind": "timescale", "assessment": "initial", "working_days": 5},
    }


def _write(tmp_path: Path, document: object, name: str = "profile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document), encoding="utf-8")
    return path


def _profile(**extra: object) -> dict[str, object]:
    return {"format": "ics-conformance/local-profile/1", "council": {"name": "Testshire"}, **extra}


def _refused(tmp_path: Path, document: object) -> str:
    with pytest.raises(UsageError) as caught:
        load_profile(_write(tmp_path, document))
    message = str(caught.value)
    assert "profile.yaml" in message  # always names the file
    return message


@pytest.mark.parametrize("name", ["leeds.yaml", "kirklees-5-day.yaml"])
def test_the_examples_load_with_their_council_code_and_digest(name: str) -> None:
    import hashlib

    profile = load_profile(EXAMPLES / name)
    assert profile.code in ("383", "382")
    assert profile.sha256 == hashlib.sha256((EXAMPLES / name).read_bytes()).hexdigest()
    assert profile.requirements and all(r.reason and r.statement for r in profile.requirements)
    assert len(deviations(profile)) == len(profile.requirements) + len(profile.not_needed) + len(profile.capabilities)


def test_the_kirklees_example_shortens_the_initial_assessment_timescale() -> None:
    profile = load_profile(EXAMPLES / "kirklees-5-day.yaml")
    timescale = profile.of_kind("timescale")[0]
    assert dict(timescale.params) == {"assessment": "initial", "working_days": 5}
    texts = [d["text"] for d in deviations(profile)]
    assert any("shorter than the national 7 working days" in t for t in texts), texts


def test_a_council_code_is_filled_from_the_registry_list_and_checked_against_it(tmp_path: Path) -> None:
    assert load_profile(_write(tmp_path, _profile(council={"name": "leeds"}))).code == "383"
    message = _refused(tmp_path, _profile(council={"name": "Leeds", "code": "384"}))
    assert "council.code: 384 is 'Wakefield'" in message
    assert "'999' is not a council" in _refused(tmp_path, _profile(council={"name": "Nowhere", "code": "999"}))


def test_a_not_needed_must_is_refused_pointing_to_waivers(tmp_path: Path) -> None:
    message = _refused(tmp_path, _profile(not_needed=[{"id": "ICS-1A-REC-001", "reason": "we do not need it"}]))
    assert "not_needed[0].id: ICS-1A-REC-001 is a MUST" in message
    assert "never relax a MUST" in message and "waiver" in message


def test_a_not_needed_should_is_accepted_with_its_level(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, _profile(not_needed=[{"id": "ICS-1A-REC-007", "reason": "batch fixes"}])))
    assert [(n.id, n.level) for n in profile.not_needed] == [("ICS-1A-REC-007", "SHOULD")]


def test_a_longer_local_timescale_would_relax_a_must_and_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path,
        _profile(local_requirements=[_requirement(kind="timescale", assessment="initial", working_days=9)]),
    )
    assert "local_requirements[0].check.working_days: 9 is longer than the national 7" in message
    assert "ICS-1A-TIME-001" in message and "waiver" in message


def test_switching_a_capability_off_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, _profile(capabilities=[{"capability": "audit", "value": False, "reason": "we never audit"}])
    )
    assert "capabilities[0].value" in message and "never switch one off" in message


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("format: [\n", "not valid YAML at line"),
        ("format: a\nformat: b\n", "duplicate key 'format'"),
        ("- a list\n", "expected a mapping at the top level"),
        (_profile(local_requirements=[_requirement(kind="timescal")]), "unknown check kind 'timescal'"),
        (
            _profile(local_requirements=[_requirement(kind="notification-latency", seconds=0)]),
            "local_requirements[0].check.seconds: 0 is less than or equal to the minimum of 0",
        ),
        (
            _profile(local_requirements=[_requirement(kind="notification-latency", seconds="fast")]),
            "local_requirements[0].check.seconds: 'fast' is not of type 'number'",
        ),
        (
            _profile(local_requirements=[_requirement(kind="timescale", assessment="initial", working_days=0)]),
            "check.working_days: 0 is less than the minimum of 1",
        ),
        (
            _profile(local_requirements=[_requirement(kind="search-criterion", criteria=["gender", "date_of_birth"])]),
            "would match children the check did not create",
        ),
        (
            _profile(local_requirements=[_requirement(kind="code-list", field="referral.source", codes=["telepathy"])]),
            "are not national referral sources",
        ),
        (_profile(local_requirements=[_requirement("LOCAL-1")]), "local_requirements[0].id: 'LOCAL-1' does not match"),
        (
            _profile(local_requirements=[_requirement(), _requirement()]),
            "LOCAL-TESTSHIRE-001 is listed twice",
        ),
        (
            _profile(local_requirements=[_requirement("LOCAL-A-001"), _requirement("LOCAL-B-002")]),
            "several council prefixes",
        ),
        (
            _profile(not_needed=[{"id": "ICS-1A-REC-070", "reason": "no such thing"}]),
            "not_needed[0].id: ICS-1A-REC-070 is not a requirement of the national catalogue (did you mean",
        ),
        (
            _profile(local_requirements=[dict(_requirement(), reason=None)]),
            "local_requirements[0].reason: None is not of type 'string'",
        ),
        (_profile(colour="blue"), "unknown field(s) ('colour' was unexpected)"),
        ({"council": {"name": "X"}}, "'format' is a required property"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_path_and_the_problem(
    tmp_path: Path, document: object, expected: str
) -> None:
    assert expected in _refused(tmp_path, document)


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_profile(tmp_path / "absent.yaml")


def test_specs_profile_validates_and_lists_the_deviations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main

    assert main(["specs", "profile", str(EXAMPLES / "kirklees-5-day.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: local profile kirklees-5-day.yaml of Kirklees (382), sha256 ")
    assert "shorter than the national 7 working days" in out
    bad = _write(tmp_path, _profile(not_needed=[{"id": "ICS-1B-NOTIF-001", "reason": "no alerts here"}]))
    assert main(["specs", "profile", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "profile.yaml: not_needed[0].id: ICS-1B-NOTIF-001 is a MUST" in err and "Traceback" not in err
