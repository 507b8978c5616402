"""Bundle writing and offline verification: the done-when flow and every tamper case."""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DET
import pytest
from bundle_samples import make_result

from conformance.certificate.bundle import Bundle, write_bundle
from conformance.certificate.signing import canonical_json, generate_keypair
from conformance.certificate.verify import verify_bundle
from conformance.cli import main
from conformance.spec.catalogue import load_catalogue


@pytest.fixture
def bundle(tmp_path: Path, sample_result: dict[str, Any], keypair: tuple[Path, Path]) -> Bundle:
    return write_bundle(sample_result, tmp_path / "out", sign_key=keypair[0])


def _flip(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    index = len(data) // 2 if offset is None else offset
    data[index] ^= 0x01
    path.write_bytes(bytes(data))


def _rewrite_zip(src: Path, dst: Path, change) -> None:
    """Copy a zip member by member through ``change(name, data) -> [(name, data), ...]``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            for name, data in change(info.filename, zin.read(info)):
                zout.writestr(name, data)


# -- the done-when flow, through the CLI ----------------------------------------------------


def test_done_when_flow_through_cli(
    tmp_path: Path, sample_result: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    assert main(["keys", "generate", "--out", str(keys)]) == 0
    private, public = keys / "ed25519-private.pem", keys / "ed25519-public.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    bundle = write_bundle(sample_result, tmp_path / "out", sign_key=private)
    capsys.readouterr()

    assert main(["verify", str(bundle.directory), "--key", str(public)]) == 0
    out = capsys.readouterr().out
    assert "VERIFIED" in out and "NOT_CERTIFIED" in out and "1B" in out
    spec_version = load_catalogue().spec_version  # the spec this harness carries
    assert "Acme Care Systems CareCase 4.2.1" in out and f"spec:      {spec_version}" in out and "0.1.0" in out
    assert main(["verify", str(bundle.zip_path), "--key", str(public)]) == 0
    capsys.readouterr()

    _flip(bundle.directory / "report.html")
    assert main(["verify", str(bundle.directory), "--key", str(public)]) == 1
    assert "report.html: sha256 mismatch" in capsys.readouterr().out


def test_verify_json_output(bundle: Bundle, keypair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(bundle.zip_path), "--key", str(keypair[1]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["verdict"] == "NOT_CERTIFIED" and data["phase"] == "1B"


def test_unreadable_bundle_or_key_is_usage_error(
    tmp_path: Path, bundle: Bundle, keypair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tmp_path / "nope"), "--key", str(keypair[1])]) == 2
    assert "no such bundle" in capsys.readouterr().err
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 definitely not a zip")
    assert main(["verify", str(junk), "--key", str(keypair[1])]) == 2
    assert "not a readable zip" in capsys.readouterr().err
    assert main(["verify", str(bundle.directory), "--key", str(tmp_path / "missing.pem")]) == 2
    assert "key file not found" in capsys.readouterr().err
    assert main(["verify", str(bundle.directory), "--key", str(keypair[0])]) == 2
    assert "private key" in capsys.readouterr().err


# -- what a bundle holds ------------------------------------------------------------------


def test_bundle_contents(bundle: Bundle) -> None:
    files = set(bundle.files)
    for name in ("certificate.json", "report.html", "junit.xml", "manifest.json", "manifest.sig"):
        assert name in files
    assert any(f.startswith("allure-results/") and f.endswith("-result.json") for f in files)
    assert any(f.startswith("evidence/") for f in files)
    on_disk = sorted(p.relative_to(bundle.directory).as_posix() for p in bundle.directory.rglob("*") if p.is_file())
    assert on_disk == sorted(files)
    with zipfile.ZipFile(bundle.zip_path) as archive:
        assert sorted(archive.namelist()) == sorted(f"{bundle.name}/{f}" for f in files)

    raw = (bundle.directory / "certificate.json").read_bytes()
    certificate = json.loads(raw)
    assert raw == canonical_json(certificate)  # canonical form
    assert certificate["format"] == "ics-conformance/certificate/2"
    assert certificate["result"]["verdict"] == "NOT_CERTIFIED"
    assert "waivers" in certificate

    manifest_raw = (bundle.directory / "manifest.json").read_bytes()
    manifest = json.loads(manifest_raw)
    assert manifest_raw == canonical_json(manifest)
    assert {e["path"] for e in manifest["files"]} == files - {"manifest.json", "manifest.sig"}
    assert all(len(e["sha256"]) == 64 and e["size"] > 0 for e in manifest["files"])
    assert manifest["redaction"]["policy"] == "none"  # built-in reference target
    assert manifest["spec"]["version"] == "2008.2" and manifest["harness"]["version"] == "0.1.0"
    assert manifest["signing"]["key_id"] == bundle.key_id
    assert len((bundle.directory / "manifest.sig").read_bytes()) == 64


def test_junit_maps_verdicts(bundle: Bundle) -> None:
    tree = DET.parse(bundle.directory / "junit.xml")
    cases = {c.get("name"): c for c in tree.iter("testcase")}
    assert all(name.startswith("ICS-") for name in cases)
    by_req = {name.split()[0]: case for name, case in cases.items()}
    assert by_req["ICS-1B-SRCH-001"].find("failure") is not None
    assert "Reproduce" in by_req["ICS-1B-SRCH-001"].find("failure").text
    assert by_req["ICS-1A-API-001"].find("failure") is not None
    assert by_req["ICS-1A-REC-006"].find("skipped") is not None  # NOT_APPLICABLE
    assert by_req["ICS-1A-REC-007"].find("skipped") is not None  # SKIPPED
    assert by_req["ICS-1A-REC-001"].find("failure") is None and by_req["ICS-1A-REC-001"].find("skipped") is None


def test_junit_error_and_allure_statuses(tmp_path: Path) -> None:
    bundle = write_bundle(make_result(with_error=True), tmp_path)
    cases = {c.get("name").split()[0]: c for c in DET.parse(bundle.directory / "junit.xml").iter("testcase")}
    assert cases["ICS-1B-ACC-001"].find("error") is not None

    results = [json.loads(p.read_bytes()) for p in (bundle.directory / "allure-results").glob("*-result.json")]
    by_req = {next(lb["value"] for lb in r["labels"] if lb["name"] == "requirement"): r for r in results}
    assert by_req["ICS-1B-ACC-001"]["status"] == "broken"  # ERROR
    assert by_req["ICS-1B-SRCH-001"]["status"] == "failed"
    assert by_req["ICS-1A-API-001"]["status"] == "failed"  # Schemathesis/contract FAIL is failed, not broken
    assert by_req["ICS-1A-REC-001"]["status"] == "passed"
    assert by_req["ICS-1A-REC-006"]["status"] == "skipped"
    srch = by_req["ICS-1B-SRCH-001"]
    names = {lb["name"] for lb in srch["labels"]}
    assert {"requirement", "area", "phase", "level"} <= names
    assert srch["links"][0]["name"] == "ICS-1B-SRCH-001" and "ICS-1B-SRCH-001" in srch["links"][0]["url"]
    assert "Reproduce" in srch["statusDetails"]["trace"]
    assert srch["attachments"] and (bundle.directory / "allure-results" / srch["attachments"][0]["source"]).is_file()


def test_same_result_gives_same_certificate(tmp_path: Path, sample_result: dict[str, Any]) -> None:
    shuffled = json.loads(json.dumps(sample_result))
    shuffled["requirements"][0]["checks"].append(dict(shuffled["requirements"][0]["checks"][0], id="a-first"))
    original = json.loads(json.dumps(shuffled))
    shuffled["requirements"][0]["checks"].reverse()  # as xdist might order them
    one = write_bundle(original, tmp_path / "a")
    two = write_bundle(shuffled, tmp_path / "b")
    for name in ("certificate.json", "junit.xml", "report.html"):
        assert (one.directory / name).read_bytes() == (two.directory / name).read_bytes()


def test_second_bundle_gets_a_new_name(tmp_path: Path, sample_result: dict[str, Any]) -> None:
    one = write_bundle(sample_result, tmp_path)
    two = write_bundle(sample_result, tmp_path)
    assert one.name != two.name and one.directory.is_dir() and two.zip_path.is_file()
    assert not list(tmp_path.glob(".*partial"))


# -- tamper cases -------------------------------------------------------------------------


def _all_files(bundle: Bundle) -> list[str]:
    return [f for f in bundle.files if f != "manifest.sig"]


def test_every_file_byte_flip_detected_in_directory(tmp_path: Path, bundle: Bundle, keypair: tuple[Path, Path]) -> None:
    for rel in bundle.files:
        copy = tmp_path / f"copy-{abs(hash(rel))}"
        shutil.copytree(bundle.directory, copy)
        _flip(copy / rel)
        outcome = verify_bundle(copy, keypair[1])
        assert not outcome.ok, rel
        expected = "manifest.json" if rel in ("manifest.json", "manifest.sig") else rel
        assert outcome.bad_file == expected, (rel, outcome.message)


def test_every_file_byte_flip_detected_in_zip(tmp_path: Path, bundle: Bundle, keypair: tuple[Path, Path]) -> None:
    for rel in bundle.files:
        target = f"{bundle.name}/{rel}"
        tampered = tmp_path / f"t-{abs(hash(rel))}.zip"

        def change(name: str, data: bytes, target: str = target) -> list[tuple[str, bytes]]:
            if name == target:
                data = bytearray(data)
                data[len(data) // 2] ^= 0x01
                data = bytes(data)
            return [(name, data)]

        _rewrite_zip(bundle.zip_path, tampered, change)
        outcome = verify_bundle(tampered, keypair[1])
        expected = "manifest.json" if rel in ("manifest.json", "manifest.sig") else rel
        assert not outcome.ok and outcome.bad_file == expected, (rel, outcome.message)


@pytest.mark.parametrize(
    "rel",
    ["report.html", "certificate.json", "junit.xml", "evidence", "allure-results", "manifest.sig", "manifest.json"],
)
def test_missing_file_detected(tmp_path: Path, bundle: Bundle, keypair: tuple[Path, Path], rel: str) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundle.directory, copy)
    if rel in ("evidence", "allure-results"):
        victim = sorted((copy / rel).iterdir())[0]
        rel = victim.relative_to(copy).as_posix()
    (copy / rel).unlink()
    outcome = verify_bundle(copy, keypair[1])
    assert not outcome.ok and outcome.bad_file == rel and "missing" in outcome.problem


@pytest.mark.parametrize("rel", ["extra.txt", "evidence/smuggled.json", "allure-results/x-result.json"])
def test_extra_file_detected(tmp_path: Path, bundle: Bundle, keypair: tuple[Path, Path], rel: str) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundle.directory, copy)
    (copy / rel).write_text("{}")
    outcome = verify_bundle(copy, keypair[1])
    assert not outcome.ok and outcome.bad_file == rel and "not listed" in outcome.problem

    tampered = tmp_path / "extra.zip"
    _rewrite_zip(
        bundle.zip_path,
        tampered,
        lambda n, d: [(n, d)] + ([(f"{bundle.name}/{rel}", b"{}")] if n.endswith("report.html") else []),
    )
    outcome = verify_bundle(tampered, keypair[1])
    assert not outcome.ok and outcome.bad_file == rel

    at_root = tmp_path / "root.zip"
    _rewrite_zip(
        bundle.zip_path, at_root, lambda n, d: [(n, d)] + ([(rel, b"{}")] if n.endswith("report.html") else [])
    )
    outcome = verify_bundle(at_root, keypair[1])
    assert not outcome.ok and outcome.bad_file == rel and "extra file" in outcome.problem


def test_symlink_in_directory_rejected(tmp_path: Path, bundle: Bundle, keypair: tuple[Path, Path]) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundle.directory, copy)
    (copy / "report.html").unlink()
    (copy / "report.html").symlink_to(bundle.directory / "report.html")
    outcome = verify_bundle(copy, keypair[1])
    assert not outcome.ok and outcome.bad_file == "report.html" and "symbolic link" in outcome.problem


def test_swapped_signature_detected(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    first = write_bundle(make_result(), tmp_path / "a", sign_key=keypair[0])
    other = make_result()
    other["seed"] = 99
    second = write_bundle(other, tmp_path / "b", sign_key=keypair[0])
    shutil.copy(second.directory / "manifest.sig", first.directory / "manifest.sig")  # valid signature, other manifest
    outcome = verify_bundle(first.directory, keypair[1])
    assert not outcome.ok and outcome.bad_file == "manifest.json" and "signature" in outcome.problem


def test_resigned_manifest_with_other_key_detected(tmp_path: Path, bundle: Bundle, keypair: tuple[Path, Path]) -> None:
    """An attacker edits a file, rewrites the manifest and signs it with their own key."""
    from conformance.certificate.signing import load_private_key, sign

    attacker_private, _ = generate_keypair(tmp_path / "attacker")
    report = bundle.directory / "report.html"
    report.write_bytes(report.read_bytes().replace(b"NOT CERTIFIED", b"CERTIFIED"))
    manifest = json.loads((bundle.directory / "manifest.json").read_bytes())
    import hashlib

    for entry in manifest["files"]:
        data = (bundle.directory / entry["path"]).read_bytes()
        entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    manifest_bytes = canonical_json(manifest)
    (bundle.directory / "manifest.json").write_bytes(manifest_bytes)
    (bundle.directory / "manifest.sig").write_bytes(sign(load_private_key(attacker_private), manifest_bytes))
    outcome = verify_bundle(bundle.directory, keypair[1])
    assert not outcome.ok and outcome.bad_file == "manifest.json"


def test_wrong_key_detected(tmp_path: Path, bundle: Bundle) -> None:
    _, other_public = generate_keypair(tmp_path / "other")
    for path in (bundle.directory, bundle.zip_path):
        outcome = verify_bundle(path, other_public)
        assert not outcome.ok and outcome.bad_file == "manifest.json" and "signature does not verify" in outcome.problem


def test_unsigned_bundle_is_not_verified(
    tmp_path: Path, sample_result: dict[str, Any], keypair: tuple[Path, Path]
) -> None:
    bundle = write_bundle(sample_result, tmp_path)
    assert not bundle.signed and "manifest.sig" not in bundle.files
    outcome = verify_bundle(bundle.directory, keypair[1])
    assert not outcome.ok and outcome.bad_file == "manifest.sig" and "unsigned" in outcome.problem


def test_truncated_signature_detected(bundle: Bundle, keypair: tuple[Path, Path]) -> None:
    sig = bundle.directory / "manifest.sig"
    sig.write_bytes(sig.read_bytes()[:-1])
    outcome = verify_bundle(bundle.directory, keypair[1])
    assert not outcome.ok and outcome.bad_file == "manifest.sig"


def test_unknown_spec_hash_detected(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    result = make_result()
    result["spec"]["sha256"] = "0" * 64
    bundle = write_bundle(result, tmp_path, sign_key=keypair[0])
    outcome = verify_bundle(bundle.directory, keypair[1])
    assert not outcome.ok and outcome.bad_file == "manifest.json" and "not a known spec version" in outcome.problem


# -- hostile zips -----------------------------------------------------------------------------


@pytest.mark.parametrize("evil", ["../evil.txt", "/etc/evil", "evil\\..\\x", "a/../../evil"])
def test_zip_slip_member_rejected_without_extraction(
    tmp_path: Path, bundle: Bundle, keypair: tuple[Path, Path], evil: str
) -> None:
    tampered = tmp_path / "work" / "slip.zip"
    tampered.parent.mkdir()
    _rewrite_zip(
        bundle.zip_path, tampered, lambda n, d: [(n, d)] + ([(evil, b"pwned")] if n.endswith("report.html") else [])
    )
    outcome = verify_bundle(tampered, keypair[1])
    assert not outcome.ok and ("unsafe path" in outcome.problem or "not listed" in outcome.problem)
    assert not (tmp_path / "evil.txt").exists() and not list(tmp_path.rglob("evil*"))


def _declare_size(zip_path: Path, member: str, size: int) -> None:
    """Patch the uncompressed size the central directory declares for ``member``."""
    raw = bytearray(zip_path.read_bytes())
    header = raw.find(member.encode(), raw.find(b"PK\x01\x02")) - 46
    assert raw[header : header + 4] == b"PK\x01\x02"
    raw[header + 24 : header + 28] = size.to_bytes(4, "little")
    zip_path.write_bytes(bytes(raw))


def test_zip_member_lying_about_its_size_rejected(tmp_path: Path, bundle: Bundle, keypair: tuple[Path, Path]) -> None:
    """A member whose data expands beyond its declared size (zip-bomb style) is refused."""
    tampered = tmp_path / "bomb.zip"
    _rewrite_zip(bundle.zip_path, tampered, lambda n, d: [(n, d)])
    size = (bundle.directory / "report.html").stat().st_size
    _declare_size(tampered, f"{bundle.name}/report.html", size // 2)
    outcome = verify_bundle(tampered, keypair[1])
    assert not outcome.ok and outcome.bad_file == "report.html"


def test_zip_declaring_huge_content_refused(
    tmp_path: Path, bundle: Bundle, keypair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = tmp_path / "huge.zip"
    _rewrite_zip(bundle.zip_path, tampered, lambda n, d: [(n, d)])
    _declare_size(tampered, f"{bundle.name}/report.html", 0xFFFFFFF0)
    assert main(["verify", str(tampered), "--key", str(keypair[1])]) == 2
    assert "zip bomb" in capsys.readouterr().err


def test_signed_certificate_of_the_wrong_shape_is_not_verified(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    """Signed with the right key, but the result is not one this harness writes: NOT VERIFIED, naming where."""
    shaped = write_bundle(make_result(), tmp_path / "ok", sign_key=keypair[0])
    assert verify_bundle(shaped.directory, keypair[1]).ok
    odd = make_result()
    odd["requirements"][0]["verdict"] = "MOSTLY_PASS"
    bundle = write_bundle(odd, tmp_path / "odd", sign_key=keypair[0])
    outcome = verify_bundle(bundle.directory, keypair[1])
    assert not outcome.ok and outcome.bad_file == "certificate.json"
    assert "published schema" in outcome.problem and "/requirements/0/verdict" in outcome.problem
