"""The one seam between the registry and bundle verification.

:func:`verify_and_extract` verifies a bundle with :func:`conformance.certificate.verify.verify_bundle`,
the registry's registered and unrevoked keys serving as the trust model's keyring
(:func:`keyring_of`), and returns the certificate facts the registry stores: phase, verdict,
signer, target identity, spec version, run dates, waivers and the assurance level the
verifier established. Everything else in the registry works from those facts.

The registry also applies its own signer rule (:func:`signer_problem`, now also checked by
the verifier's keyring scopes): a supplier's key signs only for that supplier's products; a
council's key signs its own local QA runs; the certifier's and test labs' keys sign for anyone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.certificate.archive import MAX_FILE_BYTES, MAX_MANIFEST_BYTES, Bad, DirSource, open_source
from conformance.certificate.bundle import MANIFEST
from conformance.errors import UsageError

#: The largest bundle the registry accepts (zip or directory, in bytes).
MAX_BUNDLE_BYTES = 256 * 1024 * 1024


class Refused(Exception):
    """A bundle the registry will not store; ``reason`` says why (one line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KeyInfo:
    """A registered public key and the party it belongs to."""

    key_id: str
    public_key_pem: str
    party: str
    role: str
    supplier: str | None = None  # the supplier a supplier-role party signs for
    council_code: int | None = None  # the council a council-role party is
    council_name: str | None = None
    revoked_at: dt.datetime | None = None
    revoked_reason: str | None = None


@dataclass(frozen=True)
class Waiver:
    requirement: str
    expires: dt.date
    reference: str | None
    reason: str | None
    scope: dict[str, Any]


@dataclass(frozen=True)
class Facts:
    """What the registry records of one verified bundle."""

    manifest_sha256: str
    content: bytes
    filename: str
    run_id: str | None
    phase: str
    verdict: str
    assurance: str
    signer: KeyInfo
    supplier: str
    product: str
    version: str
    target_url: str | None
    builtin_reference: bool
    faults: list[str]
    council_code: int | None
    spec_version: str | None
    spec_sha256: str | None
    harness_version: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime
    counts: dict[str, int]
    waivers: list[Waiver] = field(default_factory=list)

    @property
    def content_sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


KeyLookup = Callable[[str], KeyInfo | None]
KeyList = Callable[[], Sequence[KeyInfo]]

#: Registry roles -> the trust model's keyring roles (docs/design.md §9).
KEYRING_ROLES = {"certifier": "department", "test_lab": "test-lab", "supplier": "supplier", "council": "council"}


# --------------------------------------------------------------------------- reading the bundle


def bundle_bytes(path: Path) -> tuple[bytes, str]:
    """The bundle at ``path`` as zip bytes, and a file name for it.

    A zip is taken as it is. A directory is packed into a zip (one top-level folder named
    after the directory, members sorted, fixed timestamps), refusing links and special files,
    so the registry always stores and re-verifies the same form.
    """
    path = Path(path)
    if path.is_dir():
        return _zip_directory(path), f"{path.name}.zip"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UsageError(f"{path}: no such bundle (a directory or .zip)") from None
    if not path.is_file():
        raise UsageError(f"{path}: not a directory or a zip file")
    if size > MAX_BUNDLE_BYTES:
        raise Refused(f"{path.name}: larger than {MAX_BUNDLE_BYTES // (1024 * 1024)} MiB")
    return path.read_bytes(), path.name


def _zip_directory(root: Path) -> bytes:
    source = DirSource(root)
    try:
        names = source.names()
    except Bad as bad:
        raise Refused(f"{bad.rel}: {bad.problem}") from None
    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel in names:
            total += source.size(rel)
            if total > MAX_BUNDLE_BYTES:
                raise Refused(f"{root.name}: larger than {MAX_BUNDLE_BYTES // (1024 * 1024)} MiB")
            info = zipfile.ZipInfo(f"{root.name}/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, b"".join(source.chunks(rel)))
    return buffer.getvalue()


def _read_member(path: Path, rel: str, limit: int) -> bytes:
    source = open_source(path)
    try:
        return source.read(rel, limit)
    finally:
        source.close()


# --------------------------------------------------------------------------- verification


def manifest_key_id(path: Path) -> tuple[str, str]:
    """``(sha256 of manifest.json, signing key id it names)``; :class:`Refused` when unreadable or unsigned.

    Read before verification only to choose the key; nothing else is trusted from it yet.
    """
    try:
        raw = _read_member(path, MANIFEST, MAX_MANIFEST_BYTES)
    except Bad as bad:
        raise Refused(f"{bad.rel}: {bad.problem}") from None
    except KeyError:
        raise Refused(f"{MANIFEST}: missing (not a bundle, or the manifest was removed)") from None
    except UsageError as exc:
        raise Refused(str(exc)) from None
    try:
        manifest = json.loads(raw)
        signing = manifest.get("signing") if isinstance(manifest, dict) else None
    except ValueError:
        raise Refused(f"{MANIFEST}: not JSON") from None
    key_id = signing.get("key_id") if isinstance(signing, dict) else None
    if not isinstance(key_id, str) or not key_id:
        raise Refused(
            "the bundle is unsigned (its manifest names no signing key); the registry stores signed bundles only"
        )
    return hashlib.sha256(raw).hexdigest(), key_id


def keyring_of(keys: Sequence[KeyInfo]) -> Any:
    """The registry's registered, unrevoked keys as a trust-model keyring."""
    from cryptography.hazmat.primitives import serialization

    from conformance.certificate.keyring import KeyEntry, Keyring

    entries = []
    for key in keys:
        if key.revoked_at is not None:
            continue
        scope: dict[str, Any] = {}
        if key.role == "supplier" and key.supplier:
            scope = {"supplier": key.supplier}
        elif key.role == "council" and key.council_name:
            scope = {"council": key.council_name}
        from conformance.certificate.signing import key_id as key_id_of

        public = serialization.load_pem_public_key(key.public_key_pem.encode("ascii"))
        ident = key_id_of(public)  # type: ignore[arg-type]
        entries.append(KeyEntry(ident, public, key.party, KEYRING_ROLES[key.role], scope))  # type: ignore[arg-type]
    return Keyring(tuple(entries), "registry")


def verify_and_extract(
    path: Path, lookup: KeyLookup, *, filename: str | None = None, keys: KeyList | None = None
) -> Facts:
    """Verify the bundle zip at ``path`` and return its facts; :class:`Refused` with the reason otherwise.

    ``lookup`` maps a key id to the registered key (None: not registered). The bundle must
    verify with that key, the key must not be revoked, and its party must be allowed to sign
    for the target (:func:`signer_problem`).
    """
    path = Path(path)
    manifest_sha, key_id = manifest_key_id(path)
    key = lookup(key_id)
    if key is None:
        raise Refused(
            f"signed by key {key_id}, which is not registered "
            "(add the signer's public key with 'ics-conformance registry keys add')"
        )
    if key.revoked_at is not None:
        raise Refused(
            f"signed by key {key_id} ({key.party}), revoked on {key.revoked_at.date().isoformat()}: {key.revoked_reason}"
        )
    outcome = _verify(path, key.public_key_pem, keys)
    if not outcome.ok:
        raise Refused(f"does not verify: {outcome.bad_file}: {outcome.problem}")
    try:
        certificate = json.loads(_read_member(path, "certificate.json", MAX_FILE_BYTES))
    except (Bad, ValueError, KeyError) as exc:  # verified a moment ago, so this is not expected
        raise Refused(f"certificate.json: unreadable after verification ({exc})") from None
    facts = _facts(certificate, outcome, key, manifest_sha, path, filename or path.name)
    problem = signer_problem(facts)
    if problem:
        raise Refused(problem)
    return facts


def _verify(path: Path, public_key_pem: str, keys: KeyList | None = None) -> Any:
    """``verify_bundle`` with the registry's keys as the keyring (signer, role, scope, assurance
    level and waivers checked by the verifier), or with the signer's key alone."""
    from conformance.certificate.verify import verify_bundle

    if keys is not None:
        return verify_bundle(path, keyring=keyring_of(keys()))
    with tempfile.TemporaryDirectory(prefix="ics-registry-key-") as tmp:
        key_path = Path(tmp) / "signer.pem"
        key_path.write_text(public_key_pem, encoding="ascii")
        return verify_bundle(path, key_path)


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:limit] if text else None


def _facts(
    certificate: Mapping[str, Any], outcome: Any, key: KeyInfo, manifest_sha: str, path: Path, filename: str
) -> Facts:
    result = certificate.get("result") or {}
    target = result.get("target") or {}
    about = target.get("about") or {}
    identity = {k: _text(about.get(k), 100 if k == "version" else 200) for k in ("supplier", "product", "version")}
    missing = [k for k, v in identity.items() if not v]
    if missing:
        raise Refused(
            f"certificate.json: the target's identity lacks {', '.join(missing)} (GET /about gave no supplier/product/version)"
        )
    finished = _utc(result.get("finished_at"))
    if finished is None:
        raise Refused("certificate.json: no run finish time (finished_at)")
    waivers: list[Waiver] = []
    applied = (
        ((certificate.get("waivers") or {}).get("applied")) or ((result.get("waivers") or {}).get("applied")) or []
    )
    for entry in applied:
        if not isinstance(entry, Mapping):
            continue
        try:
            expires = dt.date.fromisoformat(str(entry.get("expires")))
        except ValueError:
            raise Refused(f"certificate.json: waiver for {entry.get('requirement')} has no valid expiry date") from None
        waivers.append(
            Waiver(
                requirement=str(entry.get("requirement")),
                expires=expires,
                reference=_text(entry.get("reference"), 200),
                reason=_text(entry.get("reason"), 2000),
                scope=dict(entry.get("scope") or {}),
            )
        )
    council = result.get("council")  # recorded by certify once the trust model lands
    council_code = key.council_code if key.role == "council" else None
    if council_code is None and isinstance(council, int | str) and str(council).isdigit():
        council_code = int(council)
    counts = {str(k): int(v) for k, v in (result.get("counts") or {}).items() if isinstance(v, int)}
    return Facts(
        manifest_sha256=manifest_sha,
        content=path.read_bytes(),
        filename=filename[:300],
        run_id=_text(result.get("run_id"), 100),
        phase=str(outcome.phase or result.get("phase")),
        verdict=str(outcome.verdict or result.get("verdict")),
        assurance=assurance_level(certificate, key, getattr(outcome, "assurance", None)),
        signer=key,
        supplier=str(identity["supplier"]),
        product=str(identity["product"]),
        version=str(identity["version"]),
        target_url=_text(target.get("url"), 2000),
        builtin_reference=bool(target.get("builtin_reference")),
        faults=[str(f) for f in target.get("faults") or []],
        council_code=council_code,
        spec_version=outcome.spec_version,
        spec_sha256=outcome.spec_sha256,
        harness_version=outcome.harness_version,
        started_at=_utc(result.get("started_at")),
        finished_at=finished,
        counts=counts,
        waivers=waivers,
    )


def assurance_level(certificate: Mapping[str, Any], key: KeyInfo, verified: str | None = None) -> str:
    """The assurance level the verifier established, else the certificate's declared one, else the signer role's."""
    if verified in ("self-assessed", "witnessed"):
        return verified
    result = certificate.get("result") or {}
    for holder in (certificate, result, certificate.get("signer") or {}):
        declared = holder.get("assurance") if isinstance(holder, Mapping) else None
        if isinstance(declared, Mapping):
            declared = declared.get("level")
        if declared in ("self-assessed", "witnessed"):
            return str(declared)
    if key.role in ("certifier", "test_lab"):
        return "witnessed"
    if key.role in ("supplier", "council"):
        return "self-assessed"
    return "unknown"


def _fold(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def signer_problem(facts: Facts) -> str | None:
    """Why the signer may not sign this certificate, or None (see the module docstring)."""
    key = facts.signer
    if key.role == "supplier" and _fold(key.supplier) != _fold(facts.supplier):
        return (
            f"signed by {key.party} (supplier key {key.key_id}, for {key.supplier!r}), "
            f"but the certificate is for supplier {facts.supplier!r}"
        )
    if key.role == "council" and key.council_code is None:
        return f"signed by {key.party} (council key {key.key_id}) whose council is not recorded"
    return None


def scratch_file(content: bytes) -> Path:
    """Write ``content`` to a private temporary file and return its path (the caller removes it)."""
    fd, name = tempfile.mkstemp(prefix="ics-registry-", suffix=".zip")
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return Path(name)
