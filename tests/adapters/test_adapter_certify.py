"""Certification through a supplier adapter, end to end: real processes, real HTTP, real bundles.

``native_server.py`` (CaseBase 2) speaks only a legacy-shaped native API; the example adapter
``legacy`` (``conformance/adapters/legacy.py``) maps the canonical API onto it. Certified
through the adapter it is CERTIFIED; with a fault in the native server it is NOT CERTIFIED
with the requirement that fault breaks blamed, and nothing else.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

SERVER = Path(__file__).with_name("native_server.py")
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
SEED = 2008


@dataclass
class Native:
    """A running native server: base URL, admin API key, process."""

    url: str
    key: str
    process: subprocess.Popen[str]
    stderr: IO[str]

    def log_tail(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()[-3000:]


def _start(tmp_path: Path, *args: str) -> Native:
    key = f"casebase-{secrets.token_hex(12)}"
    stderr = (tmp_path / "native-stderr.log").open("w+", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=REPO,
        env={**os.environ, "CASEBASE_ADMIN_KEY": key},
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("listening on "):
        _stop(process)
        stderr.seek(0)
        pytest.fail(f"the native server did not start: {line!r}\n{stderr.read()[-3000:]}")
    return Native(line.split("listening on ", 1)[1].strip(), key, process, stderr)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def native_factory(tmp_path: Path) -> Iterator[Any]:
    """Start native servers (with faults given as arguments); every one is stopped afterwards."""
    started: list[Native] = []

    def start(*args: str) -> Native:
        directory = tmp_path / f"native-{len(started)}"
        directory.mkdir()
        server = _start(directory, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        _stop(server.process)
        server.stderr.close()


def _certify(native: Native, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    command = [sys.executable, "-m", "conformance", "certify", "--target", native.url, "--seed", str(SEED)]
    command += ["--output", str(out), "--quiet", *extra]
    env = {**os.environ, "ICS_ADMIN_TOKEN": native.key}
    done = subprocess.run(command, cwd=out.parent, capture_output=True, text=True, timeout=1800, env=env)
    runs = sorted(out.glob("ics-*/result.json"))
    assert len(runs) == 1, f"no result.json (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done, json.loads(runs[0].read_text(encoding="utf-8"))


def _failed(result: dict[str, Any]) -> list[str]:
    return [r["id"] for r in result["requirements"] if r["verdict"] in ("FAIL", "ERROR")]


def _installed_record() -> dict[str, Any]:
    from conformance.adapters.registry import load

    return load("legacy").record


def test_native_server_speaks_only_its_native_api(native_factory: Any) -> None:
    """Test equipment check: the canonical API is not there; the native one is, with its own conventions."""
    native = native_factory()
    key = {"X-Api-Key": native.key}
    with httpx.Client(base_url=native.url, timeout=10) as client:
        for path in ("/about", "/children", "/practitioners/me"):
            missing = client.get(path, headers={"Authorization": f"Bearer {native.key}", **key})
            assert missing.status_code == 404 and missing.json()["error"]["number"] == 1004
        assert client.get("/workers/self", headers={"Authorization": f"Bearer {native.key}"}).status_code == 401
        assert client.get("/workers/self", headers=key).json()["role"] == "sysadmin"
        worker = client.post("/workers", headers=key, json={"name": "Pat", "role": "social_worker"}).json()
        mine = {"X-Api-Key": worker["api_key"]}
        body = {"forename": "Ann", "surname": "Lee", "gender": "female", "dob": "03/02/2001"}
        created = client.post("/clients", headers=mine, json=body)
        assert created.status_code == 201 and created.json()["dob"] == "03/02/2001", created.text
        iso = client.post("/clients", headers=mine, json=dict(body, dob="2001-02-03"))
        assert iso.status_code == 400 and iso.json()["error"]["number"] == 2000  # dates are dd/mm/yyyy only
        page = client.get("/clients", headers=mine, params={"surname": "Lee", "offset": 0, "limit": 5}).json()
        assert set(page) == {"results", "offset", "limit", "count"} and page["count"] == 1
        assert client.get("/clients", headers=mine, params={"surname": "Lee", "limit": 0}).status_code == 400


def test_certify_through_the_adapter_is_certified(native_factory: Any, tmp_path: Path) -> None:
    native = native_factory()
    out = tmp_path / "reports"
    done, result = _certify(native, out, "--adapter", "legacy", "--phase", "1B")
    assert result["verdict"] == "CERTIFIED" and done.returncode == 0, (_failed(result), done.stdout[-3000:])
    assert {r["verdict"] for r in result["requirements"]} == {"PASS"}
    record = _installed_record()
    assert result["adapter"] == record
    assert result["target"]["about"]["supplier"] == "CaseBase Systems Ltd"  # the native system's identity
    line = f"tested through adapter legacy version 1.0.0 (sha256 {record['sha256']})"
    assert line in done.stdout
    bundle = next(out.glob("ics-*/*.zip")).with_suffix("")
    report = (bundle / "report.html").read_text(encoding="utf-8")
    assert f'<meta name="ics-adapter" content="{line.removeprefix("tested through adapter ")}">' in report


def test_signed_bundle_through_the_adapter_verifies_and_names_it(native_factory: Any, tmp_path: Path) -> None:
    native = native_factory()
    keys = tmp_path / "keys"
    subprocess.run(
        [sys.executable, "-m", "conformance", "keys", "generate", "--out", str(keys)],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "reports"
    done, result = _certify(
        native, out, "--adapter", "legacy", "--phase", "1A", "--sign-key", str(keys / "ed25519-private.pem")
    )
    assert result["verdict"] == "CERTIFIED", (_failed(result), done.stdout[-3000:])
    bundle = next(out.glob("ics-*/*.zip"))
    verified = subprocess.run(
        [sys.executable, "-m", "conformance", "verify", str(bundle), "--key", str(keys / "ed25519-public.pem")],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    sha = _installed_record()["sha256"]
    assert f"adapter:   tested through adapter legacy version 1.0.0 (sha256 {sha})" in verified.stdout
    assert "the adapter installed here under that name is the same code (same sha256)" in verified.stdout


def test_a_native_paging_fault_fails_the_paging_requirement_only(native_factory: Any, tmp_path: Path) -> None:
    native = native_factory("--fault", "offset-skips-one")
    done, result = _certify(native, tmp_path / "reports", "--adapter", "legacy", "--phase", "1B", "--no-bundle")
    assert result["verdict"] == "NOT_CERTIFIED" and done.returncode == 1, done.stdout[-3000:]
    assert _failed(result) == ["ICS-1B-SRCH-009"], native.log_tail()
    assert result["adapter"]["name"] == "legacy"


def test_a_native_gating_fault_fails_gating_through_pytest(native_factory: Any, tmp_path: Path) -> None:
    """The plugin's own option (``--ics-adapter``) takes the same path; the engine's gating bug is blamed."""
    native = native_factory("--reference-fault", "gating-latest-visit-only")
    report = tmp_path / "pytest-report"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", "-m", "gating"]
    command += ["--ics-target", native.url, "--ics-adapter", "legacy", "--ics-phase", "1B", "--ics-seed", str(SEED)]
    command += ["--ics-report", str(report), "-c", os.devnull, "--rootdir", str(tmp_path)]
    env = {**os.environ, "ICS_ADMIN_TOKEN": native.key}
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1800, env=env)
    result = json.loads((report / "result.json").read_text(encoding="utf-8"))
    assert result["verdict"] == "NOT_CERTIFIED", done.stdout[-3000:]
    assert _failed(result) == ["ICS-1B-GATE-001"], done.stdout[-3000:]
    assert result["adapter"]["name"] == "legacy"
    assert "tested through adapter legacy version 1.0.0" in done.stdout


def test_without_the_adapter_the_native_server_is_not_an_ics_api(native_factory: Any, tmp_path: Path) -> None:
    native = native_factory()
    done, result = _certify(native, tmp_path / "reports", "--phase", "1A", "--no-bundle")
    assert done.returncode == 3 and result["verdict"] == "INCONCLUSIVE"
    assert "adapter" not in result


def test_an_unknown_adapter_is_a_usage_error_naming_the_installed_ones(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "certify", "--target", "http://127.0.0.1:9", "--adapter", "acme"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "ICS_ADMIN_TOKEN": "x"},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "unknown adapter 'acme': installed adapters: legacy" in done.stderr
    assert not (tmp_path / "reports").exists()
