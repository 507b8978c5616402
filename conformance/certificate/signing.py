"""Ed25519 keys, signatures and the canonical JSON form that gets signed.

Keys are PEM files: the private key PKCS#8 (unencrypted, mode 0600), the public key
SubjectPublicKeyInfo. Signatures are raw 64-byte Ed25519 signatures, so a bundle can be
checked without this tool as well::

    openssl pkeyutl -verify -pubin -inkey ed25519-public.pem -rawin \\
        -in manifest.json -sigfile manifest.sig

Canonical JSON (:func:`canonical_json`) is the one serialisation used for everything
that is hashed or signed: keys sorted, separators ``,`` and ``:`` with no other
whitespace, UTF-8 without ``\\u`` escaping of non-ASCII, no NaN or Infinity.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from conformance.errors import UsageError

PRIVATE_KEY_NAME = "ed25519-private.pem"
PUBLIC_KEY_NAME = "ed25519-public.pem"
SIGNATURE_SIZE = 64
_MAX_KEY_FILE = 64 * 1024

__all__ = [
    "PRIVATE_KEY_NAME",
    "PUBLIC_KEY_NAME",
    "canonical_json",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "sign",
    "verify",
]


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` in the project's canonical JSON form (see module docstring)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short stable identifier of a public key: first 16 hex digits of sha256(raw key)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(out_dir: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write a new Ed25519 pair into ``out_dir``; return ``(private_path, public_path)``.

    The private key file is created with mode 0600. Existing files are never replaced
    unless ``force`` is true.
    """
    out_dir = Path(out_dir)
    private_path, public_path = out_dir / PRIVATE_KEY_NAME, out_dir / PUBLIC_KEY_NAME
    if not force:
        for path in (private_path, public_path):
            if path.exists():
                raise UsageError(f"{path} already exists; use --force to replace it")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create key directory {out_dir}: {exc.strerror}") from exc
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if force else os.O_EXCL)
    try:
        fd = os.open(private_path, flags, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_pem)
        os.chmod(private_path, 0o600)  # O_CREAT's mode does not apply to an existing file
        public_path.write_bytes(public_pem)
    except FileExistsError as exc:
        raise UsageError(f"{exc.filename} already exists; use --force to replace it") from exc
    except OSError as exc:
        raise UsageError(f"cannot write key files in {out_dir}: {exc.strerror}") from exc
    return private_path, public_path


def _read_key_file(path: Path, what: str) -> bytes:
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_KEY_FILE:
            raise UsageError(f"{path}: too large to be an Ed25519 {what} key")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: {what} key file not found") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{path}: is a directory, expected an Ed25519 {what} key file") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what} key: {exc.strerror}") from exc


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Load an Ed25519 private key (PEM PKCS#8); :class:`UsageError` on anything else."""
    data = _read_key_file(path, "private")
    if b"PUBLIC KEY" in data and b"PRIVATE KEY" not in data:
        raise UsageError(f"{path}: this is a public key; signing needs the private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise UsageError(f"{path}: encrypted private keys are not supported") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"{path}: not a readable PEM private key (corrupt or wrong format)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path}: wrong key type {type(key).__name__.removeprefix('_')}; an Ed25519 key is required")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Load an Ed25519 public key (PEM SubjectPublicKeyInfo); :class:`UsageError` on anything else."""
    data = _read_key_file(path, "public")
    if b"PRIVATE KEY" in data:
        raise UsageError(
            f"{path}: this is a private key; verification needs the public key (keep the private key secret)"
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"{path}: not a readable PEM public key (corrupt or wrong format)") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path}: wrong key type {type(key).__name__.removeprefix('_')}; an Ed25519 key is required")
    return key


def sign(private_key: Ed25519PrivateKey, data: bytes) -> bytes:
    """Return the raw 64-byte Ed25519 signature of ``data``."""
    return private_key.sign(data)


def verify(public_key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    """Return whether ``signature`` is a valid Ed25519 signature of ``data`` by ``public_key``."""
    if len(signature) != SIGNATURE_SIZE:
        return False
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
