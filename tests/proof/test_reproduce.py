"""Proof that the reproduce commands reproduce: each is shell, and each FAILs its requirement again.

A failing run of the built-in reference with a fault is certified, then every reproduce
command of its failing checks is checked to be shell (``bash -n``) and run as written (``ics-conformance`` as ``python -m
conformance``, plus an output directory) and must FAIL the same requirements. The CI sample
is ``gating-off`` (its ICS-1A-EXP-008 failure comes from records the gating checks made, and
one of its failing checks is a Hypothesis state machine), rerunning the export checks, the
Hypothesis checks and one scenario check; every command, and more faults, are marked ``slow``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLED = ("gating-off",)
SLOW = ("notify-duplicate", "search-case-sensitive", "upn-no-check-letter")


def _run(argv: list[str], tmp_path: Path) -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if k != "ICS_ADMIN_TOKEN"}
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", *argv, "--output", str(out), "--no-bundle", "--quiet"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    results = sorted(out.glob("*/result.json"))
    assert results, f"{argv}: no result.json (exit {proc.returncode})\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.returncode, json.loads(results[-1].read_text())


def _failing_checks(result: dict) -> dict[str, dict]:
    checks: dict[str, dict] = {}
    for requirement in result["requirements"]:
        for check in requirement["checks"]:
            if check["verdict"] == "FAIL":
                checks[check["id"]] = check
    return checks


def _failed(check: dict) -> set[str]:
    return set(check["failed_requirements"] or check["requirements"])


def _sample(failing: dict[str, dict]) -> dict[str, dict]:
    """The CI sample of a run's failing checks: every export check (its failure comes from other checks'
    records), every Hypothesis check (replayed by the seed alone) and one scenario check."""
    export = {k: c for k, c in failing.items() if Path(k.split("::")[0]).name.startswith("test_export")}
    stateful = {k: c for k, c in failing.items() if c["kind"] == "property"}
    scenario = [k for k, c in sorted(failing.items()) if k not in export and k not in stateful][:1]
    return {**export, **stateful, **{k: failing[k] for k in scenario}}


@pytest.mark.timeout(2400)
@pytest.mark.parametrize(
    ("fault", "every"),
    [
        *((f, False) for f in SAMPLED),
        *(pytest.param(f, True, marks=pytest.mark.slow) for f in (*SAMPLED, *SLOW)),
    ],
)
def test_every_reproduce_command_fails_its_requirements_again(fault: str, every: bool, tmp_path: Path) -> None:
    code, result = _run(["certify", "--phase", "1B", "--seed", "1", "--reference-fault", fault], tmp_path)
    assert code == 1, f"{fault}: the run was expected to be NOT CERTIFIED (exit {code})"
    failing = _failing_checks(result)
    assert failing, f"{fault}: no failing check"
    for check_id, check in sorted(failing.items()):  # every command is one line of shell
        command = check["reproduce"]
        assert command and "\n" not in command, f"{check_id}: not one command line: {command!r}"
        syntax = subprocess.run(["bash", "-n"], input=command, text=True, capture_output=True)
        assert syntax.returncode == 0, f"{check_id}: not shell: {command!r}: {syntax.stderr}"
    rerun = failing if every else _sample(failing)
    assert any(Path(k.split("::")[0]).name == "test_export.py" for k in rerun) or fault != "gating-off"
    for check_id, check in sorted(rerun.items()):  # and FAILs its requirements again
        command = check["reproduce"]
        argv = shlex.split(command)
        assert argv[:2] == ["ics-conformance", "certify"], command
        again_code, again = _run(argv[1:], tmp_path)
        rerun = {r["id"]: r["verdict"] for r in again["requirements"]}
        for requirement in sorted(_failed(check)):
            assert rerun.get(requirement) == "FAIL", (
                f"{check_id}: {command}\n  did not FAIL {requirement} again (got {rerun.get(requirement)})"
            )
        assert again_code == 1, f"{check_id}: {command} exited {again_code}"
