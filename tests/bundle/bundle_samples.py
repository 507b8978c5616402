"""Realistic sample results for the bundle tests (until real runs feed them)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance.certificate.bundle import _current_spec
from conformance.certificate.redaction import Redactor
from conformance.results.result import CheckResult, build_result
from conformance.results.verdicts import Verdict

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


def _check(rid: str, verdict: str, kind: str = "scenario", name: str | None = None, **extra: Any) -> CheckResult:
    area = rid.split("-")[2].lower()
    return CheckResult(
        id=f"conformance/suites/api/test_{area}.py::{name or 'test_' + rid.lower().replace('-', '_')}",
        requirements=(rid,),
        kind=kind,
        verdict=Verdict(verdict),
        duration=0.25,
        **extra,
    )


#: The sample's special cases; every other in-scope requirement gets one passing check.
def _special(evidence: list[dict[str, Any]], with_error: bool) -> dict[str, CheckResult]:
    repro = "ics-conformance certify --phase 1B --target http://127.0.0.1:8765 --seed 1234 -k test_accent_insensitive"
    special = {
        "ICS-1A-REC-006": _check(
            "ICS-1A-REC-006", "NOT_APPLICABLE", name="test_unborn", message="capability unborn_children not declared"
        ),
        "ICS-1A-REC-007": _check(
            "ICS-1A-REC-007", "SKIPPED", name="test_patch", message="prerequisite child could not be created"
        ),
        "ICS-1B-SRCH-001": _check(
            "ICS-1B-SRCH-001",
            "FAIL",
            "property",
            name="test_accent_insensitive",
            message="search given_name='Climbie' did not return child c-1 (given_name 'Climbié')",
            reproduce=repro,
            evidence=evidence,
        ),
        "ICS-1A-ALLOC-003": _check(
            "ICS-1A-ALLOC-003",
            "FAIL",
            name="test_unknown_practitioner",
            message="allocating practitioner p-404 answered 201, expected 422 UNKNOWN_PRACTITIONER",
            reproduce=repro + "_paging",
        ),
        "ICS-1A-API-001": _check(
            "ICS-1A-API-001",
            "FAIL",
            "contract",
            name="test_schemathesis[GET /children]",
            message="response violates schema: 'total' is a required property",
            reproduce="curl -X GET ...",
        ),
    }
    if with_error:
        special["ICS-1B-ACC-001"] = _check(
            "ICS-1B-ACC-001", "ERROR", name="test_no_token", message="httpx.ConnectTimeout: timed out"
        )
    return special


def make_result(
    *,
    about: dict[str, Any] | None = None,
    builtin: bool = True,
    evidence: list[dict[str, Any]] | None = None,
    with_error: bool = False,
) -> dict[str, Any]:
    """A realistic phase-1B result built as a run builds it: every verdict kind, consistent with the catalogue.

    MUST FAIL: ICS-1B-SRCH-001 (with evidence) and ICS-1A-API-001; SHOULD FAIL: ICS-1A-ALLOC-003;
    SHOULD SKIPPED: ICS-1A-REC-007; NOT_APPLICABLE: capabilities not declared (unborn children,
    restricted notes, shielded records, bulk export); ``with_error``: ICS-1B-ACC-001 ERROR.
    """
    from conformance.spec.catalogue import load_catalogue

    evidence = evidence if evidence is not None else [http_evidence()]
    special = _special(evidence, with_error)
    checks = [special.get(r.id) or _check(r.id, "PASS") for r in load_catalogue().in_scope("1B", channels=["api"])]
    about = (
        copy.deepcopy(about)
        if about is not None
        else {
            "supplier": "Acme Care Systems",
            "product": "CareCase",
            "version": "4.2.1",
            "spec_versions": ["2008.1"],
            "capabilities": {"audit": True},
        }
    )
    result = build_result(
        phase="1B",
        channels=["api"],
        checks=checks,
        target={
            "url": "http://127.0.0.1:8765",
            "builtin_reference": builtin,
            "faults": [],
            "about": about,
            "export": None,
        },
        capabilities={"audit": True, "unborn_children": False},
        profile="quick",
        seed=1234,
        run_id="r-20080930-0001",
        started_at=datetime(2008, 9, 30, 10, 0, 0, tzinfo=UTC),
        finished_at=datetime(2008, 9, 30, 10, 1, 5, tzinfo=UTC),
        command="ics-conformance certify --phase 1B --profile quick --target http://127.0.0.1:8765",
    )
    # a property check's shrunk example (kept beside the check, as the plugin records Hypothesis examples)
    requirement(result, "ICS-1B-SRCH-001")["checks"][0]["example"] = {"given_name": "Climbie", "stored": "Climbié"}
    return result


def requirement(result: dict[str, Any], rid: str) -> dict[str, Any]:
    """The record of requirement ``rid`` in ``result``."""
    return next(r for r in result["requirements"] if r["id"] == rid)


def write_keyring(path: Path, *entries: tuple[Path, str, str, dict[str, Any] | None]) -> Path:
    """Write a keyring file: one ``(public key file, party, role, scope)`` per key."""
    keys = []
    for public, party, role, scope in entries:
        entry: dict[str, Any] = {"public_key": Path(public).read_text(encoding="ascii"), "party": party, "role": role}
        if scope is not None:
            entry["scope"] = scope
        keys.append(entry)
    path.write_text(json.dumps({"format": "ics-conformance/keyring/1", "keys": keys}, indent=2), encoding="utf-8")
    return path
