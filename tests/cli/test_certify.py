"""``ics-conformance certify``: exit codes, run directory, progress, no credential leaks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.cli import main

TOKEN = "certify-admin-token-Xy7"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _certify(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], float]:
    command = [sys.executable, "-m", "conformance", "certify", "--output", str(tmp_path / "reports"), *args]
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    return done, time.monotonic() - started


def _result(tmp_path: Path) -> dict:
    runs = sorted((tmp_path / "reports").glob("ics-*/result.json"))
    assert len(runs) == 1, runs
    result = json.loads(runs[0].read_text())
    from conformance.results.result import result_problems

    assert not result_problems(result), result_problems(result)[:10]  # the published shape
    return result


def _all_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file() and p.suffix != ".zip")


def test_dead_port_is_inconclusive_within_30_seconds(tmp_path: Path) -> None:
    port = _free_port()
    (tmp_path / "conftest.py").write_text("raise RuntimeError('a user conftest must not be loaded')\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -x --bogus-option\n")
    done, elapsed = _certify(
        tmp_path, "--phase", "1B", "--target", f"http://127.0.0.1:{port}", env={"ICS_ADMIN_TOKEN": TOKEN}, timeout=60
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert elapsed < 30
    assert "INCONCLUSIVE" in done.stdout and "unreachable" in done.stdout
    result = _result(tmp_path)
    assert result["verdict"] == "INCONCLUSIVE" and "unreachable" in result["errors"][0]
    run_dir = next((tmp_path / "reports").glob("ics-1B-*-r*"))
    assert run_dir.name.startswith("ics-1B-") and run_dir.name.endswith(result["run_id"])
    assert TOKEN not in done.stdout + done.stderr + _all_text(tmp_path / "reports")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--phase", "9Z"], "invalid choice"),
        (["--phase", "1B", "--target", "http://127.0.0.1:9"], "no admin credential"),
        (
            ["--phase", "1B", "--target", "http://127.0.0.1:9", "--reference-fault", "x"],
            "only to the built-in reference",
        ),
        (["--phase", "1B", "--waivers", "w.yaml"], "--waivers w.yaml: no such file"),
        (["--phase", "1B", "-n", "many"], "-n many"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], needle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ICS_ADMIN_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["certify", "--output", str(tmp_path / "out"), *argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    assert needle in captured.err
    assert not (tmp_path / "out").exists()


def test_unknown_fault_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["certify", "--phase", "1B", "--output", str(tmp_path / "out"), "--reference-fault", "no-such-fault"])
    assert code == 2
    assert "no-such-fault" in capsys.readouterr().err


def test_clean_reference_is_certified(tmp_path: Path) -> None:
    done, elapsed = _certify(tmp_path, "--phase", "1B", "--profile", "quick", "-n", "2", timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Phase 1B: CERTIFIED" in done.stdout
    assert "search" in done.stdout  # a progress / summary line per area
    result = _result(tmp_path)
    assert result["verdict"] == "CERTIFIED" and result["profile"] == "quick"
    assert result["command"].startswith("ics-conformance certify --phase 1B --profile quick --seed ")


def test_search_fault_is_not_certified(tmp_path: Path) -> None:
    done, _ = _certify(
        tmp_path,
        "--phase",
        "1B",
        "--reference-fault",
        "search-accent-sensitive",
        "-k",
        "test_search.py and ICS-1B-SRCH-00",
        "--seed",
        "11",
        "-n",
        "0",
        timeout=300,
    )
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    result = _result(tmp_path)
    assert result["verdict"] == "NOT_CERTIFIED"
    failed = [r for r in result["requirements"] if r["verdict"] == "FAIL"]
    assert [r["id"] for r in failed] == ["ICS-1B-SRCH-001"], [
        (r["id"], r["verdict"]) for r in result["requirements"] if r["checks"]
    ]
    check = next(c for r in failed for c in r["checks"] if c["verdict"] == "FAIL")
    assert check["reproduce"].startswith(
        "ics-conformance certify --phase 1B --profile quick --seed 11 --reference-fault search-accent-sensitive -k "
    )
    assert "Phase 1B: NOT CERTIFIED" in done.stdout and "FAIL: ICS-1B-SRCH-001" in done.stdout
