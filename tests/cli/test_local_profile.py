"""``certify --local-profile`` / ``--local-checks`` and ``pytest --ics-local-profile`` with real runs of the reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PROFILES = Path(__file__).resolve().parents[2] / "fixtures" / "profiles"

CUSTOM_PROFILE = """\
format: ics-conformance/local-profile/1
council: {name: Testshire}
local_requirements:
  - id: LOCAL-TESTSHIRE-001
    statement: A child created by a practitioner can be read back by the council's duty team.
    level: MUST
    reason: The duty team's own procedure.
    check: {kind: custom}
  - id: LOCAL-TESTSHIRE-002
    statement: The council's own finding, judged by its own check.
    level: SHOULD
    reason: Shows a failing council check.
    check: {kind: custom}
  - id: LOCAL-TESTSHIRE-003
    statement: A council check may not blame a national requirement.
    level: SHOULD
    reason: Shows the guard.
    check: {kind: custom}
"""

COUNCIL_CHECKS = """\
import pytest

from conformance.checking.checks import expect_status, fail


@pytest.mark.ics_local("LOCAL-TESTSHIRE-001")
def test_council_duty_team_reads_a_new_child(local_world, local_requirement):
    assert local_requirement.id == "LOCAL-TESTSHIRE-001"
    child = local_world.child(family_name="Councilcheck")
    reader = local_world.practitioner("read_only")
    expect_status(
        local_world.client.get(f"/children/{child['id']}", token=reader.token), 200, local_requirement.id, "read back"
    )


@pytest.mark.ics_local("LOCAL-TESTSHIRE-002")
def test_council_own_finding(local_world):
    fail("LOCAL-TESTSHIRE-002", "the council's own finding")


@pytest.mark.ics_local("LOCAL-TESTSHIRE-003")
def test_council_blames_a_national_requirement(local_world):
    fail("ICS-1A-REC-001", "a local check cannot touch the national verdict")
