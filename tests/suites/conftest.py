"""Per-area fault proofs: a sample runs by default, every fault under ``-m slow``.

The same holds for the hostile-target answers of ``test_search_hostile_target.py``.
Each ``fault`` parameter starts a pytest subprocess against the reference with that
fault injected. The default run keeps one fault per file (plus each file's clean-run
proof); ``pytest -m slow`` runs them all, and ``tests/proof/test_fault_matrix.py`` runs
every fault against the whole suite.
"""

from __future__ import annotations

import pytest

#: hostile-target answers run by default (the rest under -m slow)
HOSTILE_SAMPLE = {"not-json", "wrong-types"}

DEFAULT_SAMPLE = {
    "search-postcode-exact",
    "nhs-no-modulus",
    "rights-ignored",
    "gating-generic-error-code",
    "notify-author",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        fault = callspec.params.get("fault") if callspec else None
        if fault is not None and fault not in DEFAULT_SAMPLE:
            item.add_marker(pytest.mark.slow)
        mode = callspec.params.get("hostile_target") if callspec else None
        if mode is not None and mode not in HOSTILE_SAMPLE:
            item.add_marker(pytest.mark.slow)
