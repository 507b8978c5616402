"""Helpers for the plugin tests: run synthetic check modules through the plugin with pytester."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# In-process pytester runs drop the modules first imported inside them; import the
# harness here once so every inner run shares the same modules (and catalogue cache).
import httpcore  # noqa: F401  (httpx caches its exception map on first use)
import hypothesis.stateful  # noqa: F401  (imported once, outside the inner runs)
from stub import stub_target

import conformance.certificate.redaction
import conformance.plugin.collect
import conformance.plugin.profiles
import conformance.plugin.session
import conformance.suites.conftest  # noqa: F401  (imported once, outside the inner runs)
from conformance.spec.catalogue import load_catalogue

load_catalogue()

from plugin_support import TOKEN, checks_by_name, dump, requirement_verdicts  # noqa: E402,F401  (after the path set-up; re-exported to the plugin tests)

#: conftest of a synthetic suite: the built-in suites' fixtures (world, ics_context, ...).
SUITE_CONFTEST = 'pytest_plugins = ["conformance.suites.conftest"]\n'


@pytest.fixture
def stub_url() -> Iterator[str]:
    with stub_target() as url:
        yield url


@pytest.fixture
def run_checks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[pytest.RunResult, dict[str, Any] | None]]:
    """Write ``source`` as a check module and run it through the plugin; return (run, result.json)."""
    monkeypatch.setenv("ICS_ADMIN_TOKEN", TOKEN)
    pytester.makeconftest(SUITE_CONFTEST)

    def run(
        source: str, *args: str, target: str | None = None, subprocess: bool = False
    ) -> tuple[pytest.RunResult, dict[str, Any] | None]:
        pytester.makepyfile(test_checks=source)
        report = pytester.path / "report"
        argv = [str(pytester.path / "test_checks.py"), "-p", "no:cacheprovider", "--ics-report", str(report), *args]
        if target is not None:
            argv += ["--ics-target", target]
        if "--ics-phase" not in args:
            argv += ["--ics-phase", "1B"]
        runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest_inprocess
        outcome = runner(*argv)
        path = report / "result.json"
        result = json.loads(path.read_text()) if path.exists() else None
        if result is not None:  # every result the plugin writes keeps to the published schema
            from conformance.results.result import result_problems

            assert not result_problems(result), result_problems(result)[:10]
        return outcome, result

    return run
