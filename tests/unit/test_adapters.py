"""Unit tests of the adapter seam (harness code only: native systems are httpx.MockTransport stand-ins).

End to end, through real HTTP against a server speaking only a native API, is in
``tests/adapters/test_adapter_certify.py``.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import requests

from conformance.adapters import Adapter, AdapterError, json_response
from conformance.adapters import legacy as legacy_module
from conformance.adapters.bridge import TransportBridge
from conformance.adapters.legacy import LegacyAdapter, body_to_canonical, body_to_native, native_path, query_to_native
from conformance.adapters.registry import ENTRY_POINT_GROUP, load, source_digest, source_files
from conformance.checking.client import Client, ResponseTooLarge
from conformance.errors import UsageError
from conformance.plugin.collect import classify, summary_lines
from conformance.results.verdicts import Verdict


class _Echo(Adapter):
    """Prefixes paths with /native and upper-cases a JSON body's keys on the way back."""

    version = "0.1"

    def to_native(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(request.method, request.url.copy_with(path="/native" + request.url.path))

    def to_canonical(self, response: httpx.Response, request: httpx.Request) -> httpx.Response:
        return json_response(response.status_code, {k.upper(): v for k, v in response.json().items()}, response.headers)


def _native(handler: Any) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def test_a_translating_adapter_sits_beneath_the_client() -> None:
    seen: list[str] = []

    def native(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"ok": 1}, headers={"x-native": "yes"})

    with Client("http://target.test", transport=_Echo(_native(native))) as client:
        response = client.get("/about")
    assert seen == ["/native/about"]
    assert response.json() == {"OK": 1} and response.headers["x-native"] == "yes"
    assert response.request.url.path == "/about"  # the evidence shows the canonical exchange


@pytest.mark.parametrize("error", [KeyError("items"), AssertionError("looks like a finding"), ValueError("bad date")])
def test_a_translation_that_raises_is_an_adapter_error_never_a_finding(error: Exception) -> None:
    class Broken(Adapter):
        version = "1"

        def to_canonical(self, response: httpx.Response, request: httpx.Request) -> httpx.Response:
            raise error

    with Client("http://target.test", transport=Broken(_native(lambda r: httpx.Response(200)))) as client:
        with pytest.raises(AdapterError) as caught:
            client.get("/children")
    assert "could not translate the response of GET /children" in str(caught.value)
    verdict, blamed, message = classify(caught.value, "call", ("ICS-1B-SRCH-001",))
    assert verdict is Verdict.ERROR and blamed == () and "AdapterError" in message


def test_a_translation_returning_the_wrong_type_is_refused() -> None:
    class Wrong(Adapter):
        version = "1"

        def to_native(self, request: httpx.Request) -> Any:
            return {"path": "/x"}

    with pytest.raises(AdapterError, match="to_native returned dict"):
        Wrong(_native(lambda r: httpx.Response(200))).handle_request(httpx.Request("GET", "http://t.test/about"))


def test_transport_errors_of_the_native_system_pass_through_untouched() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(httpx.ConnectError):
        _Echo(_native(refused)).handle_request(httpx.Request("GET", "http://t.test/about"))


def test_the_native_answer_is_read_within_the_size_bound() -> None:
    adapter = _Echo(_native(lambda r: httpx.Response(200, content=b"x" * 5000)), max_response_bytes=1000)
    with pytest.raises(ResponseTooLarge):
        adapter.handle_request(httpx.Request("GET", "http://t.test/export"))


# ----------------------------------------------------------------------------- registry


def test_the_example_adapter_is_installed_with_its_source_digest() -> None:
    loaded = load("legacy")
    source = Path(legacy_module.__file__ or "")
    assert loaded.cls is LegacyAdapter
    assert loaded.record["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert loaded.record["version"] == "1.0.0" and loaded.record["entry_point"].endswith(":LegacyAdapter")
    assert source_files(LegacyAdapter) == [source.resolve()]


def test_a_package_adapter_digest_covers_every_module_of_the_package(tmp_path: Path, monkeypatch: Any) -> None:
    package = tmp_path / "acme_adapter"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from conformance.adapters import Adapter\nfrom acme_adapter.tables import X\n\n"
        "class Acme(Adapter):\n    version = '2.0'\n",
        encoding="utf-8",
    )
    (package / "tables.py").write_text("X = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import acme_adapter  # type: ignore[import-not-found]

    before = source_digest(acme_adapter.Acme)
    (package / "tables.py").write_text("X = 2\n", encoding="utf-8")
    assert source_digest(acme_adapter.Acme) != before


def _fake_entry_points(monkeypatch: Any, **targets: str) -> None:
    entries = [metadata.EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in targets.items()]
    monkeypatch.setattr(
        "conformance.adapters.registry.metadata.entry_points",
        lambda group: [e for e in entries if group == ENTRY_POINT_GROUP],
    )


def test_an_unknown_adapter_is_a_usage_error_listing_the_installed_ones(monkeypatch: Any) -> None:
    _fake_entry_points(monkeypatch, legacy="conformance.adapters.legacy:LegacyAdapter")
    with pytest.raises(UsageError, match=r"unknown adapter 'acme': installed adapters: legacy"):
        load("acme")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("conformance.adapters.nothing_here:X", "could not be loaded: ModuleNotFoundError"),
        ("conformance.adapters.legacy:FIELDS", "is not an adapter"),
        ("conformance.adapters.base:Adapter", "declares no version"),
    ],
)
def test_a_broken_registration_is_a_usage_error(monkeypatch: Any, value: str, message: str) -> None:
    _fake_entry_points(monkeypatch, broken=value)
    with pytest.raises(UsageError, match=message):
        load("broken")


