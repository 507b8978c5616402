"""The registry store on SQLite and on a real PostgreSQL server: schema, councils, submit, rules through the database."""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from registry_support import counts, issue

from conformance.errors import UsageError
from conformance.registry import migrate
from conformance.registry import schema as t
from conformance.registry.intake import Refused
from conformance.registry.store import Registry, load_councils_csv

D = dt.date


def test_councils_of_2008() -> None:
    rows = load_councils_csv()
    assert len(rows) == 150
    assert len({r["code"] for r in rows}) == 150 and len({r["name"] for r in rows}) == 150
    by_code = {r["code"]: r["name"] for r in rows}
    assert by_code[201] == "City of London" and by_code[938] == "West Sussex" and by_code[383] == "Leeds"
    # Before the 2009 reorganisation: Bedfordshire and Cheshire still whole, Cornwall, Durham,
    # Northumberland, Shropshire and Wiltshire still counties.
    assert by_code[820] == "Bedfordshire" and by_code[875] == "Cheshire"
    assert not {822, 823, 895, 896} & set(by_code)  # Bedford, Central Bedfordshire, Cheshire East, Cheshire West
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r["type"]] = kinds.get(r["type"], 0) + 1
    assert kinds == {
        "London borough": 32,
        "City of London Corporation": 1,
        "Metropolitan district": 36,
        "County": 34,
        "Unitary authority": 46,
        "Sui generis": 1,
    }
    assert {r["region"] for r in rows} == {
        "London",
        "North East",
        "North West",
        "Yorkshire and the Humber",
        "East Midlands",
        "West Midlands",
        "East of England",
        "South East",
        "South West",
    }


def test_init_creates_and_is_idempotent(db_url: str) -> None:
    with Registry(db_url) as registry:
        with pytest.raises(UsageError, match="not initialised"):
            registry.require_ready()
        first = registry.init()
        assert first["revision_before"] is None and first["revision"] == migrate.head()
        assert first["councils_added"] == 150 and first["phases_added"] == 3
        again = registry.init()
        assert again["revision_before"] == migrate.head() and again["councils_added"] == 0
        registry.require_ready()
        assert len(registry.councils()) == 150
        phases = {p["code"]: p for p in registry.phase_rows()}
        assert phases["1A"]["deadline"] == D(2007, 1, 1)
        assert [h["deadline"] for h in phases["1B"]["history"]] == [D(2008, 3, 31), D(2008, 9, 30)]
        assert phases["1B"]["deadline"] == D(2008, 9, 30) and phases["1C"]["deadline"] is None


def test_migrated_schema_matches_the_tables(registry: Registry) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with registry.engine.connect() as c:
        context = MigrationContext.configure(c, opts={"compare_type": True})
        diff = compare_metadata(context, t.metadata)
    assert diff == []


def test_submit_stores_a_real_bundle_once(registry: Registry, parties: Any, real_run: dict[str, Any]) -> None:
    outcome = registry.submit(real_run["zip"])
    assert outcome.created and outcome.verdict == "CERTIFIED" and outcome.phase == "1B"
    assert outcome.assurance == "witnessed"  # signed by an independent test lab
    assert (outcome.supplier, outcome.product) == ("ics-conformance", "ICS reference service")
    again = registry.submit(real_run["zip"])
    assert not again.created and again.certificate_id == outcome.certificate_id
    from_directory = registry.submit(real_run["dir"])  # the same bundle as a directory: same manifest
    assert not from_directory.created and from_directory.certificate_id == outcome.certificate_id
    assert counts(registry) == {"bundles": 1, "certificates": 1, "waivers": 0, "versions": 1}
    row = registry.certificate_rows()[0]
    assert (
        row["run_id"] == real_run["result"]["run_id"] and row["spec_version"] == real_run["result"]["spec"]["version"]
    )
    assert row["finished_on"] == dt.date.fromisoformat(real_run["result"]["finished_at"][:10])
    # content-addressed: the certificate id is the sha256 of manifest.json
    import hashlib

    manifest = (real_run["dir"] / "manifest.json").read_bytes()
    assert outcome.certificate_id == hashlib.sha256(manifest).hexdigest()
    content, _ = registry.bundle(outcome.certificate_id)
    assert content == real_run["zip"].read_bytes()
    assert b"<html" in registry.bundle_member(outcome.certificate_id, "report.html")[:200].lower()


