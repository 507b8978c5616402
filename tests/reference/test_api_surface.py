"""The public surface of conformance.reference: create_app, serve, FAULTS."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest

from conformance.errors import UsageError
from conformance.reference import FAULTS, Fault, create_app, serve


def test_unknown_fault_names_the_fault_and_the_valid_ones() -> None:
    with pytest.raises(UsageError) as info:
        create_app(faults=["gating-off", "no-such-fault"], admin_token="t" * 20)
    assert (
        "no-such-fault" in str(info.value)
        and "gating-off" in str(info.value)
        and "search-drops-last-page" in str(info.value)
    )
    with pytest.raises(UsageError):
        with serve(faults=["nope"]):
            pass


def test_registry_entries_are_well_formed() -> None:
    areas = {
        "records",
        "referrals",
        "allocations",
        "case-notes",
        "timescales",
        "assessments",
        "search",
        "notifications",
        "gating",
        "access",
        "export",
        "contract",
        "transfer",
        "audit",
        "shielding",
        "visits",
        "chronology",
    }
    for name, fault in FAULTS.items():
        assert isinstance(fault, Fault) and fault.name == name and fault.area in areas and fault.description
    assert sum(1 for f in FAULTS.values() if f.area == "search") >= 2


def test_serve_yields_url_token_faults_and_stores_in_a_file(tmp_path: Path) -> None:
    db = tmp_path / "ref.sqlite"
    with serve(
        faults=["notify-author"], admin_token="admin-token-123456", db_path=db, today=lambda: date(2008, 3, 31)
    ) as s:
        assert s.faults == ("notify-author",) and s.admin_token == "admin-token-123456"
        auth = {"Authorization": "Bearer admin-token-123456"}
        r = httpx.post(
            f"{s.url}/children",
            headers=auth,
            json={"given_name": "Al", "family_name": "Persist", "gender": "male", "date_of_birth": "2008-03-31"},
        )
        assert r.status_code == 201  # "today" is injected: 31 March 2008 is not in the future
        child_id = r.json()["id"]
    assert db.exists()
    with serve(admin_token="another-token-7890", db_path=db) as again:
        got = httpx.get(f"{again.url}/children/{child_id}", headers={"Authorization": "Bearer another-token-7890"})
        assert got.status_code == 200 and got.json()["family_name"] == "Persist"
        old = httpx.get(f"{again.url}/practitioners/me", headers={"Authorization": "Bearer admin-token-123456"})
        assert old.status_code == 401


def test_tokens_are_stored_only_as_digests(tmp_path: Path) -> None:
    db = tmp_path / "ref.sqlite"
    with serve(admin_token="admin-token-abcdef", db_path=db) as s:
        created = httpx.post(
            f"{s.url}/practitioners",
            headers={"Authorization": "Bearer admin-token-abcdef"},
            json={"name": "P", "role": "manager"},
        ).json()
    raw = db.read_bytes() + (
        db.with_name(db.name + "-wal").read_bytes() if db.with_name(db.name + "-wal").exists() else b""
    )
    assert b"admin-token-abcdef" not in raw and created["token"].encode() not in raw
