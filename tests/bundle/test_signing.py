"""Keys: generation through the CLI, loading errors, signatures, canonical JSON."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conformance.certificate.signing import (
    canonical_json,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign,
    verify,
)
from conformance.cli import main
from conformance.errors import UsageError


def test_keys_generate_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "k"
    assert main(["keys", "generate", "--out", str(out)]) == 0
    private, public = out / "ed25519-private.pem", out / "ed25519-public.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in private.read_bytes() and b"BEGIN PUBLIC KEY" in public.read_bytes()
    assert "key id:" in capsys.readouterr().out
    before = private.read_bytes()
    assert main(["keys", "generate", "--out", str(out)]) == 2
    assert "already exists; use --force" in capsys.readouterr().err
    assert private.read_bytes() == before
    private.chmod(0o644)
    assert main(["keys", "generate", "--out", str(out), "--force"]) == 0
    assert private.read_bytes() != before and stat.S_IMODE(private.stat().st_mode) == 0o600


def test_sign_and_verify_round_trip(tmp_path: Path) -> None:
    private, public = generate_keypair(tmp_path)
    signature = sign(load_private_key(private), b"manifest")
    assert len(signature) == 64
    assert verify(load_public_key(public), b"manifest", signature)
    assert not verify(load_public_key(public), b"manifesT", signature)
    assert not verify(load_public_key(public), b"manifest", signature[:-1])


def _pem(key) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.mark.parametrize(
    "make",
    [
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        lambda: ec.generate_private_key(ec.SECP256R1()),
    ],
    ids=["rsa", "ec"],
)
def test_wrong_key_types_refused(tmp_path: Path, make) -> None:
    private, public = _pem(make())
    (tmp_path / "priv.pem").write_bytes(private)
    (tmp_path / "pub.pem").write_bytes(public)
    with pytest.raises(UsageError, match="wrong key type .*Ed25519"):
        load_private_key(tmp_path / "priv.pem")
    with pytest.raises(UsageError, match="wrong key type .*Ed25519"):
        load_public_key(tmp_path / "pub.pem")


def test_corrupt_and_confused_keys_refused(tmp_path: Path) -> None:
    private, public = generate_keypair(tmp_path / "k")
    corrupt = tmp_path / "corrupt.pem"
    corrupt.write_bytes(private.read_bytes()[:60] + b"garbage\n-----END PRIVATE KEY-----\n")
    with pytest.raises(UsageError, match="corrupt"):
        load_private_key(corrupt)
    with pytest.raises(UsageError, match="corrupt"):
        load_public_key(_write(tmp_path / "bad.pub", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
    with pytest.raises(UsageError, match="this is a public key"):
        load_private_key(public)
    with pytest.raises(UsageError, match="this is a private key"):
        load_public_key(private)
    with pytest.raises(UsageError, match="not found"):
        load_public_key(tmp_path / "absent.pem")
    with pytest.raises(UsageError, match="is a directory"):
        load_public_key(tmp_path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_encrypted_private_key_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    with pytest.raises(UsageError, match="encrypted"):
        load_private_key(_write(tmp_path / "enc.pem", pem))


def test_canonical_json() -> None:
    assert canonical_json({"b": [1, 2.5, None], "a": "é"}) == '{"a":"é","b":[1,2.5,null]}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
