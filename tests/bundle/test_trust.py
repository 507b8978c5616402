"""What a verified bundle proves: every attack of issue 10, tried on bundles from real ``certify`` runs.

The runs are real (the built-in reference with injected faults, or the reference behind an
ASGI layer that rewrites ``GET /about`` like a proxy would), the keys are real Ed25519 keys,
and each forgery is what a supplier holding only its own key (or no key) can do with the
harness's own code (``forgery.forge``) or a byte-level zip writer (``forgery.build_zip``).
Each attack must make ``verify`` exit 1 with a message naming what is wrong.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from bundle_samples import write_keyring
from forgery import (
    Member,
    build_zip,
    copy_bundle,
    extra_field,
    forge,
    load,
    members_of,
    recount,
    unicode_path_extra,
)

from conformance.certificate.signing import generate_keypair
from conformance.certificate.waivers import sign_waivers
from conformance.cli import main

TOKEN = "trust-admin-token-Qz9"
FAULT = "search-accent-sensitive"  # ICS-1B-SRCH-001 FAILs
SEARCH_ONLY = "test_search.py and ICS-1B-SRCH-00"


@dataclass
class Trust:
    root: Path
    keys: dict[str, tuple[Path, Path]]
    keyring: Path
    waivers: dict[str, Path]
    runs: dict[str, Path]  # name -> bundle directory


def _certify(root: Path, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    output = root / "runs" / name
    command = [sys.executable, "-m", "conformance", "certify", "--output", str(output), "--quiet", "-n", "0"]
    # one process: the built-in reference answers on a thread beside eight check threads; on a
    # loaded CI machine (the suite's own workers beside it) one answer has taken over the
    # default 10 s, turning the expected verdict into INCONCLUSIVE (a correct verdict for a
    # target that times out, not what these trust tests are about)
    command += ["--timeout", "60"]
    return subprocess.run(
        [*command, "--seed", "11", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def _bundle(root: Path, name: str) -> Path:
    found = [p for p in (root / "runs" / name).glob("ics-*/ics-*") if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def _waiver_file(root: Path, name: str, department: Path, entries: list[dict[str, Any]]) -> Path:
    source = root / f"{name}.yaml"
    source.write_text(
        yaml.safe_dump({"issued_by": "DCSF ICS certification", "issued_at": "2026-01-05", "waivers": entries})
    )
    return sign_waivers(source, department, root / f"{name}.signed.json")


def _waiver(requirement: str, reference: str, **scope: str) -> dict[str, Any]:
    return {
        "requirement": requirement,
        "scope": scope,
        "reason": "accent folding ships in the next release; manual procedure agreed",
        "reference": reference,
        "expires": "2099-12-31",
    }


@dataclass
class _Spoofed:
    url: str


class _SpoofAbout:
    """An ASGI layer in front of the reference that answers ``GET /about`` for another supplier."""

    def __init__(self, app: Any, about: dict[str, Any]) -> None:
        self.app, self.body = app, json.dumps(about).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/about":
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": self.body})
            return
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def spoofed() -> Iterator[_Spoofed]:
    from conformance.reference import create_app
    from conformance.reference.server import run_in_thread
    from conformance.reference.service import CAPABILITIES

    about = {
        "supplier": "Acme Care Systems",
        "product": "CareCase",
        "version": "4.2.1",
        "spec_versions": ["2008.1"],
        "capabilities": dict(CAPABILITIES),
    }
    app = _SpoofAbout(create_app(faults=[FAULT], admin_token=TOKEN), about)
    with run_in_thread(app, host="127.0.0.1", port=0, admin_token=TOKEN, faults=[FAULT]) as service:  # type: ignore[arg-type]  # any ASGI app serves
        yield _Spoofed(service.url)


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Trust:
    root = tmp_path_factory.mktemp("trust")
    keys = {
        name: generate_keypair(root / "keys" / name)
        for name in ("supplier", "department", "lab", "leeds", "acme", "stranger")
    }
    keyring = write_keyring(
        root / "keyring.yaml",
        (keys["supplier"][1], "ics-conformance", "supplier", {"supplier": "ics-conformance"}),
        (keys["department"][1], "DCSF ICS certification", "department", None),
        (keys["lab"][1], "Northern Test House", "test-lab", None),
        (keys["leeds"][1], "Leeds City Council", "council", {"council": "Leeds"}),
        (keys["acme"][1], "Acme Care Systems Ltd", "supplier", {"supplier": "Acme Care Systems"}),
    )
    department = keys["department"][0]
    waivers = {
        "genuine": _waiver_file(
            root,
            "genuine",
            department,
            [_waiver("ICS-1B-SRCH-001", "DCSF-W-2026-001", supplier="ics-conformance", council="Leeds")],
        ),
        "acme": _waiver_file(
            root,
            "acme",
            department,
            [_waiver("ICS-1B-SRCH-001", "DCSF-W-2026-017", supplier="Acme Care Systems", council="Leeds")],
        ),
    }
    common = ("--phase", "1B", "--reference-fault", FAULT, "--keyring", str(keyring), "--council", "Leeds")
    runs = {}
    # the same target, run and signed by its supplier (self-assessed) and by the department (witnessed)
    for name, key in (("self", "supplier"), ("witnessed", "department")):
        done = _certify(root, name, *common, "-k", SEARCH_ONLY, "--sign-key", str(keys[key][0]))
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
        runs[name] = _bundle(root, name)
    # a full run whose only MUST failure is waived by a genuine department waiver: CERTIFIED
    done = _certify(
        root, "waived", *common, "--sign-key", str(keys["supplier"][0]), "--waivers", str(waivers["genuine"])
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "(self-assessed: signed by ics-conformance (supplier), key " in done.stdout
    runs["waived"] = _bundle(root, "waived")
    return Trust(root, keys, keyring, waivers, runs)


def _verify(bundle: Path, trust: Trust, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", str(bundle), "--keyring", str(trust.keyring), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _refused(
    bundle: Path, trust: Trust, capsys: pytest.CaptureFixture[str], *needles: str, extra: tuple[str, ...] = ()
) -> str:
    code, out = _verify(bundle, trust, *extra, capsys=capsys)
    assert code == 1, out
    assert out.startswith("NOT VERIFIED: "), out
    for needle in needles:
        assert needle in out, out
    return out


def _zip(directory: Path, dest: Path) -> Path:
    """Zip a (forged) bundle directory as certify does."""
    from conformance.certificate.bundle import _write_zip

    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    path = dest / f"{directory.name}.zip"
    _write_zip(directory, directory.name, files, path)
    return path


# --------------------------------------------------------------------------- genuine bundles


def test_genuine_waived_bundle_verifies_with_only_the_keyring(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Copied alone to another place (no key files, no waiver file beside it): bundle + keyring suffice."""
    alone = tmp_path / "intake"
    alone.mkdir()
    keyring = Path(alone / "keyring.yaml")
    keyring.write_bytes(trust.keyring.read_bytes())
    source = trust.runs["waived"]
    zipped = alone / "bundle.zip"
    zipped.write_bytes((source.parent / f"{source.name}.zip").read_bytes())
    capsys.readouterr()
    assert main(["verify", str(zipped), "--keyring", str(keyring)]) == 0
    out = capsys.readouterr().out
    assert "verdict:   CERTIFIED" in out and "SELF-ASSESSED" in out and "council:   Leeds" in out
    assert "ICS-1B-SRCH-001 DCSF-W-2026-001" in out and "DCSF ICS certification (department" in out
    assert "re-rendered from certificate.json: identical" in out
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(alone / "extracted")
    assert main(["verify", str(alone / "extracted" / source.name), "--keyring", str(keyring)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == out.splitlines()[1:]  # zip or directory: same result
    certificate = load(source)
    assert certificate["result"]["council"] == "Leeds" and "--council Leeds" in certificate["result"]["command"]
    assert (source / "waivers.json").read_bytes() == trust.waivers["genuine"].read_bytes()


def test_witnessed_and_self_assessed_runs_show_their_level_everywhere(
    trust: Trust, capsys: pytest.CaptureFixture[str]
) -> None:
    levels = {}
    for name, level in (("self", "self-assessed"), ("witnessed", "witnessed")):
        bundle = trust.runs[name]
        code, out = _verify(bundle, trust, capsys=capsys)
        assert code == 0, out
        levels[name] = out.splitlines()[1]
        certificate = load(bundle)
        assert certificate["signer"]["assurance"] == level
        html = (bundle / "report.html").read_text()
        first_screen = html[: html.index('id="tested"')]
        assert f'<meta name="ics-assurance" content="{level}">' in html
        assert f"<strong>{level.upper()}</strong>" in first_screen
    assert levels["self"].startswith("assurance: SELF-ASSESSED: run and signed by ics-conformance (supplier")
    assert levels["witnessed"].startswith("assurance: WITNESSED: run and signed by DCSF ICS certification (department")
    assert load(trust.runs["self"])["result"]["target"] == load(trust.runs["witnessed"])["result"]["target"] | {
        "url": load(trust.runs["self"])["result"]["target"]["url"]
    }


def test_verify_with_the_key_alone_does_not_claim_an_assurance_level(
    trust: Trust, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["verify", str(trust.runs["self"]), "--key", str(trust.keys["supplier"][1])]) == 0
    out = capsys.readouterr().out
    assert "assurance: NOT ESTABLISHED" in out
    assert main(["verify", str(trust.runs["self"])]) == 2
    assert "--keyring" in capsys.readouterr().err


# --------------------------------------------------------------------------- invented waivers


def _invent_waivers(certificate: dict[str, Any], file_record: dict[str, Any] | None = None) -> None:
    """Turn every FAIL into WAIVED with made-up waiver entries, as the supplier of issue 10 did."""
    result = certificate["result"]
    applied = []
    for requirement in result["requirements"]:
        if requirement["verdict"] != "FAIL":
            continue
        entry = {
            "requirement": requirement["id"],
            "scope": {"supplier": "ics-conformance"},
            "reason": "agreed with the department",
            "reference": f"DCSF-W-FAKE-{requirement['id'][-3:]}",
            "expires": "2099-12-31",
            "original_verdict": "FAIL",
        }
        requirement["verdict"] = "WAIVED"
        requirement["waiver"] = entry
        for check in requirement["checks"]:
            if check["verdict"] == "FAIL":
                check["verdict"], check["waived_by"] = "WAIVED", entry["reference"]
        applied.append(entry)
    assert applied
    result["waivers"]["applied"] = applied
    if file_record is not None:
        result["waivers"]["file"] = file_record
    recount(result)
    certificate["waivers"] = result["waivers"]


def test_invented_waivers_without_a_waiver_file(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = forge(copy_bundle(trust.runs["self"], tmp_path), trust.keys["supplier"][0], _invent_waivers)
    assert load(bundle)["result"]["verdict"] != "NOT_CERTIFIED"
    _refused(bundle, trust, capsys, "waivers are applied, but no waiver file is recorded or carried")


def test_invented_waivers_signed_with_the_suppliers_own_key(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = sign_waivers(
        _write_yaml(tmp_path, [_waiver("ICS-1B-SRCH-001", "DCSF-W-FAKE-001", supplier="ics-conformance")]),
        trust.keys["supplier"][0],
        tmp_path / "own.signed.json",
    )
    raw = own.read_bytes()
    record = _file_record(raw, "DCSF ICS certification", "2026-01-05", trust.keys["supplier"][1])

    def edit(certificate: dict[str, Any]) -> None:
        _invent_waivers(certificate, record)
        certificate["result"]["waivers"]["applied"][0].update(
            reason=_waiver("x", "y")["reason"], scope={"supplier": "ics-conformance"}
        )

    bundle = forge(
        copy_bundle(trust.runs["self"], tmp_path), trust.keys["supplier"][0], edit, files={"waivers.json": raw}
    )
    _refused(bundle, trust, capsys, "waivers.json:", "ics-conformance (supplier", "only a department key")


def test_invented_entries_beside_a_genuine_waiver_file(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The genuine department file, but the applied entry says something the department never signed."""
    raw = trust.waivers["genuine"].read_bytes()
    record = load(trust.runs["waived"])["result"]["waivers"]["file"]
    bundle = forge(
        copy_bundle(trust.runs["self"], tmp_path),
        trust.keys["supplier"][0],
        lambda c: _invent_waivers(c, record),
        files={"waivers.json": raw},
    )
    _refused(bundle, trust, capsys, "DCSF-W-FAKE-001", "not an entry of the signed waiver file")


def test_genuine_waiver_reused_out_of_its_scope(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The genuine Leeds waiver, moved to a certificate recorded for another council."""

    def edit(certificate: dict[str, Any]) -> None:
        certificate["result"]["council"] = "Bradford"
        certificate["result"]["command"] = certificate["result"]["command"].replace("Leeds", "Bradford")

    bundle = forge(copy_bundle(trust.runs["waived"], tmp_path), trust.keys["supplier"][0], edit)
    _refused(bundle, trust, capsys, "DCSF-W-2026-001", "out of scope", "council 'Bradford' is not 'Leeds'")


def test_expired_waiver(trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real department waiver that expired before the run finished."""
    entry = dict(_waiver("ICS-1B-SRCH-001", "DCSF-W-2020-003", supplier="ics-conformance"), expires="2020-06-30")
    signed = sign_waivers(_write_yaml(tmp_path, [entry]), trust.keys["department"][0], tmp_path / "old.signed.json")
    raw = signed.read_bytes()
    record = _file_record(raw, "DCSF ICS certification", "2026-01-05", trust.keys["department"][1])

    def edit(certificate: dict[str, Any]) -> None:
        _invent_waivers(certificate, record)
        certificate["result"]["waivers"]["applied"][0].update({k: v for k, v in entry.items()})
        requirement = next(r for r in certificate["result"]["requirements"] if r["verdict"] == "WAIVED")
        requirement["waiver"] = certificate["result"]["waivers"]["applied"][0]
        for check in requirement["checks"]:
            if check["verdict"] == "WAIVED":
                check["waived_by"] = entry["reference"]
        certificate["waivers"] = certificate["result"]["waivers"]

    bundle = forge(
        copy_bundle(trust.runs["self"], tmp_path), trust.keys["supplier"][0], edit, files={"waivers.json": raw}
    )
    _refused(bundle, trust, capsys, "DCSF-W-2020-003", "expired on 2020-06-30, before the run finished")


def test_waiver_on_a_requirement_that_did_not_fail(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(certificate: dict[str, Any]) -> None:
        result = certificate["result"]
        passed = next(r for r in result["requirements"] if r["id"] == "ICS-1B-SRCH-002")
        assert passed["verdict"] == "PASS"
        passed["verdict"] = "WAIVED"
        passed["waiver"] = dict(result["waivers"]["applied"][0], requirement="ICS-1B-SRCH-002")
        recount(result)

    bundle = forge(copy_bundle(trust.runs["waived"], tmp_path), trust.keys["supplier"][0], edit)
    _refused(bundle, trust, capsys, "ICS-1B-SRCH-002 is WAIVED, but its checks give PASS")


def test_waiver_file_with_repeated_keys_refused(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genuine = trust.waivers["genuine"].read_text()
    doubled = genuine.replace('"issued_by":', '"issued_by": "Someone else",\n  "issued_by":', 1)
    record = load(trust.runs["waived"])["result"]["waivers"]["file"]

    def edit(certificate: dict[str, Any]) -> None:
        import hashlib

        certificate["result"]["waivers"]["file"] = dict(record, sha256=hashlib.sha256(doubled.encode()).hexdigest())
        certificate["waivers"] = certificate["result"]["waivers"]

    bundle = forge(
        copy_bundle(trust.runs["waived"], tmp_path),
        trust.keys["supplier"][0],
        edit,
        files={"waivers.json": doubled.encode()},
    )
    _refused(bundle, trust, capsys, "waivers.json: malformed: duplicate key 'issued_by'")


def _write_yaml(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(
        yaml.safe_dump({"issued_by": "DCSF ICS certification", "issued_at": "2026-01-05", "waivers": entries})
    )
    return path


def _file_record(raw: bytes, issued_by: str, issued_at: str, public: Path) -> dict[str, Any]:
    import hashlib

    from conformance.certificate.signing import key_id, load_public_key

    return {
        "issued_by": issued_by,
        "issued_at": issued_at,
        "key_id": key_id(load_public_key(public)),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "entries": 1,
        "path": "waivers.json",
    }


# --------------------------------------------------------------------------- verdicts, report


def test_flipped_phase_verdict(trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(certificate: dict[str, Any]) -> None:
        certificate["result"]["verdict"] = "CERTIFIED"

    bundle = forge(copy_bundle(trust.runs["witnessed"], tmp_path), trust.keys["supplier"][0], edit)
    # signed with the supplier key, claiming the department's witnessed run: refused for that first
    _refused(
        bundle, trust, capsys, "names the signer 'DCSF ICS certification' (department)", "ics-conformance (supplier"
    )
    bundle = forge(copy_bundle(trust.runs["self"], tmp_path / "s"), trust.keys["supplier"][0], edit)
    _refused(
        bundle,
        trust,
        capsys,
        "phase verdict says CERTIFIED, but its requirement verdicts give NOT_CERTIFIED",
        "MUST FAIL: ICS-1B-SRCH-001",
    )


def test_flipped_requirement_verdict(trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(certificate: dict[str, Any]) -> None:
        failed = next(r for r in certificate["result"]["requirements"] if r["verdict"] == "FAIL")
        failed["verdict"] = "PASS"
        recount(certificate["result"])

    bundle = forge(copy_bundle(trust.runs["self"], tmp_path), trust.keys["supplier"][0], edit)
    _refused(bundle, trust, capsys, "requirement ICS-1B-SRCH-001 says PASS, but its checks give FAIL")


def test_failing_check_hidden_from_one_of_its_requirements(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A check is the same record under each requirement it names: dropping or editing one copy is refused."""
    certificate = load(trust.runs["waived"])
    shared = next(
        (r["id"], c["id"])
        for r in certificate["result"]["requirements"]
        for c in r["checks"]
        if len(c["requirements"]) > 1 and r["id"] == c["requirements"][-1]
    )

    def drop(certificate: dict[str, Any]) -> None:
        requirement = next(r for r in certificate["result"]["requirements"] if r["id"] == shared[0])
        requirement["checks"] = [c for c in requirement["checks"] if c["id"] != shared[1]]

    bundle = forge(copy_bundle(trust.runs["waived"], tmp_path), trust.keys["supplier"][0], drop)
    _refused(bundle, trust, capsys, f"check {shared[1]} names {shared[0]} but is not listed under it")

    def edit(certificate: dict[str, Any]) -> None:
        requirement = next(r for r in certificate["result"]["requirements"] if r["id"] == shared[0])
        next(c for c in requirement["checks"] if c["id"] == shared[1])["message"] = "all good"

    bundle = forge(copy_bundle(trust.runs["waived"], tmp_path / "e"), trust.keys["supplier"][0], edit)
    _refused(bundle, trust, capsys, f"check {shared[1]} is recorded differently under")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ("drop", "requirements are not the catalogue's for phase 1B: missing ICS-1B-SRCH-001"),
        ("level", "requirement ICS-1B-SRCH-001: level 'SHOULD' is not the catalogue's 'MUST'"),
        ("capability", "requirement ICS-1B-SRCH-001: capability 'audit' is not the catalogue's None"),
    ],
)
def test_requirements_bent_to_pass(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str, needle: str
) -> None:
    def edit(certificate: dict[str, Any]) -> None:
        result = certificate["result"]
        failed = next(r for r in result["requirements"] if r["id"] == "ICS-1B-SRCH-001")
        if change == "drop":
            result["requirements"].remove(failed)
        elif change == "level":
            failed["level"] = "SHOULD"
        else:
            failed["capability"] = "audit"
        recount(result)

    bundle = forge(copy_bundle(trust.runs["self"], tmp_path), trust.keys["supplier"][0], edit)
    _refused(bundle, trust, capsys, needle)


def test_report_certified_beside_a_not_certified_certificate(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """report.html rendered from a CERTIFIED copy of the result, certificate left NOT_CERTIFIED."""
    from conformance.certificate.report import render_html

    bundle = copy_bundle(trust.runs["self"], tmp_path)
    certificate = load(bundle)
    lie = copy.deepcopy(certificate["result"])
    lie["verdict"] = "CERTIFIED"
    html = render_html(lie, bundle_info={"signer": certificate["signer"]})
    forge(bundle, trust.keys["supplier"][0], rerender=False, files={"report.html": html.encode()})
    _refused(bundle, trust, capsys, "report.html: does not state the sha256 of the certificate it renders")

    # the same, but stating the right certificate sha256
    import hashlib

    info = {
        "signer": certificate["signer"],
        "certificate_sha256": hashlib.sha256((bundle / "certificate.json").read_bytes()).hexdigest(),
    }
    html = render_html(lie, bundle_info=info)
    forge(bundle, trust.keys["supplier"][0], rerender=False, files={"report.html": html.encode()})
    _refused(bundle, trust, capsys, "report.html: states verdict 'CERTIFIED', certificate.json says 'NOT_CERTIFIED'")

    # meta elements right, visible verdict edited
    genuine = (trust.runs["self"] / "report.html").read_text()
    edited = genuine.replace('id="phase-verdict">NOT CERTIFIED', 'id="phase-verdict">CERTIFIED', 1)
    assert edited != genuine
    forge(bundle, trust.keys["supplier"][0], rerender=False, files={"report.html": edited.encode()})
    _refused(bundle, trust, capsys, "its first screen shows 'CERTIFIED")

    # anything else in the report edited: the re-rendered report differs
    edited = genuine.replace("ICS-1B-SRCH-001</td>", "ICS-1B-SRCH-001 (passed on retest)</td>", 1)
    assert edited != genuine
    forge(bundle, trust.keys["supplier"][0], rerender=False, files={"report.html": edited.encode()})
    _refused(bundle, trust, capsys, "report.html: is not what certificate.json renders to")


def test_report_of_another_harness_version_is_checked_by_its_first_screen(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bundle claiming another harness version is not re-rendered, but its first screen still must agree."""
    bundle = copy_bundle(trust.runs["self"], tmp_path)

    def edit(certificate: dict[str, Any]) -> None:
        certificate["result"]["harness"]["version"] = "0.0.9"

    forge(bundle, trust.keys["supplier"][0], edit)
    code, out = _verify(bundle, trust, capsys=capsys)
    assert code == 0 and "not re-rendered" in out, out
    genuine = (bundle / "report.html").read_text()
    forge(
        bundle,
        trust.keys["supplier"][0],
        rerender=False,
        files={
            "report.html": genuine.replace('id="phase-verdict">NOT CERTIFIED', 'id="phase-verdict">CERTIFIED').encode()
        },
    )
    _refused(bundle, trust, capsys, "its first screen shows 'CERTIFIED")
    forge(
        bundle,
        trust.keys["supplier"][0],
        rerender=False,
        files={
            "report.html": genuine.replace(
                'name="ics-target-sha256" content="', 'name="ics-target-sha256" content="0'
            ).encode()
        },
    )
    _refused(bundle, trust, capsys, "report.html: states another target or council")


def test_junit_rewritten_to_pass_is_refused(trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = copy_bundle(trust.runs["self"], tmp_path)
    junit = (bundle / "junit.xml").read_text()
    forged = re.sub(r'failures="[1-9][0-9]*"', 'failures="0"', junit)
    assert forged != junit
    forge(bundle, trust.keys["supplier"][0], rerender=False, files={"junit.xml": forged.encode()})
    _refused(bundle, trust, capsys, "junit.xml: is not what certificate.json renders to")


# --------------------------------------------------------------------------- identity and scope


def test_spoofed_about_is_refused_by_the_signers_scope(
    trust: Trust, spoofed: _Spoofed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reference behind a proxy claiming to be Acme; a genuine Acme/Leeds waiver; --council Leeds."""
    env = {"ICS_ADMIN_TOKEN": TOKEN}
    args = ("--phase", "1B", "--target", spoofed.url, "-k", SEARCH_ONLY, "--council", "Leeds")
    supplier = str(trust.keys["supplier"][0])
    waivers = ("--waivers", str(trust.waivers["acme"]))
    # with the keyring, certify refuses to sign for someone else
    done = _certify(
        tmp_path, "spoof-keyring", *args, *waivers, "--keyring", str(trust.keyring), "--sign-key", supplier, env=env
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "may sign only for supplier 'ics-conformance', not for 'Acme Care Systems'" in done.stderr
    # without it, a bundle is written, and verify refuses it
    waiver_key = ("--waiver-key", str(trust.keys["department"][1]))
    done = _certify(tmp_path, "spoof", *args, *waivers, *waiver_key, "--sign-key", supplier, env=env)
    assert done.returncode in (1, 3), done.stdout[-2000:] + done.stderr[-2000:]
    bundle = _bundle(tmp_path, "spoof")
    certificate = load(bundle)
    assert certificate["result"]["target"]["about"]["supplier"] == "Acme Care Systems"
    assert certificate["result"]["waivers"]["applied"][0]["reference"] == "DCSF-W-2026-017"  # applied at certify
    _refused(
        bundle,
        trust,
        capsys,
        "manifest.sig: signer out of scope",
        "ics-conformance (supplier",
        "not for 'Acme Care Systems'",
    )
    # signed by a key nobody knows
    done = _certify(tmp_path, "stranger", *args, "--sign-key", str(trust.keys["stranger"][0]), env=env)
    _refused(_bundle(tmp_path, "stranger"), trust, capsys, "which is not in the keyring")


def test_council_key_signs_only_its_own_council(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leeds = trust.keys["leeds"][0]

    def bradford(certificate: dict[str, Any]) -> None:
        certificate["result"]["council"] = "Bradford"
        certificate["signer"].update(party=None, role=None, assurance="self-assessed")

    bundle = forge(copy_bundle(trust.runs["self"], tmp_path), leeds, bradford)
    _refused(bundle, trust, capsys, "Leeds City Council (council", "only runs recorded for council 'Leeds'")

    def leeds_run(certificate: dict[str, Any]) -> None:
        certificate["signer"].update(party=None, role=None, assurance="self-assessed")

    bundle = forge(copy_bundle(trust.runs["self"], tmp_path / "l"), leeds, leeds_run)
    code, out = _verify(bundle, trust, capsys=capsys)
    assert code == 0 and "SELF-ASSESSED: run and signed by Leeds City Council (council" in out, out


def test_supplier_claiming_witnessed_or_another_party(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def witnessed(certificate: dict[str, Any]) -> None:
        certificate["signer"]["assurance"] = "witnessed"

    bundle = forge(copy_bundle(trust.runs["self"], tmp_path), trust.keys["supplier"][0], witnessed)
    _refused(bundle, trust, capsys, "claims assurance 'witnessed', but it is signed by ics-conformance (supplier")

    def lab(certificate: dict[str, Any]) -> None:
        certificate["signer"].update(party="Northern Test House", role="test-lab")

    bundle = forge(copy_bundle(trust.runs["self"], tmp_path / "l"), trust.keys["supplier"][0], lab)
    _refused(bundle, trust, capsys, "names the signer 'Northern Test House' (test-lab)")


def test_department_intake_expectations(trust: Trust, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = trust.runs["witnessed"]
    code, out = _verify(bundle, trust, "--expect-supplier", "ICS-Conformance", "--max-age", "30", capsys=capsys)
    assert code == 0, out
    _refused(
        bundle,
        trust,
        capsys,
        "supplier is 'ics-conformance', expected 'Acme Care Systems'",
        extra=("--expect-supplier", "Acme Care Systems"),
    )
    _refused(
        bundle,
        trust,
        capsys,
        "product is 'ICS reference service', expected 'CareCase'",
        extra=("--expect-product", "CareCase"),
    )
    _refused(bundle, trust, capsys, "version is '0.1.0', expected '4.2.1'", extra=("--expect-version", "4.2.1"))
    _refused(bundle, trust, capsys, "older than --max-age 0 days", extra=("--max-age", "0"))


# --------------------------------------------------------------------------- capability overrides


def test_capability_override_is_refused_then_loud(
    trust: Trust, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    off = tmp_path / "off.yaml"
    off.write_text("restricted_notes: false\n")
    args = (
        "--phase",
        "1B",
        "--reference-fault",
        "restricted-note-visible",
        "--capabilities",
        str(off),
        "-k",
        "test_case_notes.py",
        "--keyring",
        str(trust.keyring),
        "--sign-key",
        str(trust.keys["supplier"][0]),
    )
    done = _certify(tmp_path, "refused", *args)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "restricted_notes (declared true, would be false)" in done.stderr
    assert "--allow-capability-override" in done.stderr
    assert not list((tmp_path / "runs" / "refused").glob("ics-*/ics-*"))

    done = _certify(tmp_path, "allowed", *args, "--allow-capability-override")
    assert done.returncode in (0, 3), done.stdout[-2000:] + done.stderr[-2000:]
    bundle = _bundle(tmp_path, "allowed")
    result = load(bundle)["result"]
    assert result["capability_overrides"] == [
        {"capability": "restricted_notes", "declared": True, "used": False, "weakens": True}
    ]
    assert next(r for r in result["requirements"] if r["id"] == "ICS-1A-NOTE-002")["verdict"] == "NOT_APPLICABLE"
    html = (bundle / "report.html").read_text()
    first_screen = html[: html.index('id="tested"')]
    assert 'id="capability-override"' in first_screen and "ICS-1A-NOTE-002" in first_screen
    _refused(
        bundle, trust, capsys, "capability override", "restricted_notes (declared True, used False)", "ICS-1A-NOTE-002"
    )
    code, out = _verify(bundle, trust, "--allow-capability-override", capsys=capsys)
    assert code == 0, out
    assert "CAPABILITY OVERRIDE (weakens the run): restricted_notes declared true in /about, used false" in out
    assert "ICS-1A-NOTE-002 (capability restricted_notes not used)" in out

    def hide(certificate: dict[str, Any]) -> None:
        certificate["result"]["capability_overrides"] = []

    forged = forge(copy_bundle(bundle, tmp_path / "f"), trust.keys["supplier"][0], hide)
    _refused(forged, trust, capsys, "capability_overrides do not match", extra=("--allow-capability-override",))


# --------------------------------------------------------------------------- strict zips


@pytest.fixture
def genuine(trust: Trust) -> Path:
    return trust.runs["self"]


def _zip_refused(data: bytes, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    path = tmp_path / "crafted.zip"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as archive:  # Python still reads it as a zip
        archive.infolist()
    return _refused(path, trust, capsys, *needles)


def test_crafted_zip_baseline_verifies(
    genuine: Path, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plain.zip"
    path.write_bytes(build_zip(members_of(genuine)))
    code, out = _verify(path, trust, capsys=capsys)
    assert code == 0, out


def _with(genuine: Path, *extra: Member, replace: dict[str, Member] | None = None) -> list[Member]:
    members = []
    for member in members_of(genuine):
        rel = member.name.decode().split("/", 1)[1]
        members.append((replace or {}).get(rel, member))
    return members + list(extra)


def _forged_certificate(genuine: Path) -> bytes:
    certificate = load(genuine)
    certificate["result"]["verdict"] = "CERTIFIED"
    from conformance.certificate.signing import canonical_json

    return canonical_json(certificate)


def test_zip_directory_entries(genuine: Path, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str]) -> None:
    root = genuine.name
    for name, needle in (
        (f"{root}/report.html/", "is a directory entry"),
        (f"{root}/evidence/", "is a directory entry"),
        (f"{root}/../", "is a directory entry"),
        ("/etc/", "is a directory entry"),
    ):
        member = Member(name.encode(), b"", external=(0o040755 << 16) | 0x10)
        _zip_refused(build_zip(_with(genuine, member)), tmp_path, trust, capsys, needle)


def test_zip_unicode_path_extra_field_renames_a_member(
    genuine: Path, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str]
) -> None:
    """unzip honours 0x7075 and would write this member over report.html/certificate.json; zipfile ignores it."""
    root = genuine.name
    decoy = f"{root}/evidence/notes.json".encode()
    member = Member(decoy, _forged_certificate(genuine), extra=unicode_path_extra(decoy, f"{root}/certificate.json"))
    _zip_refused(
        build_zip(_with(genuine, member)), tmp_path, trust, capsys, "Info-ZIP Unicode Path extra field (0x7075)"
    )
    # on an existing member, in the local header only
    target = f"{root}/report.html".encode()
    renamed = Member(
        target,
        (genuine / "report.html").read_bytes(),
        local_extra=unicode_path_extra(target, f"{root}/junit.xml"),
    )
    _zip_refused(
        build_zip(_with(genuine, replace={"report.html": renamed})), tmp_path, trust, capsys, "(local header)", "0x7075"
    )
    comment = Member(f"{root}/x.json".encode(), b"{}", extra=extra_field(0x6375, b"\x01\x00\x00\x00\x00hi"))
    _zip_refused(build_zip(_with(genuine, comment)), tmp_path, trust, capsys, "Unicode Comment extra field (0x6375)")


def test_zip_local_entry_not_in_the_central_directory(
    genuine: Path, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str]
) -> None:
    """A streaming extractor reads every local header; this one is not referenced by the central directory."""
    hidden = Member(f"{genuine.name}/certificate.json".encode(), _forged_certificate(genuine))
    _zip_refused(
        build_zip(_with(genuine), hidden=[hidden]), tmp_path, trust, capsys, "a local entry it does not reference"
    )
    _zip_refused(build_zip(_with(genuine), prefix=b"PK\x03\x04junk" * 4), tmp_path, trust, capsys, "unreferenced data")
    _zip_refused(build_zip(_with(genuine), suffix=b"trailer"), tmp_path, trust, capsys, "(zip): does not end with")


def test_zip_local_and_central_names_differ(
    genuine: Path, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"{genuine.name}/report.html".encode()
    member = Member(target, (genuine / "report.html").read_bytes(), local_name=f"{genuine.name}/report.htmx".encode())
    _zip_refused(
        build_zip(_with(genuine, replace={"report.html": member})), tmp_path, trust, capsys, "its local header names it"
    )


def test_zip_duplicate_and_case_colliding_names(
    genuine: Path, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str]
) -> None:
    root = genuine.name
    twice = Member(f"{root}/certificate.json".encode(), _forged_certificate(genuine))
    _zip_refused(build_zip(_with(genuine, twice)), tmp_path, trust, capsys, "certificate.json: appears twice")
    upper = Member(f"{root}/Report.html".encode(), b"<p>CERTIFIED</p>")
    _zip_refused(build_zip(_with(genuine, upper)), tmp_path, trust, capsys, "differs from", "only in case")
    folder = Member(f"{root}/Evidence/x.json".encode(), b"{}")
    _zip_refused(
        build_zip(_with(genuine, folder)), tmp_path, trust, capsys, "folder 'Evidence' differs from 'evidence'"
    )
    shadow = Member(f"{root}/report.html/index.html".encode(), b"<p>CERTIFIED</p>")
    _zip_refused(build_zip(_with(genuine, shadow)), tmp_path, trust, capsys, "is both a file and a folder")


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("{root}/extra.txt", "not listed in the manifest"),
        ("extra.txt", "outside the bundle folder"),
        ("{root}/../certificate.json", "unsafe path"),
        ("/{root}/certificate.json", "unsafe path"),
        ("{root}\\certificate.json", "unsafe path"),
        ("{root}/report.html:stream", "unsafe path"),
        ("{root}/report.html.", "ends with a dot"),
        ("{root}/evidence/CON.json", "Windows device name"),
        ("{root}/evidence/caf\u00e9.json", "not plain ASCII"),
    ],
)
def test_zip_names_extractors_disagree_on(
    genuine: Path, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str], name: str, needle: str
) -> None:
    member = Member(name.format(root=genuine.name).encode("utf-8"), b"{}", flags=0x800)
    _zip_refused(build_zip(_with(genuine, member)), tmp_path, trust, capsys, needle)


def test_zip_symlink_and_data_descriptor(
    genuine: Path, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str]
) -> None:
    link = Member(f"{genuine.name}/x.json".encode(), b"../../etc/passwd", external=0o120777 << 16)
    _zip_refused(build_zip(_with(genuine, link)), tmp_path, trust, capsys, "is a symbolic link")
    descriptor = Member(f"{genuine.name}/y.json".encode(), b"{}", flags=0x8)
    _zip_refused(build_zip(_with(genuine, descriptor)), tmp_path, trust, capsys, "data descriptor")


def test_directory_held_to_the_same_name_rules(
    genuine: Path, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = copy_bundle(genuine, tmp_path)
    (bundle / "Report.html").write_text("<p>CERTIFIED</p>")
    _refused(bundle, trust, capsys, "only in case")


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP unzip not installed")
def test_zip_that_unzip_extracts_differently_is_refused(
    genuine: Path, tmp_path: Path, trust: Trust, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10's differential: a directory entry whose 0x7075 field makes unzip write a forged certificate.json."""
    root = genuine.name
    decoy = f"{root}/zz/".encode()
    forged = Member(decoy, _forged_certificate(genuine), extra=unicode_path_extra(decoy, f"{root}/certificate.json"))
    members = sorted(_with(genuine), key=lambda m: not m.name.endswith(b"/certificate.json"))  # genuine one first
    data = build_zip([*members, forged])
    extracted = tmp_path / "unzipped"
    extracted.mkdir()
    (tmp_path / "crafted.zip").write_bytes(data)
    subprocess.run(["unzip", "-o", "-q", str(tmp_path / "crafted.zip")], cwd=extracted, check=True)
    assert load(extracted / root)["result"]["verdict"] == "CERTIFIED"  # what unzip wrote
    assert load(genuine)["result"]["verdict"] == "NOT_CERTIFIED"  # what the signer signed
    _zip_refused(data, tmp_path, trust, capsys, "zz/", "Info-ZIP Unicode Path extra field (0x7075)")
