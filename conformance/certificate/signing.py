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
import secrets
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
    "write_new_file",
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
    unless ``force`` is true. Symbolic links are never followed: each file is written as a
    new file beside its final name (``O_CREAT | O_EXCL | O_NOFOLLOW``) and then linked
    (no ``force``: fails if the name exists, even as a dangling link) or renamed over it
    (``force``: replaces a link itself, never its target).
    """
    out_dir = Path(out_dir)
    private_path, public_path = out_dir / PRIVATE_KEY_NAME, out_dir / PUBLIC_KEY_NAME
    if not force:
        for path in (private_path, public_path):
            if os.path.lexists(path):
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
    written: list[Path] = []
    try:
        write_new_file(private_path, private_pem, mode=0o600, replace=force)
        written.append(private_path)
        write_new_file(public_path, public_pem, mode=0o644, replace=force)
    except FileExistsError as exc:
        for path in written:  # never leave half a pair behind
            path.unlink(missing_ok=True)
        raise UsageError(f"{out_dir / str(exc.filename or '')} already exists; use --force to replace it") from exc
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise UsageError(f"cannot write key files in {out_dir}: {exc.strerror}") from exc
    return private_path, public_path


def write_new_file(path: Path, data: bytes, *, mode: int, replace: bool = False) -> None:
    """Write ``data`` to ``path`` without following a symbolic link at any step.

    A temporary file is created in the same directory with ``O_CREAT | O_EXCL |
    O_NOFOLLOW`` and mode ``mode``, written and synced, then either hard-linked to
    ``path`` (``replace`` false: :class:`FileExistsError` when ``path`` exists in any
    form) or renamed over it (``replace`` true: a link at ``path`` is replaced, not
    followed). The directory is opened once, so the names are resolved in one place.
    """
    path = Path(path)
    name = path.name
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        temporary = f".{name}.{secrets.token_hex(8)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), mode)  # whatever the umask
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if replace:
                os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            else:
                try:
                    os.link(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                except FileExistsError as exc:
                    raise FileExistsError(exc.errno, exc.strerror, name) from None
        finally:
            try:
                os.unlink(temporary, dir_fd=dir_fd)
            except FileNotFoundError:
                pass  # renamed
    finally:
        os.close(dir_fd)


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
