"""A phase 1C pair run's bundle: the report shows the pair and the DRAFT label; verify re-derives the peer's verdicts too."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forgery import copy_bundle, forge

from conformance.certificate.bundle import write_bundle
from conformance.certificate.signing import generate_keypair
from conformance.certificate.verify import verify_bundle
from conformance.results.result import CheckResult, build_result, result_problems
from conformance.results.verdicts import Verdict
from conformance.spec.catalogue import load_catalogue

CAPABILITIES = {
    "audit": True,
    "bulk_export": True,
    "inter_council_transfer": True,
    "chronology_export": True,
    "shielded_records": True,
    "restricted_notes": True,
    "seen_alone": True,
    "unborn_children": True,
}
PEER_JUDGED = ("ICS-1C-XFER-001", "ICS-1C-XFER-002", "ICS-1C-XFER-003", "ICS-1C-AUD-004")


def _system(url: str, council: str) -> dict[str, Any]:
    about = {
        "supplier": "Acme",
        "product": "CareCase",
        "version": "5",
        "spec_versions": ["2008.1", "2008.2"],
        "council": council,
        "capabilities": CAPABILITIES,
    }
    return {"url": url, "builtin_reference": False, "faults": [], "about": about, "export": None}


def _pair_result() -> dict[str, Any]:
    """A 1C pair run: everything PASS on the target; the peer broke XFER-003."""
    checks = [
        CheckResult(f"suite::{r.id}", (r.id,), "scenario", Verdict.PASS)
        for r in load_catalogue().in_scope("1C", channels=["api"])
    ]
    for rid in PEER_JUDGED:
        verdict = Verdict.FAIL if rid == "ICS-1C-XFER-003" else Verdict.PASS
        message = "[ICS-1C-XFER-003] peer (Council B) importing from the target (Council A): aliases lost"
        checks.append(
            CheckResult(
                f"transfer::{rid}[peer]",
                (rid,),
                "scenario",
                verdict,
                message=message if verdict is Verdict.FAIL else None,
                side="peer",
            )
        )
    return build_result(
        phase="1C",
        channels=["api"],
        checks=checks,
        target=_system("http://council-a.example", "Council A"),
        capabilities=CAPABILITIES,
        run_id="r-pair",
        started_at=datetime(2008, 9, 30, 10, 0, tzinfo=UTC),
        finished_at=datetime(2008, 9, 30, 10, 1, tzinfo=UTC),
        command="ics-conformance certify --phase 1C --peer-target http://council-b.example",
        peer={"target": _system("http://council-b.example", "Council B"), "capabilities": CAPABILITIES},
    )


def test_pair_result_shape_and_verdicts() -> None:
    result = _pair_result()
    assert not result_problems(result), result_problems(result)[:5]
    assert result["draft"] is True and result["verdict"] == "CERTIFIED"
    assert result["peer"]["verdict"] == "NOT_CERTIFIED"
    assert [r["id"] for r in result["peer"]["requirements"] if r["verdict"] == "FAIL"] == ["ICS-1C-XFER-003"]


def test_pair_bundle_verifies_and_a_forged_peer_verdict_does_not(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    private, public = generate_keypair(keys)
    bundle = write_bundle(_pair_result(), tmp_path / "out", sign_key=private)
    html = (bundle.directory / "report.html").read_text(encoding="utf-8")
    assert "DRAFT" in html and "Council B" in html and "ICS-1C-XFER-003" in html and 'id="pair"' in html
    assert verify_bundle(bundle.directory, public).ok

    def flip(certificate: dict[str, Any]) -> None:  # the signer blames nobody: the peer "passed"
        peer = certificate["result"]["peer"]
        for record in peer["requirements"]:
            record["verdict"] = "PASS"
        peer["verdict"], peer["counts"] = "CERTIFIED", {"PASS": len(peer["requirements"])}

    forged = forge(copy_bundle(bundle.directory, tmp_path / "forged"), private, flip)
    outcome = verify_bundle(forged, public)
    assert not outcome.ok and "peer requirement ICS-1C-XFER-003" in str(outcome.problem)

    def move(certificate: dict[str, Any]) -> None:  # a peer check counted for the target
        result = certificate["result"]
        record = next(r for r in result["requirements"] if r["id"] == "ICS-1C-XFER-001")
        record["checks"].append(result["peer"]["requirements"][0]["checks"][0])

    moved = forge(copy_bundle(bundle.directory, tmp_path / "moved"), private, move)
    assert not verify_bundle(moved, public).ok
