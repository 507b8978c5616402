"""What an attacker holding only a supplier key (or no key) can do to a bundle, as test helpers.

``forge`` edits a real bundle directory the way a supplier with the harness's own code
would: change ``certificate.json``, render the report and the other derived files again
from it, rebuild the manifest and sign it with the key it holds. ``build_zip`` writes a
zip byte by byte, so a test can add what Python's ``zipfile`` would not write (unreferenced
local entries, renaming extra fields, local and central names that differ).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.certificate.bundle import derived_files, manifest_facts, report_info
from conformance.certificate.signing import canonical_json, key_id, load_private_key, sign
from conformance.results.result import roll_up


def load(directory: Path, rel: str = "certificate.json") -> Any:
    return json.loads((directory / rel).read_bytes())


def copy_bundle(directory: Path, dest: Path) -> Path:
    target = dest / directory.name
    shutil.copytree(directory, target)
    return target


def recount(result: dict[str, Any]) -> None:
    """Make a forged result's verdict and counts agree with its requirement verdicts."""
    overall, counts, areas = roll_up(result["requirements"], result.get("errors") or [])
    result["verdict"], result["counts"], result["areas"] = overall.value, counts, areas


def forge(
    directory: Path,
    key: Path,
    edit: Callable[[dict[str, Any]], None] | None = None,
    *,
    rerender: bool = True,
    files: dict[str, bytes | None] | None = None,
) -> Path:
    """Edit ``certificate.json`` with ``edit``, re-render derived files, re-sign with ``key``.

    ``files`` adds (bytes) or removes (None) other files before the manifest is rebuilt.
    """
    certificate = load(directory)
    if edit is not None:
        edit(certificate)
    private = load_private_key(key)
    ident = key_id(private.public_key())
    if certificate.get("signer") is not None:
        certificate["signer"]["key_id"] = ident
    cert_bytes = canonical_json(certificate)
    (directory / "certificate.json").write_bytes(cert_bytes)
    manifest = load(directory, "manifest.json")
    result = certificate["result"]
    if rerender:
        extra = load(directory, "evidence/run.json")["entries"] if (directory / "evidence/run.json").exists() else []
        info = report_info(
            manifest["bundle"], ident, manifest["redaction"]["policy"], cert_bytes, certificate["signer"]
        )
        for rel in [p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()]:
            if rel.startswith(("allure-results/", "evidence/")) and rel != "evidence/run.json":
                (directory / rel).unlink()
        for rel, data in derived_files(result, extra, info).items():
            (directory / rel).parent.mkdir(parents=True, exist_ok=True)
            (directory / rel).write_bytes(data)
    for rel, data in (files or {}).items():
        if data is None:
            (directory / rel).unlink(missing_ok=True)
        else:
            (directory / rel).parent.mkdir(parents=True, exist_ok=True)
            (directory / rel).write_bytes(data)
    manifest.update(manifest_facts(result, certificate.get("signer")))
    listed = sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "manifest.sig")
    )
    manifest["files"] = [
        {
            "path": rel,
            "sha256": hashlib.sha256((directory / rel).read_bytes()).hexdigest(),
            "size": (directory / rel).stat().st_size,
        }
        for rel in listed
    ]
    manifest_bytes = canonical_json(manifest)
    (directory / "manifest.json").write_bytes(manifest_bytes)
    (directory / "manifest.sig").write_bytes(sign(private, manifest_bytes))
    return directory


# --------------------------------------------------------------------------- raw zips


@dataclass
class Member:
    """One zip entry as bytes. ``local_name``/``local_extra`` default to the central ones."""

    name: bytes
    data: bytes
    extra: bytes = b""
    local_name: bytes | None = None
    local_extra: bytes | None = None
    external: int = (0o100644) << 16
    flags: int = 0
    comment: bytes = b""


def extra_field(ident: int, payload: bytes) -> bytes:
    return struct.pack("<HH", ident, len(payload)) + payload


def unicode_path_extra(original: bytes, new_name: str) -> bytes:
    """Info-ZIP Unicode Path extra field (0x7075): version 1, CRC-32 of the header name, UTF-8 name."""
    return extra_field(0x7075, b"\x01" + struct.pack("<I", zlib.crc32(original)) + new_name.encode("utf-8"))


def _local(member: Member, name: bytes, extra: bytes) -> bytes:
    crc = zlib.crc32(member.data)
    header = struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        20,
        member.flags,
        0,
        0,
        0x21,
        crc,
        len(member.data),
        len(member.data),
        len(name),
        len(extra),
    )
    return header + name + extra + member.data


def build_zip(
    members: list[Member],
    *,
    hidden: tuple[Member, ...] | list[Member] = (),
    prefix: bytes = b"",
    suffix: bytes = b"",
) -> bytes:
    """A stored (uncompressed) zip of ``members``; ``hidden`` local entries the central directory does not list."""
    out = bytearray(prefix)
    central = bytearray()
    for member in members:
        offset = len(out)
        local_name = member.name if member.local_name is None else member.local_name
        local_extra = member.extra if member.local_extra is None else member.local_extra
        out += _local(member, local_name, local_extra)
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            0x0314,
            20,
            member.flags,
            0,
            0,
            0x21,
            zlib.crc32(member.data),
            len(member.data),
            len(member.data),
            len(member.name),
            len(member.extra),
            len(member.comment),
            0,
            0,
            member.external,
            offset,
        )
        central += member.name + member.extra + member.comment
    for member in hidden:
        out += _local(member, member.name, member.extra)
    cd_offset = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), cd_offset, 0)
    return bytes(out + suffix)


def members_of(directory: Path) -> list[Member]:
    """The files of a bundle directory as zip members under its folder name (as ``certify`` writes them)."""
    return [
        Member(f"{directory.name}/{p.relative_to(directory).as_posix()}".encode("ascii"), p.read_bytes())
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    ]
