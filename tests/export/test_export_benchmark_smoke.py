"""The export benchmark runs end to end at a tiny size (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_smoke(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "export_benchmark.py"),
            "--records",
            "400",
            "--sample",
            "50",
            "--cache",
            str(tmp_path),
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    figures = json.loads(out.stdout)
    assert figures["parse_only"]["records"] > 300
    assert all(run["conformant"] for run in figures["validate"].values())
    assert figures["plain_jsonschema_sample"]["records"] > 0
