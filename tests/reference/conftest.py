"""One clean reference service per test module, with a fixed "today"."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_helpers import TODAY, Api

from conformance.reference import serve


@pytest.fixture(scope="module")
def service() -> Iterator[object]:
    with serve(today=lambda: TODAY) as running:
        yield running


@pytest.fixture(scope="module")
def api(service: object) -> Iterator[Api]:
    driver = Api(service)
    yield driver
    driver.close()
