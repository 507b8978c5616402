"""Fixtures for the bundle tests: sample results, keys, Chromium."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from bundle_samples import make_result

from conformance.certificate.signing import generate_keypair


@pytest.fixture
def sample_result() -> dict[str, Any]:
    return make_result()


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys")


@pytest.fixture
def chromium() -> str:
    """The Chromium executable; FAIL when missing under CI, skip otherwise."""
    from conformance.certificate.report import find_chromium

    found = find_chromium()
    if found is None:
        message = "headless Chromium not found (install Debian package 'chromium' or set ICS_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the browser tests", pytrace=False)
        pytest.skip(message)
    return found
