"""Proof that the child-record checks (ICS-1A-REC-001..008) tell faults apart.

Each records fault of the reference is injected and ``test_records.py`` with
``test_search.py`` (search runs on the same records; ``unborn-requires-dob`` also breaks
SRCH-008) is run against it: exactly the catching checks FAIL, blaming only the
registry's targets; everything else passes, and the clean reference passes all.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_runner():
    name = "_ics_search_fault_runner"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_search_faults.py"))
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


runner = _load_runner()

MODULES = ("test_records.py", "test_search.py")
R1 = "test_child_created_and_read_back_unchanged"
R2 = "test_upn_check_letter_validated"
R3 = "test_nhs_number_modulus_11_validated"
R4 = "test_impossible_dates_refused"
R5 = "test_aliases_recorded_and_listed"
R6 = "test_unborn_child_recorded"
R7 = "test_patch_updates_child"
R8 = "test_local_id_unique"
# the checks of specs/test-design/records.yaml's further cases
R1N = "test_names_at_length_limits_and_every_legal_character"
R1G = "test_every_gender_and_identifier_form_read_back"
R2X = "test_upn_every_check_letter_and_form"
R3X = "test_nhs_number_every_check_digit_and_length"
R4X = "test_date_boundaries_today_and_birth_day"
R5X = "test_aliases_of_the_same_type_all_listed"
R7X = "test_patch_with_own_local_id"
ALL = {R1, R2, R3, R4, R5, R6, R7, R8, R1N, R1G, R2X, R3X, R4X, R5X, R7X}

CATCHES: dict[str, set[str]] = {
    "upn-no-check-letter": {R2},
    "nhs-no-modulus": {R3},
    "records-accepts-death-before-birth": {R4, R4X},
    "aliases-not-listed": {R5, R5X},
    "unborn-requires-dob": {R6, runner.S8},
    "patch-ignored": {R7, R7X},
    "local-id-duplicates-allowed": {R8},
    # one case of specs/test-design/records.yaml each
    "upn-stored-as-written": {R1G},
    "gender-not-specified-read-as-not-known": {R1G},
    "names-truncated": {R1N},
    "upn-check-letter-table-short": {R2X},
    "upn-final-letter-refused": {R2X},
    "upn-validated-before-compacting": {R2X},
    "upn-length-unchecked": {R2X},
    "nhs-check-eleven-not-zero": {R3X},
    "nhs-length-unchecked": {R3X},
    "nhs-length-by-check-digit-only": {R3X},
    "records-today-is-future": {R4X},
    "records-death-on-birth-day-refused": {R4X},
    "records-patch-checks-sent-dates-only": {R4X},
    "aliases-listed-one-per-type": {R5X},
    "local-id-clashes-with-itself": {R7X},
}


def test_clean_reference_passes_every_records_check(tmp_path: Path) -> None:
    runner.assert_clean(runner.run_checks(tmp_path, MODULES), ALL | (runner.ALL - {runner.MODEL}))


@pytest.mark.parametrize("fault", sorted(CATCHES))
def test_records_fault_is_caught(fault: str, tmp_path: Path) -> None:
    runner.assert_fault_caught(
        runner.run_checks(tmp_path, MODULES, (fault,)), CATCHES[fault], runner.fault_targets(fault)
    )
