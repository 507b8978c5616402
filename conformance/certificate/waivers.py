"""Signed, scoped, self-expiring waivers issued by the certifier.

A waiver file (YAML or JSON, schema ``specs/schemas/waivers.schema.json``)::

    format: ics-conformance/waivers/1
    issued_by: DCSF ICS certification team
    issued_at: 2008-09-01
    waivers:
      - requirement: ICS-1B-NOTIF-003
        scope: {supplier: Acme, product: CareCase, versions: ">=4.2,<4.3", council: Leeds}
        reason: notification bound relaxed while the supplier's queue fix ships
        reference: DCSF-W-2008-017
        expires: 2008-12-31

The signature is **embedded**: ``ics-conformance waivers sign`` adds a ``signature``
member ``{"alg": "Ed25519", "key_id": ..., "value": <base64>}`` over the canonical JSON
(:func:`conformance.certificate.signing.canonical_json`) of the document without ``signature`` and
writes the result as JSON. One file therefore travels alone and stays readable.

:func:`load_waivers` refuses unsigned, wrongly signed, malformed and wholly expired files;
:func:`apply_waivers` turns matching FAILs into WAIVED and reports every entry it did not
apply (expired, out of scope, matched nothing).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from conformance.certificate.documents import DocumentError, load_json, load_json_or_yaml
from conformance.certificate.keyring import CERTIFIER_ROLE, KeyEntry, Keyring
from conformance.certificate.signing import canonical_json, key_id, load_private_key, load_public_key, sign, verify
from conformance.errors import UsageError
from conformance.results.result import roll_up
from conformance.results.verdicts import Verdict

WAIVERS_FORMAT = "ics-conformance/waivers/1"
#: Where the applied waiver file travels inside a bundle (listed in the manifest).
WAIVERS_IN_BUNDLE = "waivers.json"
_MAX_FILE = 4 * 1024 * 1024

__all__ = [
    "WAIVERS_IN_BUNDLE",
    "Waiver",
    "WaiverSet",
    "apply_waivers",
    "load_waivers",
    "sign_waivers",
    "signer_key_id",
    "split_signature",
    "verify_bundled_waivers",
]


@dataclass(frozen=True)
class Waiver:
    """One waiver entry."""

    requirement: str
    scope: Mapping[str, str]
    reason: str
    reference: str
    expires: dt.date
    id: str | None = None

    @property
    def label(self) -> str:
        return self.id or self.reference

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "requirement": self.requirement,
            "scope": dict(self.scope),
            "reason": self.reason,
            "reference": self.reference,
            "expires": self.expires.isoformat(),
        }
        if self.id is not None:
            data["id"] = self.id
        return data

    def out_of_scope(self, about: Mapping[str, Any], council: str | None) -> str | None:
        """Return why the target is outside this waiver's scope, or None when inside."""
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion, Version

        for key in ("supplier", "product"):
            wanted = self.scope.get(key)
            actual = about.get(key)
            if wanted is not None and (not isinstance(actual, str) or actual.casefold() != wanted.casefold()):
                return f"{key} {actual!r} is not {wanted!r}"
        versions = self.scope.get("versions")
        if versions is not None:
            actual = about.get("version")
            try:
                if not SpecifierSet(versions).contains(Version(str(actual)), prereleases=True):
                    return f"version {actual!r} is not in {versions!r}"
            except InvalidVersion:
                return f"version {actual!r} is not a PEP 440 version, so it cannot be matched against {versions!r}"
            except InvalidSpecifier:  # pragma: no cover - rejected at load time
                return f"invalid version specifier {versions!r}"
        wanted_council = self.scope.get("council")
        if wanted_council is not None and (council is None or council.casefold() != wanted_council.casefold()):
            return f"council {council!r} is not {wanted_council!r}"
        return None