def _refused(registry: Registry, bundle: Path, match: str) -> None:
    before = counts(registry)
    with pytest.raises(Refused, match=match):
        registry.submit(bundle)
    assert counts(registry) == before, "a refused bundle left something behind"


def test_submit_refuses_unverifiable_bundles(
    registry: Registry, parties: Any, real_run: dict[str, Any], tmp_path: Path, keys: Any
) -> None:
    # tampered: one byte of the report changed
    tampered = tmp_path / "tampered" / real_run["dir"].name
    shutil.copytree(real_run["dir"], tampered)
    report = tampered / "report.html"
    report.write_bytes(report.read_bytes().replace(b"CERTIFIED", b"CERTIFIEd", 1))
    _refused(registry, tampered, "does not verify: report.html: .*sha256 mismatch")
    # unsigned: the signature removed
    unsigned = tmp_path / "unsigned" / real_run["dir"].name
    shutil.copytree(real_run["dir"], unsigned)
    (unsigned / "manifest.sig").unlink()
    _refused(registry, unsigned, "manifest.sig: missing")
    # not a bundle at all
    junk = tmp_path / "junk.zip"
    with zipfile.ZipFile(junk, "w") as archive:
        archive.writestr("hello.txt", "hi")
    _refused(registry, junk, "manifest.json")
    # a supplier's key signing another supplier's product: the bundle writer refuses to sign it
    # (and verify refuses such a bundle: the keyring scopes of docs/design.md §9)
    with pytest.raises(UsageError, match="may sign only for supplier 'Zenith Demo plc'"):
        issue(real_run["result"], tmp_path / "b", keys["zenith"][0], supplier="Acme Demo Ltd")
    assert counts(registry)["bundles"] == 0


def test_submit_refuses_unknown_and_revoked_keys(
    registry: Registry, real_run: dict[str, Any], keys: Any, tmp_path: Path
) -> None:
    _refused(registry, real_run["zip"], "not registered")
    registry.add_key("Example Test Lab (fictional)", "test_lab", keys["lab"][1].read_text())
    from conformance.certificate.signing import key_id, load_public_key

    kid = key_id(load_public_key(keys["lab"][1]))
    registry.revoke_key(kid, "private key left on a shared drive")
    _refused(registry, real_run["zip"], "revoked on .*shared drive")


def test_status_through_the_database(
    registry: Registry, parties: Any, real_run: dict[str, Any], tmp_path: Path
) -> None:
    result = real_run["result"]
    acme = parties["acme"][0]
    registry.submit(issue(result, tmp_path, acme, version="3.0", finished="2006-11-20", phase="1A"))
    registry.submit(issue(result, tmp_path, acme, version="3.5", finished="2008-01-15"))
    registry.submit(issue(result, tmp_path, acme, version="3.6", finished="2008-02-01", fail=("ICS-1B-SRCH-001",)))
    registry.deploy("Leeds", "CaseBook Demo", "3.0", D(2006, 12, 1))
    registry.deploy("383", "CaseBook Demo", "3.5", D(2008, 3, 18), recorded_by="Leeds ICS lead")
    registry.deploy("Kent", "casebook demo", "3.6", D(2008, 3, 1))  # names match case-insensitively

    status, council = registry.status("383", "1B", D(2008, 3, 31))
    assert status.compliant and council["name"] == "Leeds" and len(status.proving) == 1
    status, _ = registry.status("Leeds", "1B", D(2008, 3, 17))
    assert (
        not status.compliant and "CaseBook Demo 3.0" in status.reason and "phase 1A does not cover 1B" in status.reason
    )
    assert registry.status("Leeds", "1A", D(2007, 1, 1))[0].compliant
    status, _ = registry.status("Kent", "1B", D(2008, 9, 30))
    assert not status.compliant and "verdict NOT CERTIFIED" in status.reason and "3.5" in status.reason
    with pytest.raises(UsageError, match="ambiguous"):
        registry.status("shire", "1B", D(2008, 9, 30))
    with pytest.raises(UsageError, match="no council"):
        registry.status("999", "1B", D(2008, 9, 30))
    with pytest.raises(UsageError, match="give --supplier"):
        registry.deploy("Leeds", "Unknown Product", "1", D(2008, 1, 1))


