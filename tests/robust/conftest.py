"""Fixtures for the robustness tests (real loopback servers live in robust_support)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.certificate.signing import generate_keypair


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys")
