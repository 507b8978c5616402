"""The compliance rules (docs/design.md §10) on hand-made rows: no database, every rule and boundary."""

from __future__ import annotations

import datetime as dt

import pytest

from conformance.registry.rules import (
    Cert,
    Deployment,
    PhaseRule,
    Programme,
    Version,
    deployment_intervals,
    requirement_phase,
)

D = dt.date
A = PhaseRule("1A", 1, deadline=D(2007, 1, 1))
B = PhaseRule("1B", 2, deadline=D(2008, 9, 30))
C = PhaseRule("1C", 3)
LEEDS, KENT = 383, 886


def cert(cid: str, version: int = 1, **kw: object) -> Cert:
    fields: dict[str, object] = {
        "id": cid * 8,
        "version_id": version,
        "phase": "1B",
        "verdict": "CERTIFIED",
        "assurance": "self-assessed",
        "finished_on": D(2008, 1, 15),
        "signer_role": "supplier",
    }
    fields.update(kw)
    return Cert(**fields)  # type: ignore[arg-type]


def programme(*certs: Cert, rules: tuple[PhaseRule, ...] = (A, B, C)) -> Programme:
    p = Programme(phases={r.code: r for r in rules})
    p.versions = {
        1: Version(1, "Acme", "CaseBook", "3.5"),
        2: Version(2, "Acme", "CaseBook", "3.0"),
        3: Version(3, "Zenith", "ChildView", "7.3"),
    }
    for c in certs:
        p.add_certificate(c)
    return p


def deploy(p: Programme, council: int, version: int, day: dt.date, ident: int = 0) -> None:
    p.add_deployment(Deployment(ident or len(p.deployments.get(council, [])) + 100 * council, council, version, day))


def test_compliant_with_the_proving_certificate() -> None:
    p = programme(cert("a"))
    deploy(p, LEEDS, 1, D(2008, 3, 1))
    status = p.status(LEEDS, "1B", D(2008, 3, 31))
    assert status.compliant and [c.id for c in status.proving] == ["a" * 8]
    assert "holds a valid 1B certificate" in status.reason


def test_no_deployment() -> None:
    p = programme(cert("a"))
    status = p.status(LEEDS, "1B", D(2008, 3, 31))
    assert not status.compliant and "no deployment recorded" in status.reason
    deploy(p, LEEDS, 1, D(2008, 4, 1))
    status = p.status(LEEDS, "1B", D(2008, 3, 31))
    assert not status.compliant and "the first starts 2008-04-01" in status.reason


def test_deployment_day_boundaries_and_the_later_record_wins_a_tie() -> None:
    p = programme(cert("a"))
    deploy(p, LEEDS, 1, D(2008, 3, 1), ident=1)
    deploy(p, LEEDS, 2, D(2008, 5, 1), ident=2)  # a downgrade to an uncertified version
    assert p.status(LEEDS, "1B", D(2008, 3, 1)).compliant  # from day inclusive
    assert p.status(LEEDS, "1B", D(2008, 4, 30)).compliant
    assert not p.status(LEEDS, "1B", D(2008, 5, 1)).compliant  # next deployment's day exclusive
    deploy(p, LEEDS, 1, D(2008, 5, 1), ident=3)  # a correction recorded later for the same day
    assert p.status(LEEDS, "1B", D(2008, 5, 1)).compliant
    spans = deployment_intervals(p.deployments[LEEDS])
    assert [(d.id, s) for d, s in spans] == [(1, (D(2008, 3, 1), D(2008, 5, 1))), (3, (D(2008, 5, 1), None))]


def test_certificate_counts_from_the_day_its_run_finished() -> None:
    p = programme(cert("a", finished_on=D(2008, 4, 2)))
    deploy(p, LEEDS, 1, D(2008, 3, 1))
    status = p.status(LEEDS, "1B", D(2008, 4, 1))
    assert not status.compliant and "run finished 2008-04-02, after 2008-04-01" in status.reason
    assert p.status(LEEDS, "1B", D(2008, 4, 2)).compliant


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"verdict": "NOT_CERTIFIED"}, "verdict NOT CERTIFIED"),
        ({"verdict": "INCONCLUSIVE"}, "verdict INCONCLUSIVE"),
        ({"revoked": True, "revoked_reason": "evidence withdrawn"}, "revoked (evidence withdrawn)"),
        ({"verified_ok": False, "verify_problem": "key revoked"}, "failed re-verification (key revoked)"),
        ({"phase": "1A"}, "phase 1A does not cover 1B"),
    ],
)
def test_a_certificate_that_does_not_prove(change: dict[str, object], why: str) -> None:
    p = programme(cert("a", **change))
    deploy(p, LEEDS, 1, D(2008, 3, 1))
    status = p.status(LEEDS, "1B", D(2008, 6, 1))
    assert not status.compliant and why in status.reason
    assert [c.id for c, _ in status.rejected] == ["a" * 8]