def test_revocation_and_reverify_after_a_key_revocation(
    registry: Registry, parties: Any, real_run: dict[str, Any], tmp_path: Path
) -> None:
    from conformance.certificate.signing import key_id, load_public_key

    acme_priv, acme_pub = parties["acme"]
    one = registry.submit(issue(real_run["result"], tmp_path, acme_priv, version="3.5"))
    two = registry.submit(
        issue(real_run["result"], tmp_path, parties["lab"][0], supplier="Acme Demo Ltd", version="3.6")
    )
    registry.deploy("Leeds", "CaseBook Demo", "3.5", D(2008, 2, 1))
    registry.deploy("Kent", "CaseBook Demo", "3.6", D(2008, 2, 1))
    assert registry.status("Leeds", "1B", D(2008, 6, 1))[0].compliant
    registry.revoke(one.certificate_id[:10], "evidence withdrawn by the supplier")
    status = registry.status("Leeds", "1B", D(2008, 6, 1))[0]
    assert not status.compliant and "revoked (evidence withdrawn by the supplier)" in status.reason
    with pytest.raises(UsageError, match="already revoked"):
        registry.revoke(one.certificate_id, "again")
    with pytest.raises(UsageError, match="at least 6 hex"):
        registry.revoke("abc", "too short")

    registry.revoke_key(key_id(load_public_key(acme_pub)), "compromised")
    outcomes = {o.certificate_id: o for o in registry.reverify()}
    assert not outcomes[one.certificate_id].ok and "revoked" in str(outcomes[one.certificate_id].problem)
    assert outcomes[two.certificate_id].ok  # signed by the lab, unaffected
    assert registry.status("Kent", "1B", D(2008, 6, 1))[0].compliant


