"""The catalogue and the checks never drift apart.

Fails when a MUST of any phase has no check, when one judged in the export channel
(``export`` or ``both``) has no check of kind ``export`` (so an export file judged alone
would leave it unjudged), when an API-only one is covered only by export checks, or when a
check names a requirement the catalogue does not hold.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import conformance.suites
from conformance.spec.catalogue import load_catalogue


def _checks() -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for info in pkgutil.iter_modules(conformance.suites.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"conformance.suites.{info.name}")
        for name, obj in vars(module).items():
            targets = [obj]
            test_case = getattr(obj, "TestCase", None)
            if test_case is not None:
                targets.append(test_case)
            for target in targets:
                for mark in getattr(target, "pytestmark", []):
                    if mark.name == "ics":
                        found[f"{info.name}::{name}"] = tuple(mark.kwargs["requirements"])
                        KINDS[f"{info.name}::{name}"] = mark.kwargs.get("kind", "scenario")
    return found


KINDS: dict[str, str] = {}


CHECKS = _checks()
CATALOGUE = load_catalogue()


def test_there_are_checks() -> None:
    assert len(CHECKS) >= 40, f"only {len(CHECKS)} checks found"


def test_every_check_names_known_requirements() -> None:
    unknown = {check: [r for r in reqs if r not in CATALOGUE] for check, reqs in CHECKS.items()}
    unknown = {k: v for k, v in unknown.items() if v}
    assert not unknown, f"checks naming unknown requirements: {unknown}"


@pytest.mark.parametrize("phase", ["1A", "1B", "1C"])
def test_every_must_has_a_check(phase: str) -> None:
    covered = {r for reqs in CHECKS.values() for r in reqs}
    missing = [r.id for r in CATALOGUE.in_scope(phase) if r.level == "MUST" and r.id not in covered]
    assert not missing, f"MUST requirements of {phase} without a check: {missing}"


@pytest.mark.parametrize("phase", ["1A", "1B", "1C"])
def test_every_must_has_a_check_for_its_channel(phase: str) -> None:
    kinds: dict[str, set[str]] = {}
    for name, reqs in CHECKS.items():
        for rid in reqs:
            kinds.setdefault(rid, set()).add(KINDS[name])
    musts = [r for r in CATALOGUE.in_scope(phase) if r.level == "MUST"]
    no_export = [r.id for r in musts if "export" in r.channels() and "export" not in kinds.get(r.id, set())]
    api_only_by_export = [r.id for r in musts if r.channels() == ("api",) and kinds.get(r.id, set()) <= {"export"}]
    assert not no_export, f"judged in the export channel but no export check: {no_export}"
    assert not api_only_by_export, f"API requirements covered only by export checks: {api_only_by_export}"
