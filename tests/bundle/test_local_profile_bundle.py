"""Done-when of issue 15 part 1, with a real ``certify`` run: a council profile shortening the
initial-assessment timescale to 5 working days makes the reference (7) fail the local verdict
while the national verdict stays CERTIFIED; the terminal, result.json, certificate, report and
``verify`` show both, never merged; a forged local block or a swapped profile is refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bundle_samples import write_keyring
from forgery import copy_bundle, forge, load

from conformance.certificate.signing import generate_keypair
from conformance.certificate.verify import verify_bundle

PROFILE = Path(__file__).resolve().parents[2] / "fixtures" / "profiles" / "kirklees-5-day.yaml"


@pytest.fixture(scope="module")
def kirklees_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One signed certify run of the reference with the Kirklees profile (council key, keyring)."""
    root = tmp_path_factory.mktemp("kirklees")
    private, public = generate_keypair(root / "keys")
    keyring = write_keyring(root / "keyring.json", (public, "Kirklees ICS team", "council", {"council": "Kirklees"}))
    command = [
        sys.executable,
        "-m",
        "conformance",
        "certify",
        "--output",
        str(root / "reports"),
        "--seed",
        "15",
        "--local-profile",
        str(PROFILE),
        "--council",
        "Kirklees",
        "--sign-key",
        str(private),
        "--keyring",
        str(keyring),
    ]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=540, env=dict(os.environ))
    run_dir = next((root / "reports").glob("ics-1B-*"))
    bundle = next(p for p in run_dir.iterdir() if p.is_dir())
    return {
        "done": done,
        "result": json.loads((run_dir / "result.json").read_text()),
        "bundle": bundle,
        "zip": bundle.with_suffix(".zip"),
        "keyring": keyring,
        "private": private,
        "root": root,
    }


def test_national_certified_and_local_not_met_side_by_side_on_the_terminal(kirklees_run: dict[str, Any]) -> None:
    done = kirklees_run["done"]
    assert done.returncode == 0, done.stdout + done.stderr  # the exit code is the national verdict's
    assert "Phase 1B: CERTIFIED" in done.stdout
    assert "verdicts (never merged): national phase 1B: CERTIFIED   |   local: NOT MET" in done.stdout
    assert "local FAIL: LOCAL-KIRKLEES-001 (MUST)" in done.stdout
    assert "kirklees-5-day.yaml sha256 " in done.stdout
    assert "shorter than the national 7 working days" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_result_json_keeps_the_local_checks_out_of_the_national_verdict(kirklees_run: dict[str, Any]) -> None:
    import hashlib

    result = kirklees_run["result"]
    assert result["verdict"] == "CERTIFIED"
    assert result["counts"] == {"PASS": 62}
    assert not any(
        rid.startswith("LOCAL-") for r in result["requirements"] for c in r["checks"] for rid in c["requirements"]
    )
    block = result["local_profile"]
    assert (block["council"], block["code"], block["file"]) == ("Kirklees", "382", "kirklees-5-day.yaml")
    assert block["sha256"] == hashlib.sha256(PROFILE.read_bytes()).hexdigest()
    assert block["verdict"] == "NOT_MET"
    verdicts = {r["id"]: r["verdict"] for r in block["requirements"]}
    assert verdicts == {"LOCAL-KIRKLEES-001": "FAIL", "LOCAL-KIRKLEES-002": "PASS"}
    failing = block["requirements"][0]["checks"][0]
    assert "due_date '2008-06-11', expected 2008-06-09 (5 working days)" in failing["message"]
    assert failing["reproduce"].startswith("ics-conformance certify") and "--local-profile" in failing["reproduce"]
    assert [d["type"] for d in block["deviations"]] == ["added", "added", "not-needed"]
    assert block["not_needed"][0]["national_verdict"] == "PASS"


def test_the_report_shows_both_verdicts_the_profile_and_its_deviations(kirklees_run: dict[str, Any]) -> None:
    report = (kirklees_run["bundle"] / "report.html").read_text()
    assert re.search(r'id="phase-verdict">CERTIFIED', report)
    assert re.search(r'id="local-verdict">LOCAL: NOT MET', report)
    block = kirklees_run["result"]["local_profile"]
    assert f'<meta name="ics-local-profile-sha256" content="{block["sha256"]}">' in report
    assert "Deviations from the national catalogue" in report and "shorter than the national 7 working days" in report
    assert "LOCAL-KIRKLEES-001" in report and "kirklees-5-day.yaml" in report
    assert (kirklees_run["bundle"] / "local-profile.yaml").read_bytes() == PROFILE.read_bytes()


