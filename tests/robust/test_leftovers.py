"""Nothing of the target's data outlives the run outside the run's own directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def test_certify_leaves_no_export_or_temporary_files_and_keeps_its_run_directory_private(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "certify",
            "--output",
            "out",
            "-n",
            "0",
            "-k",
            "test_export",
            "--no-bundle",
            "--quiet",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    assert done.returncode == 3 and "PASS 10, NOT_RUN" in done.stdout, done.stdout + done.stderr  # -k: a part
    assert sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*")) == []  # the bulk export, pytest's tmp dirs
    (run_dir,) = (tmp_path / "out").iterdir()
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert not list(run_dir.rglob("*.zip"))


def test_pytest_deletes_the_targets_bulk_export_at_the_end_of_the_session(tmp_path: Path) -> None:
    basetemp = tmp_path / "basetemp"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--ics-phase",
            "1A",
            "-k",
            "test_export",
            "-n",
            "0",
            "-q",
            "--basetemp",
            str(basetemp),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "passed" in done.stdout
    assert [p for p in basetemp.rglob("*") if p.is_file()] == []
