"""A misconfiguration is the operator's problem, never a supplier FAIL, and is found before any check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from robust_support import reference_process

TOKEN = "robust-admin-token-Qw8zP"


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def reference() -> str:
    with reference_process(TOKEN) as url:
        yield url


def test_wrong_admin_token_is_a_usage_error_before_any_check(tmp_path: Path, reference: str) -> None:
    started = time.monotonic()
    done = _run(
        tmp_path, "certify", "--target", reference, "--output", "out", "-n", "0", env={"ICS_ADMIN_TOKEN": "wrong"}
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refused the admin credential" in done.stderr and "Traceback" not in done.stderr
    assert "NOT CERTIFIED" not in done.stdout + done.stderr
    assert not list((tmp_path / "out").rglob("*.zip")) and not list((tmp_path / "out").rglob("result.json"))
    assert time.monotonic() - started < 60


def test_wrong_admin_token_through_pytest_is_a_usage_error(tmp_path: Path, reference: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--ics-target",
            reference,
            "--ics-phase",
            "1A",
            "--ics-report",
            str(tmp_path / "rep"),
            "-n",
            "0",
            "-q",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ICS_ADMIN_TOKEN": "wrong"},
    )
    assert done.returncode == 4, done.stdout + done.stderr  # pytest's usage error
    assert "refused the admin credential" in done.stdout + done.stderr
    assert not (tmp_path / "rep" / "result.json").exists()


def test_output_that_is_a_file_is_refused_before_the_first_check(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    started = time.monotonic()
    done = _run(tmp_path, "certify", "--output", "afile", "-n", "0")
    assert done.returncode == 2 and "--output" in done.stderr and "not a directory" in done.stderr, done.stderr
    assert "certifying" not in done.stdout and time.monotonic() - started < 20


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_is_refused_before_the_first_check(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    done = _run(tmp_path, "certify", "--output", str(locked / "sub"), "-n", "0")
    assert done.returncode == 2 and "--output" in done.stderr, done.stderr


def test_unwritable_output_is_refused_even_for_root(tmp_path: Path) -> None:
    """A path below a file can be created by nobody, root included."""
    (tmp_path / "afile").write_text("x")
    done = _run(tmp_path, "certify", "--output", "afile/sub", "-n", "0")
    assert done.returncode == 2 and "--output" in done.stderr and "certifying" not in done.stdout, done.stderr


def test_sign_key_of_the_wrong_type_is_refused_before_the_first_check(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "ec.pem").write_bytes(pem)
    done = _run(tmp_path, "certify", "--sign-key", "ec.pem", "--output", "out", "-n", "0")
    assert done.returncode == 2 and "Ed25519" in done.stderr and "certifying" not in done.stdout, done.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("target", "says"),
    [("http://[::1", "not a valid URL"), ("http://", "names no host"), ("http://127.0.0.1:99999", "Port out of range")],
)
def test_malformed_target_is_a_clear_usage_error(tmp_path: Path, target: str, says: str) -> None:
    done = _run(tmp_path, "certify", "--target", target, "--output", "out", env={"ICS_ADMIN_TOKEN": TOKEN})
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr + done.stdout and "unreachable" not in done.stderr


def test_malformed_target_through_pytest_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--ics-target", "http://[::1", "-n", "0", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ICS_ADMIN_TOKEN": TOKEN},
    )
    assert done.returncode == 4 and "INTERNALERROR" not in done.stdout + done.stderr, done.stdout + done.stderr


def test_validate_export_fails_when_it_cannot_write_result(tmp_path: Path) -> None:
    from conformance.export.generate import generate_export

    export = generate_export(tmp_path / "export", children=5, seed=1)
    assert _run(tmp_path, "validate-export", str(export), "--output", "out").returncode == 0  # a good export
    (tmp_path / "afile").write_text("x")
    done = _run(tmp_path, "validate-export", str(export), "--output", "afile")
    assert done.returncode == 2 and "--output afile: not a directory" in done.stderr, done.stdout + done.stderr


def test_validate_export_fails_when_writing_result_fails_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The output directory was fine when checked, the write failed later (disk full): still not a success."""
    from conformance.cli import main, validate_export
    from conformance.export.generate import generate_export

    export = generate_export(tmp_path / "export", children=5, seed=1)

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(validate_export, "_write_result", full_disk)
    code = main(["validate-export", str(export), "--output", str(tmp_path / "out"), "--workers", "1"])
    assert code == 2 and "result.json not written" in capsys.readouterr().err


def test_validate_export_of_an_empty_directory_passes_nothing_it_could_not_judge(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = _run(tmp_path, "validate-export", "empty", "--output", "out")
    assert done.returncode in (1, 3), done.stdout + done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    verdicts = {r["id"]: r["verdict"] for r in result["requirements"]}
    for n in range(2, 9):
        assert verdicts[f"ICS-1A-EXP-00{n}"] != "PASS", (n, verdicts)
    assert not any(line.lstrip().startswith("PASS") for line in done.stdout.splitlines()), done.stdout


def test_notification_latency_above_the_maximum_is_refused_not_slept(tmp_path: Path, reference: str) -> None:
    from conformance.spec.capabilities import MAX_NOTIFICATION_LATENCY

    caps = tmp_path / "caps.json"
    caps.write_text(json.dumps({"notification_latency_seconds": 3600}))
    started = time.monotonic()
    done = _run(
        tmp_path,
        "certify",
        "--target",
        reference,
        "--capabilities",
        str(caps),
        "--allow-capability-override",  # a larger bound weakens the declaration: allowed on purpose here
        "--output",
        "out",
        "-n",
        "0",
        "--no-bundle",
        env={"ICS_ADMIN_TOKEN": TOKEN},
    )
    assert time.monotonic() - started < 60
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"maximum of {MAX_NOTIFICATION_LATENCY}" in done.stdout + done.stderr
    result = json.loads(next((tmp_path / "out").rglob("result.json")).read_text())
    assert result["verdict"] == "INCONCLUSIVE" and any("notification_latency_seconds" in e for e in result["errors"])
