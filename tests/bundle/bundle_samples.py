"""Realistic sample results for the bundle tests (until real runs feed them)."""

from __future__ import annotations

import copy
from typing import Any

from conformance.certificate.bundle import _current_spec
from conformance.certificate.redaction import Redactor

KNOWN_TOKEN = "tok_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
KNOWN_NAMES = ("Anneliese", "Okonkwo-Barraclough")


def _spec() -> dict[str, str]:
    version, digest = _current_spec()
    return {"version": version, "sha256": digest}


def http_evidence(
    redactor: Redactor | None = None, *, given: str = "Victoria", family: str = "Climbié"
) -> dict[str, Any]:
    """One HTTP exchange as the API client records it, optionally through a Redactor."""
    redactor = redactor or Redactor("none")
    return {
        "kind": "http",
        "request": {
            "method": "GET",
            "url": redactor.text(f"http://127.0.0.1:8765/children?given_name={given}&family_name={family}&page=1"),
            "headers": redactor.headers({"Authorization": f"Bearer {KNOWN_TOKEN}", "Accept": "application/json"}),
            "json": None,
        },
        "response": {
            "status": 200,
            "headers": redactor.headers({"content-type": "application/json", "set-cookie": f"session={KNOWN_TOKEN}"}),
            "json": redactor.body(
                {
                    "items": [
                        {
                            "id": "c-1",
                            "given_name": given,
                            "family_name": family,
                            "date_of_birth": "2000-11-02",
                            "postcode": "N17 6SB",
                            "upn": "A123456789012",
                            "token": KNOWN_TOKEN,
                        }
                    ],
                    "page": 1,
                    "page_size": 20,
                    "total": 1,
                }
            ),
        },
        "elapsed_ms": 3.2,
    }


def _check(cid: str, rid: str, kind: str, verdict: str, **extra: Any) -> dict[str, Any]:
    data = {
        "id": cid,
        "requirements": [rid],
        "kind": kind,
        "verdict": verdict,
        "failed_requirements": [],
        "message": None,
        "duration": 0.25,
        "reproduce": None,
        "evidence": [],
    }
    data.update(extra)
    return data


def _req(
    rid: str,
    title: str,
    area: str,
    verdict: str,
    checks: list[dict[str, Any]],
    level: str = "MUST",
    channel: str = "api",
    capability: str | None = None,
) -> dict[str, Any]:
    return {
        "id": rid,
        "title": title,
        "statement": f"The system {title.lower()}.",
        "level": level,
        "phase": rid.split("-")[1],
        "area": area,
        "channel": channel,
        "capability": capability,
        "verdict": verdict,
        "waiver": None,
        "checks": checks,
    }


