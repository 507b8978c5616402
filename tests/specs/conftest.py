"""Fixtures for the catalogue / capability / specs CLI tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.spec.resources import spec_path

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def catalogue_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped catalogue directory."""
    target = tmp_path / "catalogue"
    shutil.copytree(spec_path("catalogue"), target)
    return target


@pytest.fixture
def edit(catalogue_copy: Path) -> Callable[[str, str, str, int], Path]:
    """Replace text in a phase file of the copy: ``edit(phase, old, new, count=1)``."""

    def _edit(phase: str, old: str, new: str, count: int = 1) -> Path:
        path = catalogue_copy / f"phase-{phase}.yaml"
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {path.name}"
        path.write_text(text.replace(old, new, count), encoding="utf-8")
        return catalogue_copy

    return _edit
