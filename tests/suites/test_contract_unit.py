"""Unit tests of the contract checks' plumbing: waiver configuration, redaction, the custom check."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from conformance.suites import test_contract as contract


class _Config:
    def __init__(self, ini: Any = None) -> None:
        self._ini = ini

    def getini(self, name: str) -> Any:
        return self._ini if self._ini is not None else []


def test_waivers_from_env_and_ini(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.WAIVE_ENV, "response_headers_conformance, error_body_has_code")
    assert contract.waived_checks(_Config(["negative_data_rejection"])) == {
        "response_headers_conformance",
        "error_body_has_code",
        "negative_data_rejection",
    }


def test_waiver_ini_is_registered_by_the_plugin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ics_contract_waive`` in pytest.ini is a registered line list (no unknown-ini warning)."""
    monkeypatch.delenv(contract.WAIVE_ENV, raising=False)
    pytester.makeini("[pytest]\nics_contract_waive =\n    content_type_conformance\n    not_a_server_error\n")
    config = pytester.parseconfig()
    assert contract.waived_checks(config) == {"content_type_conformance", "not_a_server_error"}
    pytester.makeini("[pytest]\n")
    assert contract.waived_checks(pytester.parseconfig()) == frozenset()


def test_unknown_waiver_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.WAIVE_ENV, "not_a_check")
    with pytest.raises(pytest.UsageError, match="not_a_check"):
        contract.waived_checks(_Config())


def test_examples_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from hypothesis import settings

    monkeypatch.delenv(contract.EXAMPLES_ENV, raising=False)
    assert contract.examples_per_operation() == max(1, settings.default.max_examples // contract.PROFILE_DIVISOR)
    monkeypatch.setenv(contract.EXAMPLES_ENV, "3")
    assert contract.examples_per_operation() == 3
    monkeypatch.setenv(contract.EXAMPLES_ENV, "0")
    with pytest.raises(pytest.UsageError):
        contract.examples_per_operation()


def test_reproduction_is_redacted() -> None:
    text = (
        "Reproduce with:\n\n    curl -X GET -H 'Authorization: Bearer s3cr3t-token-value' "
        "-H 'Content-Type: application/json' http://127.0.0.1:8000/children/0?token=abc\n"
        "echoed s3cr3t-token-value"
    )
    out = contract._redact(text, ["s3cr3t-token-value"], builtin_reference=True)
    assert "s3cr3t" not in out and "Authorization" not in out and "token=abc" not in out
    assert "curl -X GET -H 'Content-Type: application/json' http://127.0.0.1:8000/children/0" in out


def _case(negative: bool) -> Any:
    mode = SimpleNamespace(is_negative=negative)
    return SimpleNamespace(meta=SimpleNamespace(generation=SimpleNamespace(mode=mode)))


class _Response:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self._body = status, body

    def json(self) -> Any:
        if isinstance(self._body, Exception):
            raise self._body
        return self._body


def test_error_body_has_code() -> None:
    check = contract.error_body_has_code
    assert check(None, _Response(422, {"code": "VALIDATION_ERROR", "message": "x"}), _case(True)) is None
    assert check(None, _Response(201, {}), _case(True)) is None  # acceptance is negative_data_rejection's call
    assert check(None, _Response(422, {}), _case(False)) is None  # only judged on invalid input
    with pytest.raises(AssertionError, match="no machine-readable"):
        check(None, _Response(422, {"message": "bad"}), _case(True))
    with pytest.raises(AssertionError, match="not one of the codes"):
        check(None, _Response(422, {"code": "OOPS", "message": "bad"}), _case(True))
    with pytest.raises(AssertionError, match="not JSON"):
        check(None, _Response(400, ValueError("x")), _case(True))


def test_check_functions_resolve_every_known_name() -> None:
    functions = contract._check_functions(sorted(contract.KNOWN_CHECKS))
    assert [f.__name__ for f in functions] == sorted(contract.KNOWN_CHECKS)