"""


def _run(cwd: Path, *args: str, timeout: float = 540) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )


def _result(root: Path) -> dict:
    (path,) = sorted(root.glob("ics-*/result.json"))
    result = json.loads(path.read_text())
    from conformance.results.result import result_problems

    assert not result_problems(result), result_problems(result)[:5]
    return result


def test_the_leeds_profile_is_met_by_the_reference_and_the_national_verdict_is_unchanged(tmp_path: Path) -> None:
    done = _run(
        tmp_path,
        "certify",
        "--output",
        str(tmp_path / "out"),
        "--seed",
        "3",
        "--local-profile",
        str(PROFILES / "leeds.yaml"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "national phase 1B: CERTIFIED   |   local: MET" in done.stdout
    result = _result(tmp_path / "out")
    assert result["verdict"] == "CERTIFIED" and result["counts"] == {"PASS": 62}
    block = result["local_profile"]
    assert block["verdict"] == "MET" and (block["council"], block["code"]) == ("Leeds", "383")
    assert {r["id"]: r["verdict"] for r in block["requirements"]} == {
        "LOCAL-LEEDS-001": "PASS",
        "LOCAL-LEEDS-002": "PASS",
        "LOCAL-LEEDS-003": "PASS",
    }
    assert [(c["capability"], c["verdict"]) for c in block["capabilities"]] == [
        ("restricted_notes", "PASS"),
        ("notification_latency_seconds", "PASS"),
    ]
    assert all(len(r["checks"]) == 1 for r in block["requirements"])
    assert (next((tmp_path / "out").glob("ics-*/ics-*/local-profile.yaml"))).read_bytes() == (
        PROFILES / "leeds.yaml"
    ).read_bytes()


def test_a_profile_relaxing_a_must_is_a_usage_error_before_anything_runs(tmp_path: Path) -> None:
    profile = tmp_path / "lax.yaml"
    profile.write_text(
        "format: ics-conformance/local-profile/1\ncouncil: {name: Leeds}\n"
        "not_needed:\n  - {id: ICS-1B-SRCH-001, reason: our staff type names exactly}\n"
    )
    done = _run(tmp_path, "certify", "--output", str(tmp_path / "out"), "--local-profile", str(profile), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "local profile lax.yaml: not_needed[0].id: ICS-1B-SRCH-001 is a MUST" in done.stderr
    assert "waiver" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing ran, nothing written


def test_a_malformed_profile_names_file_line_and_problem(tmp_path: Path) -> None:
    profile = tmp_path / "broken.yaml"
    profile.write_text("format: ics-conformance/local-profile/1\ncouncil: {name: Leeds\n")
    done = _run(tmp_path, "certify", "--local-profile", str(profile), timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("ics-conformance: error: local profile broken.yaml: not valid YAML at line 3")
    done = _run(tmp_path, "certify", "--local-checks", str(tmp_path), timeout=60)
    assert done.returncode == 2 and "--local-checks needs --local-profile" in done.stderr


def test_council_checks_land_in_the_local_verdict_only(tmp_path: Path) -> None:
    (tmp_path / "testshire.yaml").write_text(CUSTOM_PROFILE)
    checks = tmp_path / "council_checks"
    checks.mkdir()
    (checks / "test_council_checks.py").write_text(COUNCIL_CHECKS)
    done = _run(
        tmp_path, "certify", "--output", str(tmp_path / "out"), "-n", "0", "-k", "test_council",
        "--local-profile", str(tmp_path / "testshire.yaml"), "--local-checks", str(checks),
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr  # only council checks selected: national INCONCLUSIVE
    result = _result(tmp_path / "out")
    assert result["counts"] == {"NOT_RUN": 62}  # none of the council checks reached the national requirements
    block = result["local_profile"]
    verdicts = {r["id"]: r["verdict"] for r in block["requirements"]}
    assert verdicts == {"LOCAL-TESTSHIRE-001": "PASS", "LOCAL-TESTSHIRE-002": "FAIL", "LOCAL-TESTSHIRE-003": "ERROR"}
    blamed = block["requirements"][2]["checks"][0]["message"]
    assert "blamed requirement IDs the local profile does not hold" in blamed and "ICS-1A-REC-001" in blamed
    assert block["verdict"] == "INCONCLUSIVE"  # an ERROR in a local check is never a local verdict
    assert "local ERROR: LOCAL-TESTSHIRE-003" in done.stdout


def test_a_council_check_naming_an_undefined_local_id_is_refused(tmp_path: Path) -> None:
    (tmp_path / "testshire.yaml").write_text(CUSTOM_PROFILE)
    (tmp_path / "test_typo.py").write_text(
        textwrap.dedent(
            """\
            import pytest

            @pytest.mark.ics_local("LOCAL-TESTSHIRE-009")
            def test_typo(local_world):
                pass
            """
        )
    )
    done = _run(
        tmp_path, "certify", "--output", str(tmp_path / "out"), "--local-profile", str(tmp_path / "testshire.yaml"),
        "--local-checks", str(tmp_path / "test_typo.py"), timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "test_typo.py:3: a check marked ics_local('LOCAL-TESTSHIRE-009') names a local requirement" in done.stderr
    assert "LOCAL-TESTSHIRE-001, LOCAL-TESTSHIRE-002, LOCAL-TESTSHIRE-003" in done.stderr


def test_the_pytest_option_gives_the_same_local_verdict(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "--ics-phase", "1B",
            "--ics-local-profile", str(PROFILES / "kirklees-5-day.yaml"), "-k", "test_local_timescale",
            "--ics-report", str(tmp_path / "report"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=540, env=dict(os.environ),
    )  # fmt: skip
    assert "local: NOT MET" in done.stdout, done.stdout + done.stderr
    result = json.loads((tmp_path / "report" / "result.json").read_text())
    assert result["local_profile"]["requirements"][0]["verdict"] == "FAIL"
    assert result["local_profile"]["requirements"][1]["verdict"] == "NOT_RUN"  # deselected by -k
    assert not any(r["checks"] for r in result["requirements"])  # nothing national ran


def test_an_unreachable_target_leaves_both_verdicts_inconclusive(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        [
            sys.executable, "-m", "conformance", "certify", "--output", str(tmp_path / "out"),
            "--target", f"http://127.0.0.1:{port}", "--local-profile", str(PROFILES / "leeds.yaml"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, "ICS_ADMIN_TOKEN": "t0ken-local"},
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    block = _result(tmp_path / "out")["local_profile"]
    assert block["verdict"] == "INCONCLUSIVE" and "unreachable" in block["errors"][0]
    assert "local: INCONCLUSIVE" in done.stdout


def test_the_generic_local_checks_fail_on_the_faults_they_are_about(tmp_path: Path) -> None:
    """Each generic check judges something: a fault in what it reuses fails the local requirement."""
    done = _run(
        tmp_path, "certify", "--output", str(tmp_path / "leeds"), "-n", "0", "-k", "test_local",
        "--reference-fault", "search-ignores-dob", "--reference-fault", "notify-delayed",
        "--local-profile", str(PROFILES / "leeds.yaml"),
    )  # fmt: skip
    block = _result(tmp_path / "leeds")["local_profile"]
    verdicts = {r["id"]: r["verdict"] for r in block["requirements"]}
    assert verdicts == {"LOCAL-LEEDS-001": "FAIL", "LOCAL-LEEDS-002": "FAIL", "LOCAL-LEEDS-003": "PASS"}, done.stdout
    messages = {r["id"]: r["checks"][0]["message"] for r in block["requirements"]}
    assert "the local bound is 1 s" in messages["LOCAL-LEEDS-001"]
    assert "returned the child(ren) differing in date_of_birth" in messages["LOCAL-LEEDS-002"]
    done = _run(
        tmp_path, "certify", "--output", str(tmp_path / "kirklees"), "-n", "0", "-k", "test_local",
        "--reference-fault", "referral-loses-source", "--local-profile", str(PROFILES / "kirklees-5-day.yaml"),
    )  # fmt: skip
    block = _result(tmp_path / "kirklees")["local_profile"]
    failing = block["requirements"][1]
    assert (failing["id"], failing["verdict"]) == ("LOCAL-KIRKLEES-002", "FAIL"), done.stdout
    assert "referral.source 'police' read back as 'other'" in failing["checks"][0]["message"]
