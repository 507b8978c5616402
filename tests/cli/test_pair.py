"""Pair runs (phase 1C) through ``certify`` and ``validate-export --kind transfer``: options, refusals, an external peer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.reference import serve

PEER_TOKEN = "peer-admin-token-Qw3e4r5t"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--phase", "1B", "--peer-reference"], "phase 1C"),
        (["--phase", "1C", "--peer-target", "http://127.0.0.1:9", "--peer-reference"], "built-in peer"),
        (["--phase", "1C", "--peer-target", "ftp://example"], "http:// or https://"),
        (["--phase", "1C", "--peer-target", "http://127.0.0.1:9"], "no admin credential for --peer-target"),
        (["--phase", "1C", "--peer-reference-fault", "no-such-fault"], "unknown reference fault"),
    ],
)
def test_pair_options_refused_before_anything_runs(
    args: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ICS_PEER_ADMIN_TOKEN", raising=False)
    assert main(["certify", "--output", str(tmp_path), *args]) == 2
    assert words in capsys.readouterr().err


def test_validate_export_kind_transfer_is_phase_1c(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-export", str(tmp_path), "--kind", "transfer", "--phase", "1B"]) == 2
    assert "phase 1C" in capsys.readouterr().err


def test_pair_with_an_external_peer(tmp_path: Path) -> None:
    """The transfer checks against a peer given by URL and token file; the peer's verdict is its own."""
    token_file = tmp_path / "peer-token"
    token_file.write_text(PEER_TOKEN + "\n")
    with serve(admin_token=PEER_TOKEN, council="Council Elsewhere") as peer:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "conformance",
                "certify",
                "--phase",
                "1C",
                "--peer-target",
                peer.url,
                "--peer-token-file",
                str(token_file),
                "-k",
                "test_transfer.py",
                "-n",
                "0",
                "--no-bundle",
                "--quiet",
                "--output",
                str(tmp_path / "reports"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            env={k: v for k, v in os.environ.items() if k != "ICS_PEER_ADMIN_TOKEN"},
        )
    result = json.loads(next((tmp_path / "reports").glob("ics-*/result.json")).read_text())
    from conformance.results.result import result_problems

    assert not result_problems(result), result_problems(result)[:5]
    assert result["peer"]["target"]["url"] == peer.url and result["peer"]["target"]["builtin_reference"] is False
    assert result["peer"]["target"]["about"]["council"] == "Council Elsewhere"
    assert result["peer"]["verdict"] == "CERTIFIED", done.stdout[-2000:]
    assert "Council Elsewhere" in done.stdout and "pair run" in done.stdout
    transfer = [r for r in result["requirements"] if r["area"] == "transfer"]
    assert transfer and all(r["verdict"] == "PASS" for r in transfer)
    assert PEER_TOKEN not in "".join(
        p.read_text(errors="replace") for p in (tmp_path / "reports").rglob("*") if p.is_file()
    )


def test_pytest_plugin_refuses_a_peer_outside_1c(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--ics-phase", "1B", "--ics-peer-reference", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 4 and "phase 1C pair runs" in done.stderr + done.stdout
