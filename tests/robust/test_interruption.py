"""Ctrl-C (SIGINT) or SIGTERM during ``certify``: said so, exit 130 / 143, no bundle, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _session_processes(sid: int) -> list[str]:
    """Processes still alive in session ``sid`` (the certify process group and its children)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":  # session id, not a zombie
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:120]
            alive.append(f"{entry.name}: {command!r}")
    return alive


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_certify_says_so_writes_no_bundle_and_leaves_nothing(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance", "certify", "--output", str(out), "-n", "2", "--seed", "7"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own session: every process it starts can be found afterwards
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:  # wait until the checks are running
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("running ") or not line:
            break
    assert lines[-1].startswith("running "), lines
    time.sleep(4)  # well into the checks
    process.send_signal(signum)
    try:
        stdout, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("certify did not end within 90 s of the signal")
    stdout = "".join(lines) + stdout
    assert process.returncode == code, (process.returncode, stdout[-2000:], stderr[-2000:])
    assert "interrupted" in stderr and signum.name in stderr, stderr[-2000:]

    results = list(out.rglob("result.json"))
    assert len(results) == 1, results
    result = json.loads(results[0].read_text())
    assert result["verdict"] == "INCONCLUSIVE"
    assert any("interrupted" in e and signum.name in e for e in result["errors"]), result["errors"]
    assert not list(out.rglob("*.zip")) and not list(out.rglob("manifest.sig")) and not list(out.rglob("manifest.json"))
    assert not list(out.rglob(".*.partial"))

    time.sleep(1)
    assert _session_processes(process.pid) == [], "processes left behind"
    assert sorted(p.name for p in tmp.iterdir()) == [], "temporary files left behind"


def test_an_interruption_while_the_bundle_is_written_leaves_no_bundle(tmp_path: Path) -> None:
    """The checks finished, the bundle was half written: nothing of it stays, result.json says why."""
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "from conformance.cli import certify, main\n"
        "def half_written(result, run_dir, *args, **kwargs):\n"
        "    (run_dir / 'ics-bundle').mkdir()\n"
        "    (run_dir / 'ics-bundle' / 'manifest.sig').write_bytes(b'x' * 64)\n"
        "    (run_dir / 'ics-bundle.zip.tmp').write_bytes(b'PK')\n"
        "    raise KeyboardInterrupt\n"
        "certify._write_bundle = half_written\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), "certify", "--output", "out", "-n", "0", "-k", "test_about", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 130 and "interrupted" in done.stderr, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "out").iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == ["pytest.log", "result.json"]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["verdict"] == "INCONCLUSIVE" and any("while the bundle was written" in e for e in result["errors"])
