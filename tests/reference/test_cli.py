"""``ics-conformance serve-reference``: fault listing, a real server process, clear usage errors."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conformance.cli import main
from conformance.reference import FAULTS

COMMAND = [sys.executable, "-m", "conformance", "serve-reference"]


def test_list_faults(capsys) -> None:
    assert main(["serve-reference", "--list-faults"]) == 0
    out = capsys.readouterr().out
    for fault in FAULTS.values():
        assert fault.name in out and fault.description in out and ", ".join(fault.targets) in out


def test_unknown_fault_is_a_usage_error(capsys) -> None:
    assert main(["serve-reference", "--fault", "no-such-fault"]) == 2
    err = capsys.readouterr().err
    assert "no-such-fault" in err and "search-accent-sensitive" in err and "Traceback" not in err


def test_port_in_use_is_a_usage_error(tmp_path: Path, capsys) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        os.environ["ICS_ADMIN_TOKEN"] = "test-token-0123456789"
        try:
            assert main(["serve-reference", "--port", str(port)]) == 2
        finally:
            del os.environ["ICS_ADMIN_TOKEN"]
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serves_about_and_writes_a_private_token(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "ICS_ADMIN_TOKEN"}
    process = subprocess.Popen(
        [*COMMAND, "--port", str(port), "--fault", "notify-author"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                about = httpx.get(f"http://127.0.0.1:{port}/about", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, process.communicate()
                time.sleep(0.1)
        assert about.status_code == 200 and about.json()["spec_versions"] == ["2008.1", "2008.2"]
        token_file = tmp_path / "ics-reference-admin-token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        me = httpx.get(f"http://127.0.0.1:{port}/practitioners/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["role"] == "admin"
    finally:
        process.terminate()
        out, err = process.communicate(timeout=15)
    assert str(tmp_path / "ics-reference-admin-token") in out
    assert token not in out and token not in err
