"""Shared helpers for the export tests: copies of the fixture export to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VALID = ROOT / "fixtures" / "exports" / "valid"
INVALID = ROOT / "fixtures" / "exports" / "invalid"


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    """A writable copy of the small valid fixture export."""
    target = tmp_path / "export"
    shutil.copytree(VALID, target)
    return target


def run_cli(*argv: str) -> int:
    from conformance.cli import main

    return main(list(argv))