@dataclass(frozen=True)
class WaiverSet:
    """A verified waiver file."""

    issued_by: str
    issued_at: str
    waivers: tuple[Waiver, ...]
    key_id: str
    sha256: str
    source: str = ""
    expired: tuple[Waiver, ...] = field(default=())
    raw: bytes = field(default=b"", repr=False)

    def record(self) -> dict[str, Any]:
        """Identity of the file, as recorded on the certificate (``path``: its copy in the bundle)."""
        return {
            "issued_by": self.issued_by,
            "issued_at": self.issued_at,
            "key_id": self.key_id,
            "sha256": self.sha256,
            "entries": len(self.waivers),
            "path": WAIVERS_IN_BUNDLE,
        }


@cache
def _schema() -> dict[str, Any]:
    from conformance.spec.resources import spec_path

    return json.loads(spec_path("schemas", "waivers.schema.json").read_text(encoding="utf-8"))


def _normalise_dates(value: Any) -> Any:
    """YAML turns unquoted dates into date objects; the signed form holds ISO strings."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _normalise_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise_dates(v) for v in value]
    return value


def _read_document(path: Path) -> tuple[dict[str, Any], bytes]:
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_FILE:
            raise UsageError(f"waivers {path}: larger than {_MAX_FILE // (1024 * 1024)} MiB")
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"waivers {path}: file not found") from exc
    except OSError as exc:
        raise UsageError(f"waivers {path}: cannot read: {exc.strerror}") from exc
    return _parse_document(raw, str(path)), raw


def _parse_document(raw: bytes, label: str) -> dict[str, Any]:
    """JSON or YAML; a repeated key anywhere is refused (tools would disagree on its value)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"waivers {label}: not UTF-8 text") from exc
    try:
        data = load_json_or_yaml(text)
    except DocumentError as exc:
        raise UsageError(f"waivers {label}: malformed: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"waivers {label}: malformed: expected a mapping with 'issued_by', 'issued_at' and 'waivers'")
    normalised: dict[str, Any] = _normalise_dates(data)
    return normalised


def _validate(document: Mapping[str, Any], path: Path) -> None:
    import jsonschema
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    validator = jsonschema.Draft202012Validator(
        _schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        pointer = "/" + "/".join(str(p) for p in first.absolute_path)
        raise UsageError(f"waivers {path}: malformed at {pointer}: {first.message}")
    for index, entry in enumerate(document["waivers"]):
        versions = entry["scope"].get("versions")
        if versions is not None:
            try:
                SpecifierSet(versions)
            except InvalidSpecifier as exc:
                raise UsageError(
                    f"waivers {path}: malformed at /waivers/{index}/scope/versions: {versions!r} is not a PEP 440 version specifier"
                ) from exc


def sign_waivers(path: Path, private_key: Path | Ed25519PrivateKey, out: Path | None = None) -> Path:
    """Validate the waiver file at ``path``, sign it and write the signed JSON to ``out``.

    ``out`` defaults to ``<path stem>.signed.json`` beside the input. Returns the path written.
    """
    path = Path(path)
    key = private_key if isinstance(private_key, Ed25519PrivateKey) else load_private_key(private_key)
    document, _ = _read_document(path)
    document.pop("signature", None)  # re-signing replaces an old signature
    document.setdefault("format", WAIVERS_FORMAT)
    _validate(document, path)
    signature = {
        "alg": "Ed25519",
        "key_id": key_id(key.public_key()),
        "value": base64.b64encode(sign(key, canonical_json(document))).decode("ascii"),
    }
    signed = dict(document, signature=signature)
    out = Path(out) if out is not None else path.with_name(f"{path.stem}.signed.json")
    try:
        out.write_text(json.dumps(signed, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from exc
    return out


def split_signature(document: dict[str, Any], label: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """``(document without its signature, signature block, raw signature bytes)``.

    Refused (:class:`UsageError`): no signature; a block that is not exactly
    ``{alg: Ed25519, key_id: <16 hex digits>, value: <base64 of 64 bytes>}``.
    """
    body = dict(document)
    signature = body.pop("signature", None)
    if signature is None:
        raise UsageError(f"waivers {label}: unsigned; the certifier signs it with 'ics-conformance waivers sign'")
    malformed = (
        f"waivers {label}: malformed signature (expected exactly alg Ed25519, a 16-hex-digit key_id and a base64 value)"
    )
    if not isinstance(signature, Mapping) or set(signature) != {"alg", "key_id", "value"}:
        raise UsageError(malformed)
    if (
        signature.get("alg") != "Ed25519"
        or not isinstance(signature.get("key_id"), str)
        or not re.fullmatch(r"[0-9a-f]{16}", signature["key_id"])
        or not isinstance(signature.get("value"), str)
    ):
        raise UsageError(malformed)
    try:
        signature_bytes = base64.b64decode(signature["value"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UsageError(f"waivers {label}: malformed signature (not base64)") from exc
    if len(signature_bytes) != 64 or base64.b64encode(signature_bytes).decode("ascii") != signature["value"]:
        raise UsageError(f"waivers {label}: malformed signature (not the base64 of a 64-byte Ed25519 signature)")
    return body, dict(signature), signature_bytes


def _verified(document: dict[str, Any], raw: bytes, label: str, key: Ed25519PublicKey, source: str) -> WaiverSet:
    """Check the signature of ``document`` with ``key`` and its shape; every entry kept (expiry judged later)."""
    body, signature, signature_bytes = split_signature(document, label)
    if signature["key_id"] != key_id(key):
        raise UsageError(
            f"waivers {label}: signed by key {signature['key_id']}, not by the certifier key {key_id(key)}"
        )
    try:
        signed_bytes = canonical_json(body)
    except ValueError as exc:
        raise UsageError(f"waivers {label}: malformed: {exc}") from exc
    if not verify(key, signed_bytes, signature_bytes):
        raise UsageError(
            f"waivers {label}: signature does not verify with the certifier key {key_id(key)} "
            "(the file was altered after signing, or signed with another key)"
        )
    _validate(body, Path(label))
    entries = tuple(
        Waiver(
            requirement=e["requirement"],
            scope=dict(e["scope"]),
            reason=e["reason"],
            reference=e["reference"],
            expires=dt.date.fromisoformat(e["expires"]),
            id=e.get("id"),
        )
        for e in body["waivers"]
    )
    stored = raw if _is_json(raw) else canonical_json(dict(body, signature=signature))
    return WaiverSet(
        issued_by=body["issued_by"],
        issued_at=body["issued_at"],
        waivers=entries,
        key_id=key_id(key),
        sha256=hashlib.sha256(stored).hexdigest(),
        source=source,
        raw=stored,
    )


def _is_json(raw: bytes) -> bool:
    try:
        load_json(raw)
    except DocumentError:
        return False
    return True


def load_waivers(path: Path, public_key: Path | Ed25519PublicKey, *, today: dt.date | None = None) -> WaiverSet:
    """Load and verify a signed waiver file; :class:`UsageError` with a message if refused.

    Refused: unreadable or malformed files (a repeated key included), unsigned files, a
    malformed signature block, a signature that is not by ``public_key`` or does not
    verify, and files whose every entry has expired by ``today`` (default: the current
    date). Individually expired entries of an otherwise valid file are kept in
    :attr:`WaiverSet.expired` and reported as refused by :func:`apply_waivers`.
    """
    path = Path(path)
    key = public_key if isinstance(public_key, Ed25519PublicKey) else load_public_key(public_key)
    document, raw = _read_document(path)
    waiver_set = _verified(document, raw, str(path), key, path.name)
    today = today or dt.date.today()
    expired = tuple(w for w in waiver_set.waivers if w.expires < today)
    if len(expired) == len(waiver_set.waivers):
        latest = max(w.expires for w in waiver_set.waivers)
        raise UsageError(
            f"waivers {path}: expired: every waiver expired by {today.isoformat()} (latest expiry {latest.isoformat()})"
        )
    return replace(waiver_set, expired=expired)


def signer_key_id(path: Path) -> str:
    """The key ID a waiver file says signed it (unchecked), to find that key in a keyring."""
    document, _ = _read_document(Path(path))
    _, signature, _ = split_signature(document, str(path))
    return str(signature["key_id"])


def verify_bundled_waivers(raw: bytes, label: str, keyring: Keyring) -> tuple[WaiverSet, KeyEntry]:
    """Re-check a waiver file carried in a bundle: strict JSON, signed by a certifier key of ``keyring``.

    Returns the file and the keyring entry of its signer; :class:`UsageError` naming
    the problem otherwise (expiry and scope are judged per entry by the caller).
    """
    try:
        document = load_json(raw)
    except DocumentError as exc:
        raise UsageError(f"waivers {label}: malformed: {exc}") from exc
    if not isinstance(document, dict):
        raise UsageError(f"waivers {label}: malformed: not a waiver file")
    _, signature, _ = split_signature(document, label)
    entry = keyring.get(signature["key_id"])
    if entry is None:
        raise UsageError(f"waivers {label}: signed by key {signature['key_id']}, which is not in the keyring")
    if entry.role != CERTIFIER_ROLE:
        raise UsageError(
            f"waivers {label}: signed by {entry.describe()}; only a {CERTIFIER_ROLE} key (the certifier) signs waivers"
        )
    return _verified(document, raw, label, entry.public_key, label), entry


def apply_waivers(
    result: Mapping[str, Any],
    waiver_set: WaiverSet,
    *,
    target_about: Mapping[str, Any],
    council: str | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Return a copy of ``result`` with matching FAILs turned into WAIVED.

    A waiver applies when it has not expired, the target (``target_about``: supplier,
    product, version from ``/about``; ``council``) is in its scope, and its requirement
    is FAIL in this run. The requirement and its failing checks become WAIVED, the phase
    verdict is recomputed with :func:`conformance.results.verdicts.phase_verdict`, and
    ``result["waivers"]`` records ``applied``, ``unmatched`` (matched no FAIL) and
    ``refused`` (expired or out of scope) entries, each with a reason.
    """
    today = today or dt.date.today()
    out = copy.deepcopy(dict(result))
    requirements = {r["id"]: r for r in out.get("requirements", [])}
    applied: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for waiver in waiver_set.waivers:
        record = waiver.to_json()
        if waiver.expires < today:
            refused.append({"waiver": record, "reason": f"expired on {waiver.expires.isoformat()}"})
            continue
        why_not = waiver.out_of_scope(target_about, council)
        if why_not is not None:
            refused.append({"waiver": record, "reason": f"out of scope: {why_not}"})
            continue
        requirement = requirements.get(waiver.requirement)
        if requirement is None:
            unmatched.append({"waiver": record, "reason": f"{waiver.requirement} is not in scope of this run"})
            continue
        verdict = requirement.get("verdict")
        if verdict == Verdict.WAIVED.value:
            unmatched.append({"waiver": record, "reason": f"{waiver.requirement} is already waived by another entry"})
            continue
        if verdict != Verdict.FAIL.value:
            unmatched.append(
                {"waiver": record, "reason": f"{waiver.requirement} is {verdict}; waivers cover FAIL only"}
            )
            continue
        requirement["verdict"] = Verdict.WAIVED.value
        requirement["waiver"] = dict(record, original_verdict=Verdict.FAIL.value)
        for check in requirement.get("checks", []):
            failed_for = check.get("failed_requirements") or []
            if check.get("verdict") == Verdict.FAIL.value and (not failed_for or waiver.requirement in failed_for):
                check["verdict"] = Verdict.WAIVED.value
                check["waived_by"] = waiver.label
        applied.append(dict(record, original_verdict=Verdict.FAIL.value))

    _recompute(out)
    previous = out.get("waivers") or {}
    out["waivers"] = {
        "file": waiver_set.record(),
        "applied": list(previous.get("applied", [])) + applied,
        "unmatched": list(previous.get("unmatched", [])) + unmatched,
        "refused": list(previous.get("refused", [])) + refused,
    }
    return out


def _recompute(result: dict[str, Any]) -> None:
    overall, counts, areas = roll_up(result.get("requirements", []), result.get("errors") or [])
    result["verdict"] = overall.value
    result["counts"] = counts
    result["areas"] = areas
