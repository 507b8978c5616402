"""Verify a bundle offline: signature, manifest, every file's hash, spec identity, result shape.

:func:`verify_bundle` checks the signature, then every listed file's size and sha256,
that no file is missing or extra, and that the spec hash is a known spec version.
Zip bundles are read in place (:mod:`conformance.certificate.archive`), never extracted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.certificate.archive import MAX_FILE_BYTES, MAX_MANIFEST_BYTES, Bad, Source, open_source, sha256_of
from conformance.certificate.bundle import MANIFEST, MANIFEST_FORMAT, REQUIRED_FILES, SIGNATURE, known_spec_digests
from conformance.certificate.signing import key_id, load_public_key, verify

__all__ = ["VerifyResult", "verify_bundle"]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify_bundle`. ``ok`` false: ``bad_file`` and ``problem`` say why."""

    ok: bool
    bundle: str
    bad_file: str | None = None
    problem: str | None = None
    verdict: str | None = None
    phase: str | None = None
    target: dict[str, Any] = field(default_factory=dict)
    harness_version: str | None = None
    spec_version: str | None = None
    spec_sha256: str | None = None
    key_id: str | None = None
    files_checked: int = 0
    waivers_applied: int = 0

    @property
    def message(self) -> str:
        if self.ok:
            return f"bundle verified: {self.files_checked} files, signature by key {self.key_id}"
        return f"{self.bad_file}: {self.problem}"

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self) | {"message": self.message}


def verify_bundle(path: Path, public_key: Path) -> VerifyResult:
    """Verify a bundle directory or zip offline against the certifier's/supplier's public key.

    Checks, in order: manifest and signature present; the signature over the exact
    manifest bytes; the manifest's form; every listed file present with the listed size
    and sha256; no file that is not listed; the spec hash is a known spec version.
    Returns the first problem as ``bad_file`` + ``problem``. Raises :class:`UsageError`
    when the key or the bundle cannot be read at all.
    """
    key = load_public_key(public_key)
    source = open_source(Path(path))
    label = Path(path).name
    try:
        return _verify(source, key, label)
    except Bad as bad:
        return VerifyResult(ok=False, bundle=label, bad_file=bad.rel, problem=bad.problem)
    finally:
        source.close()


def _verify(source: Source, key: Any, label: str) -> VerifyResult:
    names = source.names()
    if MANIFEST not in names:
        raise Bad(MANIFEST, "missing (not a bundle, or the manifest was removed)")
    if SIGNATURE not in names:
        raise Bad(SIGNATURE, "missing (the bundle is unsigned or the signature was removed)")
    manifest_bytes = source.read(MANIFEST, MAX_MANIFEST_BYTES)
    signature = source.read(SIGNATURE, 1024)
    if len(signature) != 64:
        raise Bad(SIGNATURE, f"malformed signature ({len(signature)} bytes; an Ed25519 signature has 64)")
    if not verify(key, manifest_bytes, signature):
        raise Bad(
            MANIFEST,
            f"signature does not verify with key {key_id(key)} (manifest.json or manifest.sig altered, or signed with another key)",
        )
    try:
        manifest = json.loads(manifest_bytes)
        entries = manifest["files"]
        listed = {e["path"]: (str(e["sha256"]), int(e["size"])) for e in entries}
        if manifest.get("format") != MANIFEST_FORMAT or len(listed) != len(entries):
            raise ValueError("unexpected format")
    except (ValueError, KeyError, TypeError) as exc:
        raise Bad(MANIFEST, f"signed but malformed ({exc})") from exc
    for required in REQUIRED_FILES:
        if required not in listed:
            raise Bad(required, "not listed in the manifest")
    present = set(names)
    for rel in sorted(listed):
        expected_sha, expected_size = listed[rel]
        if rel not in present:
            raise Bad(rel, "missing")
        if source.size(rel) != expected_size:
            raise Bad(rel, f"size mismatch ({source.size(rel)} bytes, manifest says {expected_size})")
        actual_sha, actual_size = sha256_of(source, rel)
        if actual_size != expected_size:
            raise Bad(rel, f"size mismatch ({actual_size} bytes, manifest says {expected_size})")
        if actual_sha != expected_sha:
            raise Bad(rel, "sha256 mismatch")
    extra = sorted(present - set(listed) - {MANIFEST, SIGNATURE})
    if extra:
        raise Bad(extra[0], "not listed in the manifest (extra file)")
    spec = manifest.get("spec") or {}
    known = known_spec_digests()
    if spec.get("sha256") not in known:
        raise Bad(MANIFEST, f"spec sha256 {str(spec.get('sha256'))[:16]}… is not a known spec version")
    if spec.get("version") != known[spec["sha256"]]:
        raise Bad(
            MANIFEST,
            f"spec version {spec.get('version')!r} does not match its hash (known as {known[spec['sha256']]!r})",
        )
    try:
        certificate = json.loads(source.read("certificate.json", MAX_FILE_BYTES))
        result = certificate["result"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Bad("certificate.json", f"not a certificate ({exc})") from exc
    if not isinstance(result, dict):
        raise Bad("certificate.json", "not a certificate (its result is not an object)")
    from conformance.results.result import result_problems

    problems = result_problems(result)
    if problems:  # signed, but not a result this harness could have written
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Bad("certificate.json", f"result does not match the published schema: {problems[0]}{more}")
    if result.get("verdict") != manifest.get("verdict") or (result.get("spec") or {}).get("sha256") != spec.get(
        "sha256"
    ):
        raise Bad("certificate.json", "verdict or spec hash differs from the manifest")
    target = result.get("target") or {}
    about = target.get("about") or {}
    return VerifyResult(
        ok=True,
        bundle=label,
        verdict=result.get("verdict"),
        phase=result.get("phase"),
        target={k: about.get(k) for k in ("supplier", "product", "version")} | {"url": target.get("url")},
        harness_version=(result.get("harness") or {}).get("version"),
        spec_version=spec.get("version"),
        spec_sha256=spec.get("sha256"),
        key_id=key_id(key),
        files_checked=len(listed),
        waivers_applied=len((certificate.get("waivers") or {}).get("applied") or []),
    )
