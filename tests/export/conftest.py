"""Shared helpers for the export tests: copies of the fixture export to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from export_support import INVALID, ROOT, VALID, run_cli  # noqa: F401  (re-exported to the export tests)


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    """A writable copy of the small valid fixture export."""
    target = tmp_path / "export"
    shutil.copytree(VALID, target)
    return target
