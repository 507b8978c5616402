"""Every exchange with a target has a total deadline and a maximum size; a target that breaks either
makes the affected checks ERROR (INCONCLUSIVE, never FAIL) and the run ends promptly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from robust_support import hostile_server, proxy, reference_process, slow_paths

from conformance.checking.client import Client, DeadlineExceeded, ResponseTooLarge, TargetUnavailable

TOKEN = "bounded-admin-token-Zk3p"


def test_a_byte_a_second_answer_hits_the_total_deadline() -> None:
    with hostile_server() as url, Client(url, timeout=5, deadline=2) as client:
        assert client.get("/fine").status_code == 200
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="2 s deadline"):
            client.get("/slow")  # every read succeeds within the 5 s timeout: only a deadline ends it
        assert time.monotonic() - started < 10
        evidence = client.evidence.items()[-1]
        assert "DeadlineExceeded" in evidence["error"] and "response" not in evidence


def test_an_endless_body_hits_the_size_limit() -> None:
    with hostile_server() as url, Client(url, timeout=5, deadline=60, max_response_bytes=1024 * 1024) as client:
        started = time.monotonic()
        with pytest.raises(ResponseTooLarge, match="1,048,576 byte maximum"):
            client.get("/endless")
        assert time.monotonic() - started < 30
        assert isinstance(ResponseTooLarge("x"), TargetUnavailable)  # hence ERROR, never FAIL


def test_the_contract_checks_transport_is_bounded_too() -> None:
    import requests

    from conformance.suites.test_contract import _bounded_adapter

    session = requests.Session()
    session.mount("http://", _bounded_adapter(2.0, 1024 * 1024))
    with hostile_server() as url:
        assert session.get(f"{url}/fine", timeout=5).json()["supplier"] == "Hostile"
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            session.get(f"{url}/slow", timeout=5)
        with pytest.raises(ResponseTooLarge):
            session.get(f"{url}/endless", timeout=5)
        assert time.monotonic() - started < 30
    session.close()


def test_certify_against_a_slow_and_endless_target_is_inconclusive_and_prompt(tmp_path: Path) -> None:
    """Reading a child back comes a byte a second; a referral's answer never ends."""
    with (
        reference_process(TOKEN) as upstream,
        proxy(upstream, slow_paths(("/children/",), endless=("/referrals",))) as front,
    ):
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "conformance",
                "certify",
                "--target",
                front.url,
                "--output",
                str(tmp_path / "out"),
                "-k",
                "test_records or test_referrals",
                "-n",
                "0",
                "--max-in-flight",
                "1",  # one check at a time: each bound is met by the check that meets it, before the breaker opens
                "--deadline",
                "3",
                "--max-response-size",
                "1M",
                "--no-bundle",
                "--quiet",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=400,
            env={**os.environ, "ICS_ADMIN_TOKEN": TOKEN},
        )
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    result = json.loads(next((tmp_path / "out").rglob("result.json")).read_text())
    checks = [c for r in result["requirements"] for c in r["checks"]]
    verdicts = {c["verdict"] for c in checks}
    assert "FAIL" not in verdicts and "ERROR" in verdicts, [(c["id"], c["verdict"], c["message"]) for c in checks]
    messages = " ".join(c["message"] or "" for c in checks if c["verdict"] == "ERROR")
    assert "deadline" in messages and "byte maximum" in messages, messages[:3000]
    assert result["verdict"] == "INCONCLUSIVE"
    assert elapsed < 240, f"the run took {elapsed:.0f} s"


@pytest.mark.parametrize(
    ("ini", "says"),
    [
        ("ics_deadline = 0", "ics_deadline: must be > 0"),
        ("ics_max_response_bytes = lots", "ics_max_response_bytes: not a positive number of bytes"),
    ],
)
def test_bounds_are_configurable_in_the_ini_file(pytester: pytest.Pytester, ini: str, says: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest_subprocess("--ics-phase", "1A", "-p", "no:cacheprovider", "-n", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{says}*"])


def test_bounds_from_the_ini_file_reach_the_checks(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nics_deadline = 7.5\nics_max_response_bytes = 2M\n")
    pytester.makepyfile(
        test_bounds="""
        from conformance.checking.world import CONTEXT_KEY

        def test_context(request):
            context = request.config.stash[CONTEXT_KEY]
            assert (context.deadline, context.max_response_bytes) == (7.5, 2 * 1024 * 1024)
        """
    )
    result = pytester.runpytest_subprocess("--ics-phase", "1A", "-p", "no:cacheprovider", "-n", "0", "test_bounds.py")
    assert result.ret == 0, result.stdout.str()