def test_phases_are_cumulative() -> None:
    p = programme(cert("a", phase="1C"))
    deploy(p, LEEDS, 1, D(2008, 3, 1))
    assert all(p.status(LEEDS, ph, D(2008, 6, 1)).compliant for ph in ("1A", "1B", "1C"))
    p = programme(cert("a", phase="1A"))
    deploy(p, LEEDS, 1, D(2008, 3, 1))
    assert p.status(LEEDS, "1A", D(2008, 6, 1)).compliant
    assert not p.status(LEEDS, "1B", D(2008, 6, 1)).compliant


def test_waiver_expiry_ends_the_proof_for_the_phase_it_waives() -> None:
    p = programme(cert("a", waivers=(("1B", D(2008, 12, 31)),)))
    deploy(p, LEEDS, 1, D(2008, 3, 1))
    assert p.status(LEEDS, "1B", D(2008, 12, 31)).compliant  # the expiry day is still valid
    status = p.status(LEEDS, "1B", D(2009, 1, 1))
    assert not status.compliant and "waiver that expired on 2008-12-31" in status.reason
    # A 1B waiver does not matter when the same certificate proves 1A.
    assert p.status(LEEDS, "1A", D(2009, 1, 1)).compliant
    assert p.council_intervals(LEEDS, "1B") == [(D(2008, 3, 1), D(2009, 1, 1))]
    assert p.council_intervals(LEEDS, "1A") == [(D(2008, 3, 1), None)]


def test_witnessed_assurance_when_the_phase_requires_it() -> None:
    strict = PhaseRule("1B", 2, min_assurance="witnessed")
    p = programme(cert("a"), rules=(A, strict, C))
    deploy(p, LEEDS, 1, D(2008, 3, 1))
    status = p.status(LEEDS, "1B", D(2008, 6, 1))
    assert not status.compliant and "requires witnessed" in status.reason
    p.add_certificate(cert("w", assurance="witnessed", signer_role="test_lab"))
    assert p.status(LEEDS, "1B", D(2008, 6, 1)).compliant


def test_council_local_qa_when_the_phase_requires_it() -> None:
    local = PhaseRule("1B", 2, requires_local_qa=True)
    p = programme(cert("a"), rules=(A, local, C))
    deploy(p, LEEDS, 1, D(2008, 3, 1))
    deploy(p, KENT, 1, D(2008, 3, 1))
    status = p.status(LEEDS, "1B", D(2008, 6, 1))
    assert not status.compliant and "council-run local QA" in status.reason
    p.add_certificate(cert("q", signer_role="council", council_code=LEEDS, finished_on=D(2008, 5, 1)))
    status = p.status(LEEDS, "1B", D(2008, 6, 1))
    assert status.compliant and [c.id for c in status.local_qa] == ["q" * 8]
    assert not p.status(KENT, "1B", D(2008, 6, 1)).compliant  # Leeds' QA is not Kent's
    assert not p.status(LEEDS, "1B", D(2008, 4, 30)).compliant  # before the QA run
    assert p.council_intervals(LEEDS, "1B") == [(D(2008, 5, 1), None)]


def test_a_council_qa_certificate_alone_is_not_the_supplier_certification() -> None:
    p = programme(cert("q", signer_role="council", council_code=LEEDS))
    deploy(p, LEEDS, 1, D(2008, 3, 1))
    assert not p.status(LEEDS, "1B", D(2008, 6, 1)).compliant


def test_upgrade_hint_names_certified_versions_of_the_same_product() -> None:
    p = programme(cert("a", version=1))
    deploy(p, LEEDS, 2, D(2008, 3, 1))
    status = p.status(LEEDS, "1B", D(2008, 6, 1))
    assert not status.compliant and "versions certified for 1B: 3.5" in status.reason


def test_compliance_over_time_counts_every_change() -> None:
    p = programme(cert("a", finished_on=D(2008, 2, 1), waivers=(("1B", D(2008, 10, 31)),)), cert("z", version=3))
    deploy(p, LEEDS, 1, D(2008, 1, 1))
    deploy(p, KENT, 3, D(2008, 3, 15))
    deploy(p, KENT, 2, D(2008, 6, 1))
    steps = p.compliance_over_time("1B", [LEEDS, KENT, 201])
    assert steps == [(D(2008, 2, 1), 1), (D(2008, 3, 15), 2), (D(2008, 6, 1), 1), (D(2008, 11, 1), 0)]
    for day, expected in steps:
        assert sum(p.status(code, "1B", day).compliant for code in (LEEDS, KENT, 201)) == expected


def test_requirement_phase() -> None:
    assert requirement_phase("ICS-1B-SRCH-001") == "1B"
    assert requirement_phase("ICS-1A-EXP-009") == "1A"
    assert requirement_phase("something else") == ""