def test_an_adapter_is_refused_for_a_phase_it_does_not_map() -> None:
    with pytest.raises(UsageError, match="maps phases 1A, 1B only; it cannot be used for phase 1C"):
        load("legacy", phase="1C")


# ----------------------------------------------------------------------------- the legacy mapping


@pytest.mark.parametrize(
    ("canonical", "native"),
    [
        ("/about", "/system-info"),
        ("/children", "/clients"),
        ("/children/c-1/case-notes", "/clients/c-1/notes"),
        ("/allocations/a%2F1/end", "/keyworkers/a%2F1/close"),
        ("/practitioners/me/notifications", "/workers/self/alerts"),
        ("/audit/a-1", "/audit/a-1"),  # no such canonical operation: passed unchanged
    ],
)
def test_legacy_paths(canonical: str, native: str) -> None:
    assert native_path(canonical)[0] == native


def test_legacy_paging_dates_and_names_in_queries() -> None:
    params = httpx.QueryParams({"family_name": "Smith", "date_of_birth": "2001-02-03", "page": "3", "page_size": "10"})
    assert query_to_native(params, paged=True) == [
        ("surname", "Smith"),
        ("dob", "03/02/2001"),
        ("offset", "20"),
        ("limit", "10"),
    ]
    assert query_to_native(httpx.QueryParams({"given_name": "A"}), paged=True)[-2:] == [
        ("offset", "0"),
        ("limit", "20"),
    ]
    assert query_to_native(httpx.QueryParams({"page": "x"}), paged=True) == [("offset", "x"), ("limit", "20")]


def test_legacy_bodies_round_trip() -> None:
    canonical = {
        "given_name": "Ann",
        "date_of_birth": "2001-02-03",
        "date_of_death": None,
        "role": "read_only",
        "visits": [{"visit_date": "2008-09-30", "child_seen": True}],
    }
    native = body_to_native(canonical)
    assert native == {
        "forename": "Ann",
        "dob": "03/02/2001",
        "dod": None,
        "role": "viewer",
        "visits": [{"date_of_visit": "30/09/2008", "seen": True}],
    }
    assert body_to_canonical(native) == canonical


def _legacy_exchange(
    native_status: int, native_body: Any, request: httpx.Request
) -> tuple[httpx.Request, httpx.Response]:
    sent: list[httpx.Request] = []

    def native(req: httpx.Request) -> httpx.Response:
        sent.append(req)
        return httpx.Response(native_status, json=native_body)

    response = LegacyAdapter(httpx.MockTransport(native)).handle_request(request)
    response.read()
    return sent[0], response


def test_legacy_request_auth_and_page_answer() -> None:
    request = httpx.Request(
        "GET", "http://t.test/children?given_name=Jo&page=2&page_size=5", headers={"Authorization": "Bearer s3cret"}
    )
    native_body = {"results": [{"id": "1", "forename": "Jo", "dob": "01/12/2007"}], "offset": 5, "limit": 5, "count": 6}
    sent, response = _legacy_exchange(200, native_body, request)
    assert sent.url.path == "/clients" and dict(sent.url.params) == {"forename": "Jo", "offset": "5", "limit": "5"}
    assert sent.headers["x-api-key"] == "s3cret" and "authorization" not in sent.headers
    assert response.json() == {
        "items": [{"id": "1", "given_name": "Jo", "date_of_birth": "2007-12-01"}],
        "page": 2,
        "page_size": 5,
        "total": 6,
    }


def test_legacy_errors_become_canonical_codes_and_statuses() -> None:
    request = httpx.Request("POST", "http://t.test/assessments/a1/complete", json={"completed_on": "2008-09-30"})
    native_error = {
        "error": {"number": 2401, "text": "child not seen", "fields": [{"name": "date_completed", "text": "x"}]}
    }
    sent, response = _legacy_exchange(400, native_error, request)
    assert sent.url.path == "/assessments/a1/sign-off" and orjson.loads(sent.content) == {
        "date_completed": "30/09/2008"
    }
    assert response.status_code == 422
    assert response.json() == {
        "code": "CHILD_NOT_SEEN",
        "message": "child not seen",
        "details": [{"field": "completed_on", "message": "x"}],
    }
    _, unknown = _legacy_exchange(400, {"error": {"number": 7777, "text": "?"}}, request)
    assert unknown.status_code == 400 and unknown.json()["code"] == "LEGACY_7777"  # not invented: left to the checks


# ----------------------------------------------------------------------------- contract checks' path, terminal


def test_requests_bridge_sends_through_the_adapter() -> None:
    from schemathesis.core.transport import Response as SchemathesisResponse

    def native(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"seen": request.url.path})

    session = requests.Session()
    session.mount("http://", TransportBridge(_Echo(_native(native)), timeout=5, deadline=5, limit=10_000))
    response = session.post("http://t.test/children", json={"a": 1})
    assert response.status_code == 201 and response.json() == {"SEEN": "/native/children"}
    assert response.headers["content-type"] == "application/json"
    assert SchemathesisResponse.from_requests(response, verify=True).status_code == 201


def test_requests_bridge_reports_an_unreachable_system_as_a_connection_error() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    session = requests.Session()
    session.mount("http://", TransportBridge(_Echo(_native(refused)), timeout=5, deadline=5, limit=10_000))
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get("http://t.test/about")


def test_terminal_summary_names_the_adapter() -> None:
    result: dict[str, Any] = {"verdict": "CERTIFIED", "phase": "1B", "requirements": [], "errors": ["x"]}
    assert not any("adapter" in line for line in summary_lines(result))
    result["adapter"] = {"name": "legacy", "version": "1.0.0", "sha256": "ab" * 32}
    assert f"  tested through adapter legacy version 1.0.0 (sha256 {'ab' * 32})" in "\n".join(summary_lines(result))
