"""The redaction rules one by one (harness internals: no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conformance.certificate import redaction
from conformance.certificate.redaction import Redactor, remember_secret, scrub_secrets
from conformance.checking.checks import RequirementFailure, describe, expect_status

KEY = b"k" * 32


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    redaction.forget_all()
    yield
    redaction.forget_all()


def test_credential_scrubbing_leaves_ordinary_words_alone() -> None:
    for redactor in (Redactor("none"), Redactor("keyed-hash", KEY)):
        assert "a valid bearer token is required" in redactor.text("a valid bearer token is required")
        assert "Bearer [removed]" in redactor.text("Authorization: Bearer eyJhbGciOi.x9Z-abc")
        assert "token [removed]" in redactor.text("token AbC123xyz99")


def test_a_seen_token_is_removed_only_as_a_whole_token() -> None:
    remember_secret("Zq9-tok_en")
    remember_secret("a")  # a one-character "token" never blanks a character
    text = "got Zq9-tok_en and xZq9-tok_en, Zq9-tok_en2; a cat"
    assert scrub_secrets(text) == "got [removed] and xZq9-tok_en, Zq9-tok_en2; a cat"
    assert Redactor("none").text('{"token": "Zq9-tok_en"}') == '{"token": "[removed]"}'


def test_every_token_in_a_body_is_remembered_and_removed_from_later_text() -> None:
    body = {"id": "p-9", "name": "ICS Harness", "role": "admin", "token": "new-account-token-123"}
    assert "token" not in Redactor("none").body(body)
    assert "[removed]" in Redactor("none").text("the answer was {'token': 'new-account-token-123'}")
    assert "new-account-token-123" not in Redactor("none").text("as admin new-account-token-123 did")


def test_keyed_hash_is_an_allow_list() -> None:
    keyed = Redactor("keyed-hash", KEY)
    body = {
        "id": "c-77",
        "local_id": "r1a2b3c4d-c-12-ab12",  # an ID the harness made
        "gender": "female",
        "gender_identity": "female",  # not a known-safe field
        "code": "INVALID_NAME",
        "status": "open",
        "start_date": "2008-03-03",
        "date_of_birth": "2003-02-11",
        "forename": "Quenby",
        "surname": "Marlowe",
        "full_name": "Quenby Marlowe",
        "dob": "1987-04-12",
        "nhsNumber": 9434765919,
        "home_address": {"line": "17 Larkspur Mews", "town": "Dunmore"},
        "Smith": 1,
        "total": 3,
        "shielded": True,
        "message": "Quenby Marlowe is not allowed",
    }
    out = keyed.body(body)
    assert out["local_id"] == body["local_id"] and out["gender"] == "female" and out["code"] == "INVALID_NAME"
    assert out["status"] == "open" and out["start_date"] == "2008-03-03" and out["total"] == 3 and out["shielded"]
    for field in ("id", "gender_identity", "date_of_birth", "forename", "surname", "full_name", "dob", "nhsNumber"):
        assert str(out[field]).startswith("hmac-sha256:"), field
    assert all(v.startswith("hmac-sha256:") for v in out["home_address"].values())
    assert "Smith" not in json.dumps(out) and "Quenby" not in json.dumps(out) and "9434765919" not in json.dumps(out)
    # the same values in free text (a failure message) get the same hashes
    message = keyed.text("expected Quenby Marlowe (dob 1987-04-12), got {'nhsNumber': 9434765919}")
    assert "Quenby" not in message and "1987-04-12" not in message and "9434765919" not in message
    assert keyed.hash_value("Quenby Marlowe") in message and message.startswith("expected ")


def test_non_json_bodies_and_prose_are_hashed_word_by_word() -> None:
    keyed = Redactor("keyed-hash", KEY)
    page = "<html><body>No record for Quenby Marlowe, 17 Larkspur Mews, NHS 943 476 5919</body></html>"
    out = keyed.text(page)
    for secret in ("Quenby", "Marlowe", "Larkspur", "943 476 5919", "476"):
        assert secret not in out, secret
    assert "No record for" in out and "<html>" in out  # the harness's (and HTML's) own words stay


def test_failure_details_are_structured_and_redacted_like_evidence() -> None:
    keyed = Redactor("keyed-hash", KEY)
    redaction.set_active(keyed)
    request = httpx.Request("POST", "http://t/children")
    response = httpx.Response(422, json={"code": "INVALID_NAME", "forename": "Quenby"}, request=request)
    with pytest.raises(RequirementFailure) as caught:
        expect_status(response, 201, "ICS-1A-REC-001", "create a child")
    assert caught.value.details["status"] == 422 and caught.value.details["body"]["forename"] == "Quenby"
    assert keyed.details(caught.value.details)["body"]["forename"].startswith("hmac-sha256:")
    assert "Quenby" not in str(caught.value) and "INVALID_NAME" in describe(response)


def test_serve_reference_documents_its_token_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "serve-reference", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "400"},  # argparse wraps at hyphens otherwise
    )
    assert "ics-reference-admin-token" in done.stdout
    root = Path(__file__).resolve().parents[2]
    assert "ics-reference-admin-token" in (root / "README.md").read_text()
    assert "ics-reference-admin-token" in (root / ".gitignore").read_text().split()