def make_result(
    *,
    about: dict[str, Any] | None = None,
    builtin: bool = True,
    evidence: list[dict[str, Any]] | None = None,
    with_error: bool = False,
) -> dict[str, Any]:
    """A realistic phase-1B result: several requirements per area, every verdict kind."""
    evidence = evidence if evidence is not None else [http_evidence()]
    repro = "ics-conformance certify --phase 1B --target http://127.0.0.1:8765 --seed 1234 -k test_accent_insensitive"
    reqs = [
        _req(
            "ICS-1A-REC-001",
            "Creates a child and reads it back unchanged",
            "records",
            "PASS",
            [_check("suites/api/test_records.py::test_create_read", "ICS-1A-REC-001", "scenario", "PASS")],
        ),
        _req(
            "ICS-1A-REC-002",
            "Validates the UPN check letter",
            "records",
            "PASS",
            [_check("suites/api/test_records.py::test_upn", "ICS-1A-REC-002", "property", "PASS")],
        ),
        _req(
            "ICS-1A-REC-006",
            "Records an unborn child",
            "records",
            "NOT_APPLICABLE",
            [
                _check(
                    "suites/api/test_records.py::test_unborn",
                    "ICS-1A-REC-006",
                    "scenario",
                    "NOT_APPLICABLE",
                    message="capability unborn_children not declared",
                )
            ],
            capability="unborn_children",
        ),
        _req(
            "ICS-1A-REC-007",
            "Updates a child record with PATCH",
            "records",
            "SKIPPED",
            [
                _check(
                    "suites/api/test_records.py::test_patch",
                    "ICS-1A-REC-007",
                    "scenario",
                    "SKIPPED",
                    message="prerequisite child could not be created",
                )
            ],
            level="SHOULD",
        ),
        _req(
            "ICS-1B-SRCH-001",
            "Finds names case- and accent-insensitively",
            "search",
            "FAIL",
            [
                _check(
                    "suites/api/test_search.py::test_accent_insensitive",
                    "ICS-1B-SRCH-001",
                    "property",
                    "FAIL",
                    message="search given_name='Climbie' did not return child c-1 (given_name 'Climbié')",
                    example={"given_name": "Climbie", "stored": "Climbié"},
                    reproduce=repro,
                    evidence=evidence,
                )
            ],
        ),
        _req(
            "ICS-1B-SRCH-002",
            "Matches partial names",
            "search",
            "PASS",
            [_check("suites/api/test_search.py::test_partial", "ICS-1B-SRCH-002", "scenario", "PASS")],
        ),
        _req(
            "ICS-1B-SRCH-003",
            "Pages without dropping or repeating results",
            "search",
            "FAIL",
            [
                _check(
                    "suites/api/test_search.py::test_paging",
                    "ICS-1B-SRCH-003",
                    "property",
                    "FAIL",
                    message="record c-7 appeared on page 1 and page 2",
                    reproduce=repro + "_paging",
                )
            ],
            level="SHOULD",
        ),
        _req(
            "ICS-1B-NOTIF-001",
            "Notifies every allocated practitioner",
            "notifications",
            "PASS",
            [_check("suites/api/test_notifications.py::test_allocated", "ICS-1B-NOTIF-001", "scenario", "PASS")],
        ),
        _req(
            "ICS-1B-NOTIF-002",
            "Does not notify the author",
            "notifications",
            "PASS",
            [_check("suites/api/test_notifications.py::test_author", "ICS-1B-NOTIF-002", "scenario", "PASS")],
        ),
        _req(
            "ICS-1B-GATE-001",
            "Refuses completion unless the child was seen",
            "gating",
            "PASS",
            [_check("suites/api/test_gating.py::test_not_seen", "ICS-1B-GATE-001", "scenario", "PASS")],
        ),
        _req(
            "ICS-1A-API-001",
            "Responses conform to the OpenAPI document",
            "contract",
            "FAIL",
            [
                _check(
                    "suites/api/test_contract.py::test_schemathesis[GET /children]",
                    "ICS-1A-API-001",
                    "contract",
                    "FAIL",
                    message="response violates schema: 'total' is a required property",
                    reproduce="curl -X GET ...",
                )
            ],
        ),
    ]
    if with_error:
        reqs.append(
            _req(
                "ICS-1B-ACC-001",
                "Rejects a missing token with 401",
                "access",
                "ERROR",
                [
                    _check(
                        "suites/api/test_access.py::test_no_token",
                        "ICS-1B-ACC-001",
                        "scenario",
                        "ERROR",
                        message="httpx.ConnectTimeout: timed out",
                    )
                ],
            )
        )
    counts: dict[str, int] = {}
    areas: dict[str, dict[str, int]] = {}
    for r in reqs:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
        areas.setdefault(r["area"], {})
        areas[r["area"]][r["verdict"]] = areas[r["area"]].get(r["verdict"], 0) + 1
    return {
        "format": "ics-conformance/result/1",
        "run_id": "r-20080930-0001",
        "phase": "1B",
        "channels": ["api"],
        "verdict": "INCONCLUSIVE" if with_error else "NOT_CERTIFIED",
        "spec": _spec(),
        "harness": {
            "version": "0.1.0",
            "python": "3.11.9",
            "dependencies": {"hypothesis": "6.120.0", "pytest": "8.3.0"},
        },
        "target": {
            "url": "http://127.0.0.1:8765",
            "builtin_reference": builtin,
            "faults": [],
            "about": copy.deepcopy(about)
            if about is not None
            else {
                "supplier": "Acme Care Systems",
                "product": "CareCase",
                "version": "4.2.1",
                "spec_versions": ["2008.1"],
                "capabilities": {"audit": True},
            },
            "export": None,
        },
        "capabilities": {"audit": True, "unborn_children": False},
        "profile": "quick",
        "seed": 1234,
        "started_at": "2008-09-30T10:00:00Z",
        "finished_at": "2008-09-30T10:01:05Z",
        "command": "ics-conformance certify --phase 1B --profile quick --target http://127.0.0.1:8765",
        "counts": counts,
        "areas": areas,
        "requirements": reqs,
        "unknown_requirements": [],
        "findings": [],
        "waivers": {"applied": [], "unmatched": [], "refused": []},
        "errors": [],
    }