def test_verify_re_derives_the_local_verdict_from_the_carried_profile(kirklees_run: dict[str, Any]) -> None:
    outcome = verify_bundle(kirklees_run["zip"], keyring=kirklees_run["keyring"])
    assert outcome.ok, outcome.message
    assert outcome.verdict == "CERTIFIED" and outcome.assurance == "self-assessed"
    assert outcome.local_profile is not None and outcome.local_profile["verdict"] == "NOT_MET"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "verify",
            str(kirklees_run["zip"]),
            "--keyring",
            str(kirklees_run["keyring"]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict:   CERTIFIED" in done.stdout
    assert "local:     NOT_MET (never merged into the verdict above)" in done.stdout


def test_a_forged_local_verdict_is_refused(kirklees_run: dict[str, Any], tmp_path: Path) -> None:
    def met(certificate: dict[str, Any]) -> None:
        block = certificate["result"]["local_profile"]
        block["verdict"] = "MET"

    forged = forge(copy_bundle(kirklees_run["bundle"], tmp_path), kirklees_run["private"], met)
    outcome = verify_bundle(forged, keyring=kirklees_run["keyring"])
    assert not outcome.ok
    assert "local_profile verdict is not what the profile and the recorded local checks give" in str(outcome.problem)


def test_a_local_failure_turned_into_a_pass_is_refused(kirklees_run: dict[str, Any], tmp_path: Path) -> None:
    def passed(certificate: dict[str, Any]) -> None:
        block = certificate["result"]["local_profile"]
        for check in block["requirements"][0]["checks"]:
            check["verdict"], check["message"], check["reproduce"] = "PASS", None, None
        block["requirements"][0]["verdict"] = "PASS"

    forged = forge(copy_bundle(kirklees_run["bundle"], tmp_path), kirklees_run["private"], passed)
    outcome = verify_bundle(forged, keyring=kirklees_run["keyring"])
    assert not outcome.ok and "local_profile" in str(outcome.problem), outcome.message


def test_a_swapped_or_missing_profile_is_refused(kirklees_run: dict[str, Any], tmp_path: Path) -> None:
    swapped = PROFILE.read_bytes().replace(b"working_days: 5", b"working_days: 7")
    forged = forge(
        copy_bundle(kirklees_run["bundle"], tmp_path / "swapped"),
        kirklees_run["private"],
        files={"local-profile.yaml": swapped},
    )
    outcome = verify_bundle(forged, keyring=kirklees_run["keyring"])
    assert (outcome.bad_file, outcome.problem) == (
        "local-profile.yaml",
        "the carried profile is not the one the certificate records (sha256 differs)",
    )
    forged = forge(
        copy_bundle(kirklees_run["bundle"], tmp_path / "missing"),
        kirklees_run["private"],
        files={"local-profile.yaml": None},
    )
    outcome = verify_bundle(forged, keyring=kirklees_run["keyring"])
    assert outcome.bad_file == "local-profile.yaml" and "does not carry it" in str(outcome.problem)


def test_a_local_check_moved_into_the_national_verdict_is_refused(kirklees_run: dict[str, Any], tmp_path: Path) -> None:
    def moved(certificate: dict[str, Any]) -> None:
        result = certificate["result"]
        local_check = result["local_profile"]["requirements"][1]["checks"][0]
        target = next(r for r in result["requirements"] if r["id"] == "ICS-1A-TIME-001")
        target["checks"].append(dict(local_check, requirements=["ICS-1A-TIME-001", *local_check["requirements"]]))

    forged = forge(copy_bundle(kirklees_run["bundle"], tmp_path), kirklees_run["private"], moved)
    outcome = verify_bundle(forged, keyring=kirklees_run["keyring"])
    assert not outcome.ok, outcome.message
    assert "LOCAL-KIRKLEES-002" in str(outcome.problem)  # a national check may name national requirements only
    assert load(forged)["result"]["verdict"] == "CERTIFIED"  # the forgery did not even change the national verdict
