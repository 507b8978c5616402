"""Redaction at capture, and the grep test over every artefact of a bundle."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from bundle_samples import KNOWN_NAMES, KNOWN_TOKEN, http_evidence, make_result, requirement

from conformance.certificate.bundle import write_bundle
from conformance.certificate.redaction import Redactor
from conformance.errors import UsageError


@pytest.fixture
def keyed() -> Redactor:
    return Redactor("keyed-hash", b"k" * 32)


def test_headers_always_drop_credentials() -> None:
    for redactor in (Redactor("none"), Redactor("keyed-hash", b"x" * 32)):
        headers = redactor.headers(
            {
                "Authorization": "Bearer abc",
                "proxy-authorization": "Basic abc",
                "Cookie": "s=1",
                "Set-Cookie": "s=2",
                "X-Refresh-Token": "r",
                "X-CSRFToken": "c",
                "Content-Type": "application/json",
            }
        )
        assert headers == {"Content-Type": "application/json"}


def test_headers_accept_httpx_headers_and_pairs(keyed: Redactor) -> None:
    assert keyed.headers(httpx.Headers([("Authorization", "x"), ("Accept", "a"), ("Accept", "b")])) == {
        "accept": "a, b"
    }
    # a server-made ID in a URL is hashed like the same ID in a body (allow-list: it is not the harness's)
    assert keyed.headers([("Cookie", "x"), ("Location", "/children/c-1")]) == {
        "Location": f"/children/{keyed.hash_value('c-1')}"
    }


def test_body_token_fields_removed_under_none() -> None:
    body = {"id": "p1", "name": "Jo Bloggs", "token": "secret", "nested": [{"access_token": "s", "role": "manager"}]}
    assert Redactor("none").body(body) == {"id": "p1", "name": "Jo Bloggs", "nested": [{"role": "manager"}]}


def test_body_personal_fields_hashed(keyed: Redactor) -> None:
    child = {
        "id": "c-1",
        "given_name": "Victoria",
        "family_name": "Climbié",
        "date_of_birth": "2000-11-02",
        "expected_date_of_birth": None,
        "date_of_death": None,
        "upn": "A123456789012",
        "nhs_number": "9434765919",
        "postcode": "N17 6SB",
        "gender": "female",
        "shielded": False,
        "address_line_1": "1 High Road",
        "address": {"line1": "Flat 2", "town": "Tottenham"},
        "notes": [{"text": "Visited at home", "preview": "Visited", "restricted": False}],
        "referral": {"reason": "school concern", "source": "school"},
    }
    out = keyed.body(child)
    for key in ("given_name", "family_name", "date_of_birth", "upn", "nhs_number", "postcode", "address_line_1"):
        assert out[key].startswith("hmac-sha256:") and len(out[key]) == len("hmac-sha256:") + 16
    assert out["address"]["line1"].startswith("hmac-sha256:") and out["address"]["town"].startswith("hmac-sha256:")
    assert out["notes"][0]["text"].startswith("hmac-sha256:") and out["notes"][0]["restricted"] is False
    assert out["referral"]["reason"].startswith("hmac-sha256:") and out["referral"]["source"] == "school"
    assert out["id"] == keyed.hash_value("c-1") and out["gender"] == "female" and out["shielded"] is False
    assert out["expected_date_of_birth"] is None
    # keyed: stable within a key, different across keys, idempotent
    assert keyed.body(child)["given_name"] == out["given_name"]
    assert Redactor("keyed-hash", b"z" * 32).body(child)["given_name"] != out["given_name"]
    assert keyed.body(out) == out


def test_body_json_string(keyed: Redactor) -> None:
    out = json.loads(keyed.body('{"given_name": "Victoria", "token": "t"}'))
    assert "token" not in out and out["given_name"].startswith("hmac-sha256:")


def test_text_redacts_urls_and_credentials(keyed: Redactor) -> None:
    url = (
        "https://user:pw@ics.example/children?given_name=Vict%C3%B3ria&family_name=Climbi%C3%A9&page=2&access_token=abc"
    )
    out = keyed.text(url)
    assert "user" not in out and "pw@" not in out
    assert "Vict" not in out and "Climbi" not in out and "abc" not in out
    assert "page=2" in out and "given_name=hmac-sha256:" in out
    free = "curl -H 'Authorization: Bearer eyJhbGciOi.abc' --ics-token=s3cr3t ICS_ADMIN_TOKEN=s3cr3t2 x"
    cleaned = Redactor("none").text(free)
    assert "eyJhbGciOi" not in cleaned and "s3cr3t" not in cleaned
    assert Redactor("none").text("/children?given_name=Victoria") == "/children?given_name=Victoria"


def test_policy_record_never_holds_the_key() -> None:
    key = b"super-secret-key-material-0123456789"
    redactor = Redactor("keyed-hash", key)
    record = json.dumps(redactor.policy_record())
    assert "keyed-hash" in record and "given_name" in record
    assert key.decode() not in record and key.hex() not in record and key.decode() not in repr(redactor)
    assert Redactor("none").policy_record()["policy"] == "none"


def test_for_target_and_validation() -> None:
    assert Redactor.for_target(True).policy == "none"
    first, second = Redactor.for_target(False), Redactor.for_target(False)
    assert first.policy == "keyed-hash" and first.hash_value("x") != second.hash_value("x")  # fresh key per run
    with pytest.raises(UsageError):
        Redactor("rot13")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Redactor("keyed-hash", b"")


def _needles() -> list[bytes]:
    values = [KNOWN_TOKEN, *KNOWN_NAMES, "N17 6SB", "A123456789012", "2000-11-02", "s3cr3t-password"]
    needles: set[bytes] = set()
    for value in values:
        for form in (value, quote(value), quote_plus(value), json.dumps(value)[1:-1], value.lower()):
            needles.add(form.encode("utf-8"))
    return sorted(needles)


def test_grep_every_artefact_for_token_and_names(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    """A run against a non-reference target with a known token and known names leaks neither."""
    redactor = Redactor.for_target(builtin_reference=False)
    given, family = KNOWN_NAMES
    captured = [http_evidence(redactor, given=given, family=family)]
    result = make_result(builtin=False, evidence=captured)
    result["target"]["url"] = "https://ics-user:s3cr3t-password@ics.council.example/api"
    result["command"] = f"ics-conformance certify --target https://ics.council.example/api --admin-token {KNOWN_TOKEN}"
    check = requirement(result, "ICS-1B-SRCH-001")["checks"][0]
    check["reproduce"] = f"ICS_ADMIN_TOKEN={KNOWN_TOKEN} ics-conformance certify -k test_accent_insensitive"
    check["example"] = {"given_name": given, "family_name": family}
    # Run-level evidence handed over raw: the bundle's safety net must still redact it.
    raw = http_evidence(Redactor("none"), given=given, family=family)
    raw["request"]["headers"] = {"Authorization": f"Bearer {KNOWN_TOKEN}", "Cookie": f"sid={KNOWN_TOKEN}"}

    bundle = write_bundle(result, tmp_path / "out", evidence=[raw], sign_key=keypair[0], redactor=redactor)
    artefacts: dict[str, bytes] = {
        p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
    }
    with zipfile.ZipFile(bundle.zip_path) as archive:
        for name in archive.namelist():
            artefacts[f"zip:{name}"] = archive.read(name)
    assert any(k.endswith("report.html") for k in artefacts) and any(k.startswith("zip:") for k in artefacts)
    leaks = [
        (name, needle)
        for name, data in artefacts.items()
        if "keys/" not in name
        for needle in _needles()
        if needle in data
    ]
    assert leaks == []
    manifest = json.loads((bundle.directory / "manifest.json").read_bytes())
    assert manifest["redaction"]["policy"] == "keyed-hash"
    assert b"hmac-sha256:" in (bundle.directory / "report.html").read_bytes()


def test_error_codes_kept_under_keyed_hash_are_the_openapi_ones(keyed: Redactor) -> None:
    # One list (the Error.code enum of openapi.yaml) for the contract checks and redaction:
    # a 1C refusal's code stays readable in evidence, an invented code is hashed.
    for code in ("INVALID_TRANSFER_PACKAGE", "NOT_IMPLEMENTED", "CHILD_NOT_SEEN"):
        assert keyed.body({"code": code, "message": "m"})["code"] == code
    assert keyed.body({"code": "NOT_A_CODE"})["code"] != "NOT_A_CODE"
