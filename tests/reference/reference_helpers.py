"""Helpers for the reference-service tests: a thin API driver with unique synthetic data."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import httpx

from conformance.domain import identifiers

#: The fixed "today" of the test services (a Tuesday; 2008 bank holidays are known).
TODAY = date(2008, 9, 30)
_counter = itertools.count(1)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def unique_name(prefix: str = "Zz") -> str:
    """A letters-only family name no other test uses (names may not contain digits)."""
    n = next(_counter) * 7919 + secrets.randbelow(10**9)
    out = ""
    while n:
        n, r = divmod(n, 26)
        out += _LETTERS[r]
    return prefix + out


def valid_upn(serial: int | None = None) -> str:
    body = f"20108{(serial if serial is not None else secrets.randbelow(10**7)):07d}"
    return identifiers.upn_check_letter(body) + body


def valid_nhs() -> str:
    while True:
        body = f"{secrets.randbelow(9 * 10**8) + 10**8:09d}"
        try:
            return body + identifiers.nhs_check_digit(body)
        except ValueError:
            continue


@cache
def _transport() -> httpx.HTTPTransport:
    """One plain-HTTP transport for every client: a new httpx.Client builds a TLS context (~50 ms)."""
    return httpx.HTTPTransport(verify=False)


@dataclass
class Who:
    """A practitioner: id, role and an authenticated client."""

    id: str
    role: str
    client: httpx.Client


class Api:
    """Drive one running reference service as its admin and as provisioned practitioners."""

    def __init__(self, service: Any) -> None:
        self.url = service.url
        self._transport = _transport()
        self.admin = self.client(service.admin_token)
        self.anon = self.client(None)

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, transport=self._transport)

    def close(self) -> None:
        """Nothing to release: the transport is shared by every test."""

    def practitioner(self, role: str = "practitioner") -> Who:
        r = self.admin.post("/practitioners", json={"name": f"Test {role}", "role": role})
        assert r.status_code == 201, r.text
        body = r.json()
        return Who(body["id"], role, self.client(body["token"]))

    def child(self, client: httpx.Client | None = None, **fields: Any) -> dict[str, Any]:
        payload = {"given_name": "Ann", "family_name": unique_name(), "date_of_birth": "2001-05-06", "gender": "female"}
        payload.update(fields)
        payload = {k: v for k, v in payload.items() if v is not ...}
        r = (client or self.admin).post("/children", json=payload)
        assert r.status_code == 201, r.text
        return r.json()

    def search(self, client: httpx.Client | None = None, **params: Any) -> dict[str, Any]:
        r = (client or self.admin).get("/children", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def search_ids(self, client: httpx.Client | None = None, **params: Any) -> set[str]:
        return {c["id"] for c in self.search(client, page_size=100, **params)["items"]}

    def allocate(self, child_id: str, practitioner_id: str, **extra: Any) -> dict[str, Any]:
        r = self.admin.post(f"/children/{child_id}/allocations", json={"practitioner_id": practitioner_id, **extra})
        assert r.status_code == 201, r.text
        return r.json()

    def note(
        self, child_id: str, who: Who | None = None, text: str = "Visited; all well.", restricted: bool = False
    ) -> dict[str, Any]:
        client = who.client if who else self.admin
        r = client.post(f"/children/{child_id}/case-notes", json={"text": text, "restricted": restricted})
        assert r.status_code == 201, r.text
        return r.json()

    def inbox(self, who: Who, **params: Any) -> list[dict[str, Any]]:
        r = who.client.get("/practitioners/me/notifications", params={"page_size": 100, **params})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def assessment(
        self, child_id: str, kind: str = "initial", start: str = "2008-09-01", **extra: Any
    ) -> httpx.Response:
        return self.admin.post(f"/children/{child_id}/assessments", json={"type": kind, "start_date": start, **extra})

    def visit(self, assessment_id: str, visit_date: str, seen: bool = True, **extra: Any) -> httpx.Response:
        return self.admin.post(
            f"/assessments/{assessment_id}/visits", json={"visit_date": visit_date, "child_seen": seen, **extra}
        )

    def complete(self, assessment_id: str, **body: Any) -> httpx.Response:
        return self.admin.post(f"/assessments/{assessment_id}/complete", json=body)
