"""Waivers: signing, refusal of bad files, scoping, expiry, application to a result."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from bundle_samples import make_result, requirement, write_keyring

from conformance.certificate.bundle import write_bundle
from conformance.certificate.keyring import load_keyring
from conformance.certificate.signing import generate_keypair
from conformance.certificate.verify import verify_bundle
from conformance.certificate.waivers import apply_waivers, load_waivers, sign_waivers
from conformance.cli import main
from conformance.errors import UsageError

TODAY = dt.date(2008, 9, 30)
ABOUT = {"supplier": "Acme Care Systems", "product": "CareCase", "version": "4.2.1"}


def _entry(requirement: str, **overrides: Any) -> dict[str, Any]:
    entry = {
        "requirement": requirement,
        "scope": {"supplier": "Acme Care Systems", "product": "CareCase", "versions": ">=4.2,<4.3"},
        "reason": "accent folding ships in 4.3; interim manual procedure agreed",
        "reference": f"DCSF-W-2008-{requirement[-3:]}",
        "expires": "2008-12-31",
    }
    entry.update(overrides)
    return entry


def _write(tmp_path: Path, entries: list[dict[str, Any]], name: str = "waivers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        yaml.safe_dump({"issued_by": "DCSF ICS certification", "issued_at": "2008-09-01", "waivers": entries})
    )
    return path


@pytest.fixture
def certifier(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "certifier")


def test_sign_via_cli_and_apply(
    tmp_path: Path, certifier: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    source = _write(tmp_path, [_entry("ICS-1B-SRCH-001"), _entry("ICS-1B-NOTIF-001")])
    signed = tmp_path / "signed.json"
    assert main(["waivers", "sign", str(source), "--key", str(certifier[0]), "--out", str(signed)]) == 0
    assert "signed 2 waiver(s)" in capsys.readouterr().out
    assert json.loads(signed.read_text())["signature"]["alg"] == "Ed25519"
    assert main(["waivers", "check", str(signed), "--key", str(certifier[1]), "--today", "2008-09-30"]) == 0

    waivers = load_waivers(signed, certifier[1], today=TODAY)
    result = make_result()
    assert result["verdict"] == "NOT_CERTIFIED"
    # ICS-1A-API-001 is still a MUST FAIL: waive it as well to reach CERTIFIED
    out = apply_waivers(result, waivers, target_about=ABOUT, today=TODAY)
    srch = next(r for r in out["requirements"] if r["id"] == "ICS-1B-SRCH-001")
    assert srch["verdict"] == "WAIVED" and srch["waiver"]["reference"] == "DCSF-W-2008-001"
    assert all(c["verdict"] == "WAIVED" for c in srch["checks"])
    assert [a["requirement"] for a in out["waivers"]["applied"]] == ["ICS-1B-SRCH-001"]
    assert [u["waiver"]["requirement"] for u in out["waivers"]["unmatched"]] == ["ICS-1B-NOTIF-001"]
    assert "PASS" in out["waivers"]["unmatched"][0]["reason"]
    assert out["verdict"] == "NOT_CERTIFIED" and out["counts"]["WAIVED"] == 1
    assert requirement(result, "ICS-1B-SRCH-001")["verdict"] == "FAIL"  # input untouched


def test_waiving_every_must_failure_certifies_and_shows_on_certificate(
    tmp_path: Path, certifier: tuple[Path, Path]
) -> None:
    path = sign_waivers(_write(tmp_path, [_entry("ICS-1B-SRCH-001"), _entry("ICS-1A-API-001")]), certifier[0])
    result = make_result()
    out = apply_waivers(result, load_waivers(path, certifier[1], today=TODAY), target_about=ABOUT, today=TODAY)
    assert out["verdict"] == "CERTIFIED"
    keyring = write_keyring(tmp_path / "keyring.json", (certifier[1], "DCSF ICS certification", "department", None))
    bundle = write_bundle(
        out, tmp_path / "out", sign_key=certifier[0], waiver_file=path.read_bytes(), keyring=load_keyring(keyring)
    )
    certificate = json.loads((bundle.directory / "certificate.json").read_bytes())
    assert [w["requirement"] for w in certificate["waivers"]["applied"]] == ["ICS-1B-SRCH-001", "ICS-1A-API-001"]
    assert certificate["waivers"]["file"]["key_id"] and certificate["waivers"]["file"]["path"] == "waivers.json"
    assert (bundle.directory / "waivers.json").read_bytes() == path.read_bytes()
    html = (bundle.directory / "report.html").read_text()
    assert "DCSF-W-2008-001" in html and "APPLIED" in html
    outcome = verify_bundle(bundle.zip_path, keyring=keyring)
    assert outcome.ok and outcome.waivers_applied == 2, outcome.message
    outcome = verify_bundle(bundle.zip_path, certifier[1])  # the key alone cannot re-check waivers
    assert not outcome.ok and outcome.bad_file == "waivers.json" and "--keyring" in outcome.problem


def test_unsigned_file_refused(tmp_path: Path, certifier: tuple[Path, Path]) -> None:
    with pytest.raises(UsageError, match="unsigned"):
        load_waivers(_write(tmp_path, [_entry("ICS-1B-SRCH-001")]), certifier[1], today=TODAY)


def test_wrongly_signed_file_refused(tmp_path: Path, certifier: tuple[Path, Path]) -> None:
    impostor, _ = generate_keypair(tmp_path / "impostor")
    path = sign_waivers(_write(tmp_path, [_entry("ICS-1B-SRCH-001")]), impostor)
    with pytest.raises(UsageError, match="not by the certifier key"):
        load_waivers(path, certifier[1], today=TODAY)


def test_altered_after_signing_refused(tmp_path: Path, certifier: tuple[Path, Path]) -> None:
    path = sign_waivers(_write(tmp_path, [_entry("ICS-1B-SRCH-001")]), certifier[0])
    data = json.loads(path.read_text())
    data["waivers"][0]["expires"] = "2099-12-31"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="altered after signing"):
        load_waivers(path, certifier[1], today=TODAY)


def test_expired_file_refused_and_expired_entry_reported(tmp_path: Path, certifier: tuple[Path, Path]) -> None:
    old = sign_waivers(_write(tmp_path, [_entry("ICS-1B-SRCH-001", expires="2008-06-30")], "old.yaml"), certifier[0])
    with pytest.raises(UsageError, match="expired"):
        load_waivers(old, certifier[1], today=TODAY)
    mixed = sign_waivers(
        _write(tmp_path, [_entry("ICS-1B-SRCH-001", expires="2008-06-30"), _entry("ICS-1A-API-001")], "mixed.yaml"),
        certifier[0],
    )
    waivers = load_waivers(mixed, certifier[1], today=TODAY)
    assert len(waivers.expired) == 1
    out = apply_waivers(make_result(), waivers, target_about=ABOUT, today=TODAY)
    assert [r["waiver"]["requirement"] for r in out["waivers"]["refused"]] == ["ICS-1B-SRCH-001"]
    assert "expired on 2008-06-30" in out["waivers"]["refused"][0]["reason"]
    assert next(r for r in out["requirements"] if r["id"] == "ICS-1B-SRCH-001")["verdict"] == "FAIL"
    # a later "today" makes the whole file expired
    with pytest.raises(UsageError, match="expired"):
        load_waivers(mixed, certifier[1], today=dt.date(2009, 1, 1))


@pytest.mark.parametrize(
    ("scope", "about", "council", "why"),
    [
        ({"supplier": "Other Ltd"}, ABOUT, None, "supplier"),
        ({"product": "OtherCase"}, ABOUT, None, "product"),
        ({"versions": ">=5"}, ABOUT, None, "version"),
        ({"versions": ">=4"}, dict(ABOUT, version="four point two"), None, "PEP 440"),
        ({"council": "Leeds"}, ABOUT, "Haringey", "council"),
        ({"council": "Leeds"}, ABOUT, None, "council"),
    ],
)
def test_out_of_scope_refused(
    tmp_path: Path,
    certifier: tuple[Path, Path],
    scope: dict[str, str],
    about: dict[str, str],
    council: str | None,
    why: str,
) -> None:
    path = sign_waivers(_write(tmp_path, [_entry("ICS-1B-SRCH-001", scope=scope)]), certifier[0])
    out = apply_waivers(
        make_result(), load_waivers(path, certifier[1], today=TODAY), target_about=about, council=council, today=TODAY
    )
    assert not out["waivers"]["applied"]
    assert (
        out["waivers"]["refused"][0]["reason"].startswith("out of scope")
        and why in out["waivers"]["refused"][0]["reason"]
    )


def test_in_scope_council_and_case_insensitive(tmp_path: Path, certifier: tuple[Path, Path]) -> None:
    scope = {"supplier": "acme care systems", "council": "Leeds", "versions": "~=4.2.0"}
    path = sign_waivers(_write(tmp_path, [_entry("ICS-1B-SRCH-001", scope=scope)]), certifier[0])
    out = apply_waivers(
        make_result(), load_waivers(path, certifier[1], today=TODAY), target_about=ABOUT, council="leeds", today=TODAY
    )
    assert [a["requirement"] for a in out["waivers"]["applied"]] == ["ICS-1B-SRCH-001"]


def test_unmatched_waivers_reported(tmp_path: Path, certifier: tuple[Path, Path]) -> None:
    entries = [
        _entry("ICS-1C-CHRON-001"),
        _entry("ICS-1A-REC-001"),
        _entry("ICS-1B-SRCH-001"),
        _entry("ICS-1B-SRCH-001", id="dup"),
    ]
    path = sign_waivers(_write(tmp_path, entries), certifier[0])
    out = apply_waivers(
        make_result(with_error=True), load_waivers(path, certifier[1], today=TODAY), target_about=ABOUT, today=TODAY
    )
    reasons = {u["waiver"].get("id", u["waiver"]["requirement"]): u["reason"] for u in out["waivers"]["unmatched"]}
    assert "not in scope of this run" in reasons["ICS-1C-CHRON-001"]
    assert "is PASS" in reasons["ICS-1A-REC-001"]
    assert "already waived" in reasons["dup"]
    assert out["verdict"] == "INCONCLUSIVE"  # an ERROR is never waived away


def test_error_is_not_waivable(tmp_path: Path, certifier: tuple[Path, Path]) -> None:
    path = sign_waivers(_write(tmp_path, [_entry("ICS-1B-ACC-001")]), certifier[0])
    out = apply_waivers(
        make_result(with_error=True), load_waivers(path, certifier[1], today=TODAY), target_about=ABOUT, today=TODAY
    )
    assert "waivers cover FAIL only" in out["waivers"]["unmatched"][0]["reason"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("- just a list", "malformed"),
        ("issued_by: x\nwaivers: [", "malformed"),
        (
            json.dumps({"issued_by": "x", "issued_at": "2008-09-01", "waivers": [{"requirement": "SRCH-1"}]}),
            "malformed at /waivers/0",
        ),
        (
            json.dumps(
                {"issued_by": "x", "issued_at": "2008-09-01", "waivers": [_entry("ICS-1B-SRCH-001", expires="soon")]}
            ),
            "malformed at /waivers/0/expires",
        ),
        (
            json.dumps(
                {
                    "issued_by": "x",
                    "issued_at": "2008-09-01",
                    "waivers": [_entry("ICS-1B-SRCH-001", scope={"versions": "not a spec"})],
                }
            ),
            "PEP 440",
        ),
    ],
)
def test_malformed_files_refused(tmp_path: Path, certifier: tuple[Path, Path], document: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(document)
    with pytest.raises(UsageError, match=message):
        sign_waivers(path, certifier[0])


def test_malformed_signed_file_refused(tmp_path: Path, certifier: tuple[Path, Path]) -> None:
    path = tmp_path / "w.json"
    path.write_text(
        json.dumps(
            {
                "issued_by": "x",
                "issued_at": "2008-09-01",
                "waivers": [_entry("ICS-1B-SRCH-001")],
                "signature": {"alg": "Ed25519", "key_id": "0" * 16, "value": "%%%"},
            }
        )
    )
    with pytest.raises(UsageError, match="malformed signature"):
        load_waivers(path, certifier[1], today=TODAY)


def test_cli_sign_with_public_key_is_usage_error(
    tmp_path: Path, certifier: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    source = _write(tmp_path, [_entry("ICS-1B-SRCH-001")])
    assert main(["waivers", "sign", str(source), "--key", str(certifier[1])]) == 2
    assert "public key" in capsys.readouterr().err