def test_reverify_finds_a_corrupt_stored_bundle(registry: Registry, parties: Any, real_run: dict[str, Any]) -> None:
    outcome = registry.submit(real_run["zip"])
    registry.deploy("Leeds", "ICS reference service", "0.1.0", D(2020, 1, 1))
    today = dt.date.fromisoformat(real_run["result"]["finished_at"][:10])
    assert registry.status("Leeds", "1B", today)[0].compliant
    assert all(o.ok for o in registry.reverify())
    content, _ = registry.bundle(outcome.certificate_id)
    broken = bytearray(content)
    broken[len(broken) // 2] ^= 0xFF
    with registry.engine.begin() as c:
        c.execute(t.bundles.update().values(content=bytes(broken)))
    [result] = registry.reverify()
    assert not result.ok and "changed since it was submitted" in str(result.problem)
    status = registry.status("Leeds", "1B", today)[0]
    assert not status.compliant and "failed re-verification" in status.reason
    # The stored hash is right but the bytes no longer verify (a consistent forgery of the store):
    import hashlib

    with registry.engine.begin() as c:
        c.execute(t.bundles.update().values(content_sha256=hashlib.sha256(bytes(broken)).hexdigest()))
    [result] = registry.reverify()
    assert not result.ok
    with registry.engine.begin() as c:
        c.execute(t.bundles.update().values(content=content, content_sha256=hashlib.sha256(content).hexdigest()))
    [result] = registry.reverify()
    assert result.ok and not result.was_ok
    assert registry.status("Leeds", "1B", today)[0].compliant


def test_waivers_are_stored_and_expire(
    registry: Registry, parties: Any, real_run: dict[str, Any], tmp_path: Path
) -> None:
    from registry_support import variant

    from conformance.registry.demo import Run, demo_waivers

    failing = variant(real_run["result"], fail=("ICS-1B-SRCH-001",))
    waivers = demo_waivers(
        Run("t", failing, None),
        supplier="Acme Demo Ltd",
        product="CaseBook Demo",
        version="2.2",
        until=D(2008, 12, 31),
        issued=D(2008, 3, 1),
        keys=parties["dcsf"],
        out=tmp_path / "w",
    )
    path = issue(failing, tmp_path, parties["acme"][0], version="2.2", finished="2008-03-10", waiver_set=waivers)
    outcome = registry.submit(path)
    assert outcome.verdict == "CERTIFIED"  # the FAIL is waived by the certifier
    assert counts(registry)["waivers"] == 1
    registry.deploy("Leeds", "CaseBook Demo", "2.2", D(2008, 3, 12))
    assert registry.status("Leeds", "1B", D(2008, 12, 31))[0].compliant
    status = registry.status("Leeds", "1B", D(2009, 1, 1))[0]
    assert not status.compliant and "waiver that expired on 2008-12-31" in status.reason
    assert registry.status("Leeds", "1A", D(2009, 1, 1))[0].compliant  # a 1B waiver does not touch 1A


def test_deadline_history_and_phase_rules(
    registry: Registry, parties: Any, real_run: dict[str, Any], tmp_path: Path
) -> None:
    registry.set_deadline("1C", D(2009, 3, 31), "agreed with suppliers")
    registry.set_deadline("1C", D(2009, 9, 30), "moved after supplier consultation")
    phase = next(p for p in registry.phase_rows() if p["code"] == "1C")
    assert phase["deadline"] == D(2009, 9, 30)
    assert [h["deadline"] for h in phase["history"]] == [None, D(2009, 3, 31), D(2009, 9, 30)]
    with pytest.raises(UsageError, match="reason"):
        registry.set_deadline("1C", None, " ")

    registry.submit(issue(real_run["result"], tmp_path, parties["acme"][0], version="3.5"))
    registry.deploy("Leeds", "CaseBook Demo", "3.5", D(2008, 2, 1))
    registry.set_phase_rules("1B", requires_local_qa=True)
    status = registry.status("Leeds", "1B", D(2008, 6, 1))[0]
    assert not status.compliant and "local QA" in status.reason
    registry.submit(
        issue(real_run["result"], tmp_path, parties["leeds"][0], version="3.5", finished="2008-05-01", council="Leeds")
    )
    status = registry.status("Leeds", "1B", D(2008, 6, 1))[0]
    assert status.compliant and len(status.local_qa) == 1
    registry.set_phase_rules("1B", requires_local_qa=False, min_assurance="witnessed")
    status = registry.status("Leeds", "1B", D(2008, 6, 1))[0]
    assert not status.compliant and "requires witnessed" in status.reason


def test_parties_file_import(registry: Registry, keys: Any, tmp_path: Path) -> None:
    (tmp_path / "lab.pem").write_text(keys["lab"][1].read_text())
    parties = tmp_path / "parties.yaml"
    parties.write_text(
        "format: ics-conformance/registry-parties/1\n"
        "parties:\n"
        "  - {name: Example Lab, role: test_lab, keys: [lab.pem]}\n"
        "  - name: Leeds ICS team\n    role: council\n    council: 383\n"
        "    keys:\n      - |\n" + "".join(f"        {line}\n" for line in keys["leeds"][1].read_text().splitlines())
    )
    infos = registry.import_parties(parties)
    assert {(i.party, i.role, i.council_code) for i in infos} == {
        ("Example Lab", "test_lab", None),
        ("Leeds ICS team", "council", 383),
    }
    assert len(registry.import_parties(parties)) == 2  # idempotent
    assert len(registry.keys()) == 2
    with pytest.raises(UsageError, match="another role"):
        registry.add_key("Example Lab", "supplier", keys["acme"][1].read_text(), supplier="X")
