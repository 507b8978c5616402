"""The keyring (roles, scopes, assurance levels), key generation without following links, strict documents."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from bundle_samples import make_result, write_keyring

from conformance.certificate.bundle import write_bundle
from conformance.certificate.documents import DocumentError, load_json, load_json_or_yaml
from conformance.certificate.keyring import SELF_ASSESSED, WITNESSED, OutOfScope, assess, load_keyring
from conformance.certificate.signing import generate_keypair, key_id, load_public_key
from conformance.certificate.waivers import load_waivers, sign_waivers
from conformance.cli import main
from conformance.errors import UsageError


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    return {name: generate_keypair(tmp_path / name) for name in ("acme", "dept", "lab", "leeds")}


@pytest.fixture
def keyring(tmp_path: Path, keys: dict[str, tuple[Path, Path]]) -> Path:
    return write_keyring(
        tmp_path / "keyring.json",
        (keys["acme"][1], "Acme Care Systems", "supplier", {"supplier": "Acme Care Systems", "products": ["CareCase"]}),
        (keys["dept"][1], "DCSF", "department", None),
        (keys["lab"][1], "Northern Test House", "test-lab", {"suppliers": ["Acme Care Systems"]}),
        (keys["leeds"][1], "Leeds City Council", "council", {"council": "Leeds"}),
    )


def _entry(ring: Path, keys: dict[str, tuple[Path, Path]], name: str) -> Any:
    entry = load_keyring(ring).get(key_id(load_public_key(keys[name][1])))
    assert entry is not None
    return entry


def test_assurance_levels(keyring: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    acme = {"supplier": "acme care systems ", "product": "CareCase", "council": None}
    assert assess(_entry(keyring, keys, "acme"), **acme) == SELF_ASSESSED
    assert assess(_entry(keyring, keys, "dept"), **acme) == WITNESSED
    assert assess(_entry(keyring, keys, "lab"), **acme) == WITNESSED
    assert assess(_entry(keyring, keys, "leeds"), **dict(acme, council="LEEDS")) == SELF_ASSESSED
    with pytest.raises(OutOfScope, match="may sign only for products CareCase, not for 'CarePlus'"):
        assess(_entry(keyring, keys, "acme"), **dict(acme, product="CarePlus"))
    with pytest.raises(OutOfScope, match="may sign only for supplier 'Acme Care Systems', not for 'Other Ltd'"):
        assess(_entry(keyring, keys, "acme"), **dict(acme, supplier="Other Ltd"))
    with pytest.raises(OutOfScope, match="may witness only Acme Care Systems"):
        assess(_entry(keyring, keys, "lab"), **dict(acme, supplier="Other Ltd"))
    with pytest.raises(OutOfScope, match="council 'Leeds', not for council None"):
        assess(_entry(keyring, keys, "leeds"), **acme)
    with pytest.raises(OutOfScope, match="not independent"):
        assess(_entry(keyring, keys, "dept"), **dict(acme, supplier="DCSF"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["keys"][0].pop("scope"), "'scope' is a required property"),
        (lambda d: d["keys"][0].update(role="vendor"), "/keys/0/role"),
        (lambda d: d["keys"][1].update(scope={"council": "Leeds"}), "a department key takes no scope"),
        (lambda d: d["keys"][0].update(key_id="0" * 16), "does not match its public key"),
        (lambda d: d["keys"].append(dict(d["keys"][0], party="Twin")), "listed twice"),
        (lambda d: d["keys"][0].update(public_key="-----BEGIN PUBLIC KEY-----\nAAAA\n"), "not a readable PEM"),
    ],
)
def test_malformed_keyrings_refused(keyring: Path, change: Any, message: str) -> None:
    data = json.loads(keyring.read_text())
    change(data)
    keyring.write_text(json.dumps(data))
    with pytest.raises(UsageError, match=message):
        load_keyring(keyring)


def test_keyring_yaml_with_repeated_keys_refused(tmp_path: Path, keyring: Path) -> None:
    data = json.loads(keyring.read_text())
    good = tmp_path / "ring.yaml"
    good.write_text(yaml.safe_dump(data))
    assert len(load_keyring(good).entries) == 4
    doubled = tmp_path / "doubled.yaml"
    doubled.write_text(good.read_text().replace("role: department", "role: supplier\n  role: department", 1))
    with pytest.raises(UsageError, match="duplicate key 'role'"):
        load_keyring(doubled)


def test_documents_refuse_repeated_keys_and_constants() -> None:
    assert load_json(b'{"a": {"b": 1}}') == {"a": {"b": 1}}
    with pytest.raises(DocumentError, match="duplicate key 'b'"):
        load_json(b'{"a": {"b": 1, "b": 2}}')
    with pytest.raises(DocumentError, match="NaN is not JSON"):
        load_json(b'{"a": NaN}')
    with pytest.raises(DocumentError, match="duplicate key 'x'"):
        load_json_or_yaml("x: 1\ny: {z: 2}\nx: 3\n")


def test_certify_side_refuses_keys_outside_the_keyring_or_their_scope(
    tmp_path: Path, keyring: Path, keys: dict[str, tuple[Path, Path]]
) -> None:
    ring = load_keyring(keyring)
    result = make_result()  # Acme Care Systems CareCase 4.2.1, no council
    bundle = write_bundle(result, tmp_path / "a", sign_key=keys["acme"][0], keyring=ring)
    certificate = json.loads((bundle.directory / "certificate.json").read_bytes())
    assert certificate["signer"] == {
        "key_id": bundle.key_id,
        "party": "Acme Care Systems",
        "role": "supplier",
        "assurance": "self-assessed",
    }
    assert bundle.manifest["signing"]["assurance"] == "self-assessed"
    with pytest.raises(UsageError, match="not signing: signer Leeds City Council"):
        write_bundle(result, tmp_path / "b", sign_key=keys["leeds"][0], keyring=ring)
    stranger, _ = generate_keypair(tmp_path / "stranger")
    with pytest.raises(UsageError, match="is not in the keyring"):
        write_bundle(result, tmp_path / "c", sign_key=stranger, keyring=ring)


# --------------------------------------------------------------------------- keys generate


def test_keys_generate_writes_a_keyring_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "k"
    args = ["keys", "generate", "--out", str(out), "--party", "Acme Care Systems Ltd", "--role", "supplier"]
    assert main([*args, "--supplier", "Acme Care Systems", "--product", "CareCase"]) == 0
    printed = capsys.readouterr().out
    entry = json.loads((out / "keyring-entry.json").read_text())
    assert entry["key_id"] == key_id(load_public_key(out / "ed25519-public.pem")) and entry["key_id"] in printed
    assert entry["scope"] == {"supplier": "Acme Care Systems", "products": ["CareCase"]}
    ring = tmp_path / "ring.json"
    ring.write_text(json.dumps({"keys": [entry]}))
    assert load_keyring(ring).entries[0].role == "supplier"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert main(["keys", "generate", "--out", str(tmp_path / "x"), "--party", "A", "--role", "supplier"]) == 2
    assert "'scope' is a required property" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_keys_generate_never_follows_a_symbolic_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "k"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "ed25519-private.pem").symlink_to(victim)
    (out / "ed25519-public.pem").symlink_to(tmp_path / "dangling")
    assert main(["keys", "generate", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["keys", "generate", "--out", str(out), "--force"]) == 0
    assert victim.read_text() == "precious" and not (tmp_path / "dangling").exists()
    private = out / "ed25519-private.pem"
    assert not private.is_symlink() and stat.S_IMODE(private.stat().st_mode) == 0o600
    assert not (out / "ed25519-public.pem").is_symlink()
    assert b"PRIVATE KEY" in private.read_bytes()


def test_keys_generate_race_with_a_dangling_link(tmp_path: Path) -> None:
    """Without --force a name that appears (even as a dangling link) is never written through."""
    from conformance.certificate.signing import write_new_file

    target = tmp_path / "elsewhere"
    link = tmp_path / "key.pem"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        write_new_file(link, b"secret", mode=0o600)
    assert not target.exists() and link.is_symlink()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    write_new_file(link, b"secret", mode=0o600, replace=True)
    assert not target.exists() and not link.is_symlink() and link.read_bytes() == b"secret"
    assert oct(os.stat(link).st_mode & 0o777) == oct(0o600)


# --------------------------------------------------------------------------- waiver files


def _signed(tmp_path: Path, key: Path) -> Path:
    source = tmp_path / "w.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "issued_by": "DCSF",
                "issued_at": "2008-09-01",
                "waivers": [
                    {
                        "requirement": "ICS-1B-SRCH-001",
                        "scope": {"supplier": "Acme Care Systems"},
                        "reason": "r",
                        "reference": "DCSF-W-1",
                        "expires": "2099-01-01",
                    }
                ],
            }
        )
    )
    return sign_waivers(source, key, tmp_path / "w.signed.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(extra="x"), "malformed signature"),
        (lambda s: s.update(key_id="XYZ"), "malformed signature"),
        (lambda s: s.update(alg="RSA"), "malformed signature"),
        (lambda s: s.update(value=s["value"][:40]), "malformed signature"),
        (lambda s: s.update(value=s["value"].replace("==", "")), "malformed signature"),
        (lambda s: s.update(key_id="0" * 16), "signed by key 0000000000000000, not by the certifier key"),
    ],
)
def test_malformed_signature_blocks_refused(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], change: Any, message: str
) -> None:
    path = _signed(tmp_path, keys["dept"][0])
    data = json.loads(path.read_text())
    change(data["signature"])
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match=message):
        load_waivers(path, keys["dept"][1])


def test_waiver_file_with_repeated_keys_refused(tmp_path: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    path = _signed(tmp_path, keys["dept"][0])
    assert load_waivers(path, keys["dept"][1]).waivers[0].reference == "DCSF-W-1"
    text = path.read_text()
    path.write_text(text.replace('"reason": "r"', '"reason": "r", "reason": "anything"', 1))
    with pytest.raises(UsageError, match="duplicate key 'reason'"):
        load_waivers(path, keys["dept"][1])
    unsigned = tmp_path / "u.yaml"
    unsigned.write_text("issued_by: a\nissued_by: b\nissued_at: 2008-09-01\nwaivers: []\n")
    with pytest.raises(UsageError, match="duplicate key 'issued_by'"):
        sign_waivers(unsigned, keys["dept"][0])


def test_waivers_check_with_a_keyring(
    tmp_path: Path, keyring: Path, keys: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    good = _signed(tmp_path, keys["dept"][0])
    assert main(["waivers", "check", str(good), "--keyring", str(keyring)]) == 0
    assert "(DCSF)" in capsys.readouterr().out
    bad = _signed(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, keys["acme"][0])
    assert main(["waivers", "check", str(bad), "--keyring", str(keyring)]) == 2
    assert "Acme Care Systems (supplier" in capsys.readouterr().err
