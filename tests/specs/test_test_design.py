"""The test design (``specs/test-design/*.yaml``) agrees with the catalogue, the checks and the faults.

Fails when a 1A/1B requirement has no design, a design names an unknown requirement, a case
that is not free names no check, a ``covered_by`` names a check that does not exist or does
not declare the case's requirement, or a case names a fault that does not exist or does not
target its requirement. The negative tests prove each of those is caught, on edited copies.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import conformance.suites
from conformance.errors import SpecError
from conformance.reference.faults import FAULTS
from conformance.spec.catalogue import load_catalogue
from conformance.spec.resources import spec_path
from conformance.spec.testdesign import Design, check_key, load_test_design

CATALOGUE = load_catalogue()
PHASES = ("1A", "1B")


def _checks() -> dict[str, tuple[str, ...]]:
    """Every check of the built-in suites: ``<module>.py::<function>`` -> requirement IDs it declares."""
    found: dict[str, tuple[str, ...]] = {}
    for info in pkgutil.iter_modules(conformance.suites.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"conformance.suites.{info.name}")
        for name, obj in vars(module).items():
            for mark in getattr(obj, "pytestmark", []):
                if mark.name == "ics" and name.startswith("test_"):
                    found[f"{info.name}.py::{name}"] = tuple(mark.kwargs["requirements"])
    return found


CHECKS = _checks()
TARGETS = {name: fault.targets for name, fault in FAULTS.items()}


@pytest.fixture(scope="module")
def design() -> Design:
    return load_test_design()


def test_every_1a_1b_requirement_has_a_design_and_no_unknown_one(design: Design) -> None:
    problems = design.problems(CATALOGUE, PHASES)
    assert not problems, "\n".join(problems)


def test_covered_by_names_checks_that_declare_the_requirement(design: Design) -> None:
    problems = [p for p in design.problems(CATALOGUE, PHASES, checks=CHECKS) if "covered_by" in p]
    assert not problems, "\n".join(problems)


def test_faults_named_exist_and_target_the_requirement(design: Design) -> None:
    problems = [p for p in design.problems(CATALOGUE, PHASES, faults=TARGETS) if "fault" in p]
    assert not problems, "\n".join(problems)


def test_every_case_not_free_is_covered(design: Design) -> None:
    uncovered = [f"{c.requirement}: {c.id}" for c in design if not c.free and not c.covered_by]
    assert not uncovered, uncovered  # the schema refuses them at load time; this says so plainly


def test_every_check_of_1a_1b_covers_a_case(design: Design) -> None:
    in_scope = {r.id for p in PHASES for r in CATALOGUE.in_scope(p)}
    idle = sorted(k for k, reqs in CHECKS.items() if set(reqs) & in_scope and not design.covering(k))
    assert not idle, f"checks no case names (add their cases): {idle}"


def test_every_area_file_matches_the_catalogue_areas(design: Design) -> None:
    """Every 1A/1B area has its file; any other file is a catalogue area too (1C may be designed)."""
    areas = {r.area for p in PHASES for r in CATALOGUE.in_scope(p)}
    assert areas <= set(design.files) <= {r.area for r in CATALOGUE}


def test_check_key_accepts_node_ids_and_result_ids() -> None:
    assert (
        check_key("conformance/suites/test_search.py::test_partial_names[ICS-1B-SRCH-002]")
        == "test_search.py::test_partial_names"
    )
    assert check_key("test_gating.py::test_x[ICS-1B-GATE-002+ICS-1B-GATE-001]") == "test_gating.py::test_x"
    assert check_key("test_search.py::test_partial_names") == "test_search.py::test_partial_names"


# -- each failure mode is caught ------------------------------------------------------------------


@pytest.fixture
def design_copy(tmp_path: Path) -> Path:
    target = tmp_path / "test-design"
    shutil.copytree(spec_path("test-design"), target)
    return target


@pytest.fixture
def edit(design_copy: Path) -> Callable[[str, str, str], Path]:
    def _edit(area: str, old: str, new: str) -> Path:
        path = design_copy / f"{area}.yaml"
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {path.name}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return design_copy

    return _edit


def test_missing_requirement_is_a_problem(edit: Callable[[str, str, str], Path]) -> None:
    directory = edit("referrals", "  ICS-1A-REF-002:", "  ICS-1A-REF-099:")
    problems = load_test_design(directory).problems(CATALOGUE, PHASES)
    assert any(p.startswith("ICS-1A-REF-002: no test design") for p in problems), problems
    assert any("ICS-1A-REF-099: unknown requirement" in p for p in problems), problems


def test_case_without_covered_by_is_refused(edit: Callable[[str, str, str], Path]) -> None:
    directory = edit(
        "referrals",
        "        covered_by: [test_referrals.py::test_referral_date_boundaries]\n"
        "        faults: [referral-accepts-tomorrow]\n",
        "",
    )
    with pytest.raises(SpecError, match=r"ICS-1A-REF-002: case 'tomorrow': missing 'covered_by'"):
        load_test_design(directory)


def test_empty_covered_by_is_refused(edit: Callable[[str, str, str], Path]) -> None:
    directory = edit("referrals", "covered_by: [test_referrals.py::test_referral_date_boundaries]", "covered_by: []")
    with pytest.raises(SpecError, match=r"case 'tomorrow': field 'covered_by': empty"):
        load_test_design(directory)


def test_free_case_naming_a_check_is_refused(edit: Callable[[str, str, str], Path]) -> None:
    directory = edit(
        "allocations",
        "      - id: end-twice-status\n        free: true\n",
        "      - id: end-twice-status\n        free: true\n"
        "        covered_by: [test_allocations.py::test_ending_twice_and_one_of_two]\n",
    )
    with pytest.raises(SpecError, match=r"case 'end-twice-status': field 'covered_by': a free case names no checks"):
        load_test_design(directory)


def test_unknown_check_and_undeclared_requirement_are_problems(edit: Callable[[str, str, str], Path]) -> None:
    directory = edit(
        "referrals",
        "covered_by: [test_referrals.py::test_referral_recorded_and_read_back]",
        "covered_by: [test_referrals.py::test_no_such_check, test_referrals.py::test_referral_received_in_future_refused]",
    )
    problems = load_test_design(directory).problems(CATALOGUE, PHASES, checks=CHECKS)
    assert any("test_no_such_check, which is not a check" in p for p in problems), problems
    assert any(
        "test_referral_received_in_future_refused, which does not declare ICS-1A-REF-001" in p for p in problems
    ), problems


def test_unknown_fault_and_untargeted_requirement_are_problems(edit: Callable[[str, str, str], Path]) -> None:
    directory = edit(
        "referrals", "faults: [referral-loses-source]", "faults: [no-such-fault, referral-accepts-future-date]"
    )
    problems = load_test_design(directory).problems(CATALOGUE, PHASES, faults=TARGETS)
    assert any("'no-such-fault', which is not a reference fault" in p for p in problems), problems
    assert any("'referral-accepts-future-date' does not target ICS-1A-REF-001" in p for p in problems), problems


def test_requirement_of_another_area_and_misnamed_file_are_refused(
    design_copy: Path, edit: Callable[[str, str, str], Path]
) -> None:
    edit("referrals", "  ICS-1A-REF-002:", "  ICS-1A-ALLOC-009:")
    (design_copy / "referrals.yaml").rename(design_copy / "referral.yaml")
    with pytest.raises(SpecError) as caught:
        load_test_design(design_copy)
    assert "ICS-1A-ALLOC-009: belongs to area 'allocations', not 'referrals'" in str(caught.value)
    assert "named referral.yaml (expected referrals.yaml)" in str(caught.value)


def test_duplicate_case_id_is_refused(edit: Callable[[str, str, str], Path]) -> None:
    directory = edit("referrals", "      - id: tomorrow\n", "      - id: today\n")
    with pytest.raises(SpecError, match=r"ICS-1A-REF-002: case 'today' appears twice"):
        load_test_design(directory)
