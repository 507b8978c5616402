"""Verify a bundle offline: what a verified bundle proves (design §8, trust model).

:func:`verify_bundle` re-derives rather than trusts. In order, it checks:

1. the bundle's form: a zip is read strictly (every header cross-checked, no renaming
   extra fields, portable unique names; :mod:`conformance.certificate.archive`), a
   directory is held to the same name rules; links and special files are refused;
2. the signature over the exact bytes of ``manifest.json``, by a key of the keyring
   (or the one ``--key``), and that the manifest names that key;
3. the manifest: strict canonical JSON, every listed file present with its size and
   sha256, no file that is not listed, a known spec version;
4. ``certificate.json``: strict canonical JSON of the current format (older formats get a
   clear message), a result of the published schema, and the same phase, verdict, run,
   target, council, spec, harness and signer as the manifest;
5. the signer: its keyring entry's role and scope cover the certificate's target
   (supplier, product) or council, and the assurance level the certificate claims is the
   one the keyring gives (*witnessed* or *self-assessed*);
6. the requirements: exactly the catalogue's in-scope requirements of that phase and
   channels, with the catalogue's level, capability and text;
7. the verdicts: each requirement's verdict re-derived from its checks and the capability
   statement, and the phase verdict and counts from those
   (:func:`conformance.results.result.derive_requirement_verdict`, :func:`~conformance.results.result.roll_up`);
8. the waivers: every WAIVED requirement has an applied waiver, every applied waiver is an
   entry of the signed waiver file carried in the bundle, signed by a department key of
   the keyring, in scope of the target and council, not expired when the run finished,
   and covering a requirement whose checks really FAILed;
9. the report: it states the sha256 of ``certificate.json`` and the certificate's verdict,
   phase, run, assurance, target and council; with the harness version that
   wrote the bundle, the report, JUnit XML, allure results and evidence are rendered
   again from the certificate and compared byte for byte (otherwise the report's first
   screen is compared with the certificate);
10. capability overrides: the differences between ``/about`` and the statement used are
    the ones recorded; one that weakens the run is refused unless accepted explicitly;
11. the department's intake expectations: supplier, product, version, maximum age;
12. a council local profile, when the certificate records one: the profile carried in the
    bundle (``local-profile.yaml``) has the recorded sha256 and validates, and the whole
    local block (deviations, local requirement and capability verdicts, the local verdict)
    is what that profile and the recorded local checks give; no local check is counted in
    the national requirements. A bundle without a profile verifies exactly as before.

The first problem found is returned as ``bad_file`` + ``problem``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html.parser
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conformance._version import __version__
from conformance.certificate.archive import MAX_FILE_BYTES, MAX_MANIFEST_BYTES, Bad, Source, open_source, sha256_of
from conformance.certificate.bundle import (
    CERTIFICATE_FORMAT,
    MANIFEST,
    MANIFEST_FORMAT,
    OLD_CERTIFICATE_FORMATS,
    REQUIRED_FILES,
    SIGNATURE,
    derived_files,
    known_spec_digests,
    manifest_facts,
    report_info,
)
from conformance.certificate.documents import DocumentError, load_json
from conformance.certificate.keyring import KeyEntry, Keyring, OutOfScope, assess
from conformance.certificate.signing import canonical_json, key_id, load_public_key, verify
from conformance.certificate.waivers import WAIVERS_IN_BUNDLE, Waiver, WaiverSet, verify_bundled_waivers
from conformance.errors import UsageError
from conformance.profiles.verdict import PROFILE_IN_BUNDLE, local_problem

__all__ = ["VerifyResult", "verify_bundle"]

_RUN_EVIDENCE = "evidence/run.json"
_FUTURE_SLACK = dt.timedelta(days=1)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify_bundle`. ``ok`` false: ``bad_file`` and ``problem`` say why."""

    ok: bool
    bundle: str
    bad_file: str | None = None
    problem: str | None = None
    verdict: str | None = None
    phase: str | None = None
    run_id: str | None = None
    target: dict[str, Any] = field(default_factory=dict)
    council: str | None = None
    #: the supplier adapter the run went through (name, version, sha256, ...), or None
    adapter: dict[str, Any] | None = None
    harness_version: str | None = None
    spec_version: str | None = None
    spec_sha256: str | None = None
    key_id: str | None = None
    signer: dict[str, Any] | None = None
    assurance: str | None = None
    files_checked: int = 0
    waivers_applied: int = 0
    waivers: list[dict[str, Any]] = field(default_factory=list)
    capabilities: dict[str, Any] = field(default_factory=dict)
    declared_capabilities: dict[str, Any] | None = None
    capability_overrides: list[dict[str, Any]] = field(default_factory=list)
    not_applicable_musts: list[dict[str, Any]] = field(default_factory=list)
    rerendered: bool = False
    notes: list[str] = field(default_factory=list)
    #: the council local profile and local verdict (None: the run had no profile)
    local_profile: dict[str, Any] | None = None

    @property
    def message(self) -> str:
        if self.ok:
            return f"bundle verified: {self.files_checked} files, signature by key {self.key_id}"
        return f"{self.bad_file}: {self.problem}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"message": self.message}


@dataclass(frozen=True)
class _Options:
    keyring: Keyring | None
    key: Ed25519PublicKey | None
    expect_supplier: str | None
    expect_product: str | None
    expect_version: str | None
    max_age_days: float | None
    allow_capability_override: bool
    now: dt.datetime


def verify_bundle(
    path: Path,
    public_key: Path | Ed25519PublicKey | None = None,
    *,
    keyring: Keyring | Path | None = None,
    expect_supplier: str | None = None,
    expect_product: str | None = None,
    expect_version: str | None = None,
    max_age_days: float | None = None,
    allow_capability_override: bool = False,
    now: dt.datetime | None = None,
) -> VerifyResult:
    """Verify a bundle directory or zip offline (see the module docstring for what, in order).

    ``keyring`` (a :class:`Keyring` or a keyring file) names the signer, its role and the
    assurance level, and is needed to re-check waivers; ``public_key`` instead (or as
    well: then the signer must be that key) checks the signature alone and leaves the
    assurance level unestablished. Returns the first problem as ``bad_file`` +
    ``problem``. Raises :class:`UsageError` when the keys or the bundle cannot be read.
    """
    if public_key is None and keyring is None:
        raise UsageError("verify needs the keyring (--keyring FILE) or the signer's public key (--key FILE)")
    key = (
        public_key
        if isinstance(public_key, Ed25519PublicKey) or public_key is None
        else load_public_key(Path(public_key))
    )
    if keyring is not None and not isinstance(keyring, Keyring):
        from conformance.certificate.keyring import load_keyring

        keyring = load_keyring(Path(keyring))
    options = _Options(
        keyring=keyring,
        key=key,
        expect_supplier=expect_supplier,
        expect_product=expect_product,
        expect_version=expect_version,
        max_age_days=max_age_days,
        allow_capability_override=allow_capability_override,
        now=now or dt.datetime.now(dt.UTC),
    )
    source = open_source(Path(path))
    label = Path(path).name
    try:
        return _Verifier(source, options, label).run()
    except Bad as bad:
        return VerifyResult(ok=False, bundle=label, bad_file=bad.rel, problem=bad.problem)
    finally:
        source.close()


def _strict_canonical(data: bytes, rel: str) -> Any:
    try:
        parsed = load_json(data)
    except DocumentError as exc:
        raise Bad(rel, f"malformed: {exc}") from exc
    try:
        canonical = canonical_json(parsed)
    except ValueError as exc:
        raise Bad(rel, f"malformed: {exc}") from exc
    if canonical != data:
        raise Bad(rel, "not in canonical JSON form (sorted keys, no spaces): not as the harness writes it")
    return parsed


class _Verifier:
    def __init__(self, source: Source, options: _Options, label: str) -> None:
        self.source, self.options, self.label = source, options, label
        self.notes: list[str] = []

    # ------------------------------------------------------------------ 1-3: form, signature, manifest

    def run(self) -> VerifyResult:
        names = self.source.names()
        if MANIFEST not in names:
            raise Bad(MANIFEST, "missing (not a bundle, or the manifest was removed)")
        if SIGNATURE not in names:
            raise Bad(SIGNATURE, "missing (the bundle is unsigned or the signature was removed)")
        manifest_bytes = self.source.read(MANIFEST, MAX_MANIFEST_BYTES)
        signature = self.source.read(SIGNATURE, 1024)
        if len(signature) != 64:
            raise Bad(SIGNATURE, f"malformed signature ({len(signature)} bytes; an Ed25519 signature has 64)")
        signer_key, entry = self._signer(manifest_bytes, signature)
        manifest = _strict_canonical(manifest_bytes, MANIFEST)
        try:
            entries = manifest["files"]
            listed = {e["path"]: (str(e["sha256"]), int(e["size"])) for e in entries}
            if manifest.get("format") != MANIFEST_FORMAT or len(listed) != len(entries):
                raise ValueError("unexpected format")
        except (ValueError, KeyError, TypeError) as exc:
            raise Bad(MANIFEST, f"signed but malformed ({exc})") from exc
        signing = manifest.get("signing")
        ident = key_id(signer_key)
        if not isinstance(signing, Mapping) or signing.get("key_id") != ident:
            raise Bad(MANIFEST, f"does not name the key that signed it ({ident})")
        for required in REQUIRED_FILES:
            if required not in listed:
                raise Bad(required, "not listed in the manifest")
        present = set(names)
        for rel in sorted(listed):
            expected_sha, expected_size = listed[rel]
            if rel not in present:
                raise Bad(rel, "missing")
            if self.source.size(rel) != expected_size:
                raise Bad(rel, f"size mismatch ({self.source.size(rel)} bytes, manifest says {expected_size})")
            actual_sha, actual_size = sha256_of(self.source, rel)
            if actual_size != expected_size:
                raise Bad(rel, f"size mismatch ({actual_size} bytes, manifest says {expected_size})")
            if actual_sha != expected_sha:
                raise Bad(rel, "sha256 mismatch")
        extra = sorted(present - set(listed) - {MANIFEST, SIGNATURE})
        if extra:
            raise Bad(extra[0], "not listed in the manifest (extra file)")
        self._refuse_old_format()
        spec = manifest.get("spec") or {}
        known = known_spec_digests()
        if spec.get("sha256") not in known:
            raise Bad(MANIFEST, f"spec sha256 {str(spec.get('sha256'))[:16]}… is not a known spec version")
        if spec.get("version") != known[spec["sha256"]]:
            raise Bad(
                MANIFEST,
                f"spec version {spec.get('version')!r} does not match its hash (known as {known[spec['sha256']]!r})",
            )
        self.manifest, self.listed = manifest, listed
        return self._certificate(ident, entry)

    def _signer(self, manifest_bytes: bytes, signature: bytes) -> tuple[Ed25519PublicKey, KeyEntry | None]:
        """The key whose signature this is: ``--key``, else whichever keyring key verifies it."""
        keyring, key = self.options.keyring, self.options.key
        if key is not None:
            if not verify(key, manifest_bytes, signature):
                raise Bad(
                    MANIFEST,
                    f"signature does not verify with key {key_id(key)} (manifest.json or manifest.sig altered, or signed with another key)",
                )
            entry = keyring.get(key_id(key)) if keyring is not None else None
            if keyring is not None and entry is None:
                raise Bad(SIGNATURE, f"signed by key {key_id(key)}, which is not in the keyring")
            return key, entry
        assert keyring is not None
        for candidate in keyring.entries:
            if verify(candidate.public_key, manifest_bytes, signature):
                return candidate.public_key, candidate
        claimed = None
        try:
            claimed = ((load_json(manifest_bytes) or {}).get("signing") or {}).get("key_id")
        except (DocumentError, AttributeError):
            pass
        if claimed is not None and keyring.get(str(claimed)) is None:
            raise Bad(SIGNATURE, f"signed by key {claimed}, which is not in the keyring (an unknown signer)")
        raise Bad(
            MANIFEST,
            "signature does not verify with any key in the keyring (manifest.json or manifest.sig altered, or signed by an unknown key)",
        )

    # ------------------------------------------------------------------ 4-5: certificate, signer

    def _refuse_old_format(self) -> None:
        """A certificate written before the trust model gets a clear message, before anything it lacks is missed."""
        try:
            fmt = load_json(self.source.read("certificate.json", MAX_FILE_BYTES)).get("format")
        except (DocumentError, AttributeError):
            return
        if fmt in OLD_CERTIFICATE_FORMATS:
            raise Bad(
                "certificate.json",
                f"format {fmt} was written before the trust checks (no signer record, waiver file not carried, "
                f"report not bound to the certificate): ics-conformance {__version__} cannot vouch for it; certify again",
            )

    def _certificate(self, ident: str, entry: KeyEntry | None) -> VerifyResult:
        certificate_bytes = self.source.read("certificate.json", MAX_FILE_BYTES)
        certificate = _strict_canonical(certificate_bytes, "certificate.json")
        if not isinstance(certificate, dict) or certificate.get("format") != CERTIFICATE_FORMAT:
            raise Bad("certificate.json", f"not a certificate (format {CERTIFICATE_FORMAT!r} expected)")
        if set(certificate) != {"format", "result", "waivers", "signer"}:
            raise Bad("certificate.json", f"unexpected members {sorted(set(certificate))}")
        result = certificate["result"]
        if not isinstance(result, dict):
            raise Bad("certificate.json", "not a certificate (its result is not an object)")
        from conformance.results.result import result_problems

        problems = result_problems(result)
        if problems:  # signed, but not a result this harness could have written
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise Bad("certificate.json", f"result does not match the published schema: {problems[0]}{more}")
        if certificate["waivers"] != result.get("waivers"):
            raise Bad("certificate.json", "its waivers differ from those its result records")
        signer = certificate["signer"]
        if not isinstance(signer, dict) or set(signer) != {"key_id", "party", "role", "assurance"}:
            raise Bad("certificate.json", "malformed signer record (key_id, party, role, assurance expected)")
        facts = manifest_facts(result, signer)
        for name, value in facts.items():
            if self.manifest.get(name) != value:
                raise Bad(
                    "certificate.json",
                    f"{name} differs between manifest.json ({self.manifest.get(name)!r}) and certificate.json ({value!r})",
                )
        if "adapter" in self.manifest and "adapter" not in facts:
            raise Bad("certificate.json", "records no adapter, but manifest.json names one")
        if signer["key_id"] != ident:
            raise Bad("certificate.json", f"names signer key {signer['key_id']}, but key {ident} signed the bundle")
        self.certificate, self.result, self.certificate_bytes = certificate, result, certificate_bytes
        about = (result.get("target") or {}).get("about") or {}
        self.about = about if isinstance(about, Mapping) else {}
        assurance = self._assurance(entry, signer)
        self._catalogue()
        self._verdicts()
        waivers = self._waivers()
        self._report()
        overrides = self._capabilities()
        self._intake()
        local = self._local_profile()
        target = result.get("target") or {}
        statement = result.get("capabilities") or {}
        declared = self.about.get("capabilities")
        return VerifyResult(
            ok=True,
            bundle=self.label,
            verdict=result.get("verdict"),
            phase=result.get("phase"),
            run_id=result.get("run_id"),
            target={k: self.about.get(k) for k in ("supplier", "product", "version")} | {"url": target.get("url")},
            council=result.get("council"),
            adapter=dict(result["adapter"]) if isinstance(result.get("adapter"), Mapping) else None,
            harness_version=(result.get("harness") or {}).get("version"),
            spec_version=(result.get("spec") or {}).get("version"),
            spec_sha256=(result.get("spec") or {}).get("sha256"),
            key_id=ident,
            signer=entry.record() if entry is not None else dict(signer),
            assurance=assurance,
            files_checked=len(self.listed),
            waivers_applied=len(waivers),
            waivers=waivers,
            capabilities=dict(statement),
            declared_capabilities=dict(declared) if isinstance(declared, Mapping) else None,
            capability_overrides=overrides,
            not_applicable_musts=[
                {"id": r["id"], "capability": r.get("capability")}
                for r in result["requirements"]
                if r["level"] == "MUST" and r["verdict"] == "NOT_APPLICABLE"
            ],
            rerendered=self.rerendered,
            notes=self.notes,
            local_profile=local,
        )

    def _assurance(self, entry: KeyEntry | None, signer: Mapping[str, Any]) -> str | None:
        claimed = signer.get("assurance")
        if entry is None:
            self.notes.append(
                f"assurance not established: no keyring names the signer (the certificate claims {claimed}); "
                "verify with --keyring to check who signed and for whom"
            )
            return None
        try:
            level = assess(
                entry,
                supplier=self.about.get("supplier"),
                product=self.about.get("product"),
                council=self.result.get("council"),
            )
        except OutOfScope as exc:
            raise Bad(SIGNATURE, f"signer out of scope: {exc}") from None
        if signer.get("party") is not None and (signer.get("party"), signer.get("role")) != (entry.party, entry.role):
            raise Bad(
                "certificate.json",
                f"names the signer {signer.get('party')!r} ({signer.get('role')}), but the keyring gives key "
                f"{entry.key_id} to {entry.describe()}",
            )
        if claimed != level:
            raise Bad(
                "certificate.json",
                f"claims assurance {claimed!r}, but it is signed by {entry.describe()}, which makes it {level!r}"
                + (
                    " (certify again with --keyring so the certificate records it)"
                    if signer.get("party") is None
                    else ""
                ),
            )
        return level

    # ------------------------------------------------------------------ 6-7: catalogue, verdicts

    def _catalogue(self) -> None:
        from conformance.spec.catalogue import load_catalogue, spec_digest

        self.catalogue: dict[str, Any] = {}
        result = self.result
        if (result.get("spec") or {}).get("sha256") != spec_digest():
            self.notes.append("spec is a known older version: requirements not compared with its catalogue")
            return
        catalogue = load_catalogue()
        try:
            in_scope = catalogue.in_scope(str(result["phase"]), channels=result["channels"])
        except UsageError as exc:
            raise Bad("certificate.json", f"phase or channels not judgeable: {exc}") from None
        wanted = [r.id for r in in_scope]
        recorded = [r["id"] for r in result["requirements"]]
        if sorted(wanted) != sorted(recorded) or len(set(recorded)) != len(recorded):
            missing = sorted(set(wanted) - set(recorded))
            extra = sorted(set(recorded) - set(wanted))
            detail = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"not in scope {', '.join(extra)}" if extra else "",
                    "listed twice" if not missing and not extra else "",
                )
                if part
            )
            raise Bad("certificate.json", f"requirements are not the catalogue's for phase {result['phase']}: {detail}")
        for req in in_scope:
            record = next(r for r in result["requirements"] if r["id"] == req.id)
            for name in ("title", "statement", "level", "phase", "area", "channel", "capability"):
                if record.get(name) != getattr(req, name):
                    raise Bad(
                        "certificate.json",
                        f"requirement {req.id}: {name} {record.get(name)!r} is not the catalogue's {getattr(req, name)!r}",
                    )
            self.catalogue[req.id] = req

    def _verdicts(self) -> None:
        from conformance.results.result import CheckResult, derive_requirement_verdict, roll_up
        from conformance.results.verdicts import Verdict
        from conformance.spec.capabilities import CapabilityStatement, applies

        result = self.result
        statement = CapabilityStatement(dict(result.get("capabilities") or {}))
        finals: list[dict[str, Any]] = []
        self.waived_checks: dict[str, set[str]] = {}
        for record in result["requirements"]:
            rid = record["id"]
            checks = []
            for raw in record["checks"]:
                try:
                    check = CheckResult.from_json(raw)
                except (KeyError, TypeError, ValueError) as exc:
                    raise Bad(
                        "certificate.json", f"requirement {rid}: malformed check {raw.get('id')!r} ({exc})"
                    ) from None
                if rid not in check.requirements:
                    raise Bad("certificate.json", f"check {check.id} is listed under {rid} but does not name it")
                if check.verdict is Verdict.WAIVED:
                    self.waived_checks.setdefault(check.id, set()).add(str(raw.get("waived_by")))
                    check = dataclasses.replace(check, verdict=Verdict.FAIL)  # what it was before a waiver
                checks.append(check)
            capability = record.get("capability")
            try:
                requirement = self.catalogue.get(rid)
                applicable = (
                    applies(requirement, statement)
                    if requirement is not None
                    else capability is None or statement.has(capability)
                )
            except ValueError as exc:
                raise Bad("certificate.json", f"requirement {rid}: {exc}") from None
            original = derive_requirement_verdict(rid, checks, applicable=applicable)
            recorded = record["verdict"]
            if recorded == Verdict.WAIVED.value:
                if original is not Verdict.FAIL:
                    raise Bad(
                        "certificate.json",
                        f"requirement {rid} is WAIVED, but its checks give {original.value}: a waiver covers a FAIL only",
                    )
                final = Verdict.WAIVED
            else:
                final = original
            if recorded != final.value:
                raise Bad("certificate.json", f"requirement {rid} says {recorded}, but its checks give {final.value}")
            finals.append({"level": record["level"], "area": record["area"], "verdict": final.value, "id": rid})
        self._same_checks_everywhere()
        overall, counts, areas = roll_up(finals, result.get("errors") or [])
        if result["verdict"] != overall.value:
            failing = [f["id"] for f in finals if f["level"] == "MUST" and f["verdict"] == "FAIL"]
            why = f" ({len(failing)} MUST FAIL: {', '.join(failing)})" if failing else ""
            raise Bad(
                "certificate.json",
                f"phase verdict says {result['verdict']}, but its requirement verdicts give {overall.value}{why}",
            )
        if result["counts"] != counts or result["areas"] != areas:
            raise Bad("certificate.json", "verdict counts (overall or per area) do not match the requirement verdicts")
        self._peer_verdicts()

    def _peer_verdicts(self) -> None:
        """A pair run (phase 1C): the peer's verdicts are re-derived too, and no check changed sides."""
        from conformance.results.result import CheckResult, derive_requirement_verdict, roll_up
        from conformance.spec.capabilities import CapabilityStatement, applies

        if any(c.get("side") == "peer" for r in self.result["requirements"] for c in r["checks"]):
            raise Bad("certificate.json", "a check of the peer is counted for the target")
        peer = self.result.get("peer")
        if peer is None:
            return
        statement = CapabilityStatement(dict(peer.get("capabilities") or {}))
        finals = []
        for record in peer["requirements"]:
            rid = record["id"]
            checks = [CheckResult.from_json(raw) for raw in record["checks"]]
            if any(c.side != "peer" or rid not in c.requirements for c in checks):
                raise Bad("certificate.json", f"peer requirement {rid}: a check not of the peer, or not naming it")
            requirement = self.catalogue.get(rid)
            if requirement is None:
                raise Bad("certificate.json", f"peer requirement {rid} is not in the catalogue")
            derived = derive_requirement_verdict(rid, checks, applicable=applies(requirement, statement))
            if record["verdict"] != derived.value:
                raise Bad(
                    "certificate.json",
                    f"peer requirement {rid} says {record['verdict']}, its checks give {derived.value}",
                )
            finals.append({"level": record["level"], "area": record["area"], "verdict": derived.value})
        overall, counts, _ = roll_up(finals)
        if peer["verdict"] != overall.value or peer["counts"] != counts:
            raise Bad(
                "certificate.json", f"the peer's verdict says {peer['verdict']}, its requirements give {overall.value}"
            )

    def _same_checks_everywhere(self) -> None:
        """A check is one record, listed under every in-scope requirement it names (a waiver may mark one copy WAIVED)."""
        in_scope = {r["id"] for r in self.result["requirements"]}
        seen: dict[str, tuple[bytes, str, set[str]]] = {}
        listed: dict[str, set[str]] = {}
        for record in self.result["requirements"]:
            for raw in record["checks"]:
                check_id = str(raw["id"])
                normal = {k: v for k, v in raw.items() if k != "waived_by"}
                if normal.get("verdict") == "WAIVED":
                    normal["verdict"] = "FAIL"
                form = canonical_json(normal)
                first = seen.setdefault(check_id, (form, record["id"], {str(r) for r in raw["requirements"]}))
                if first[0] != form:
                    raise Bad(
                        "certificate.json",
                        f"check {check_id} is recorded differently under {first[1]} and {record['id']}",
                    )
                listed.setdefault(check_id, set()).add(record["id"])
        for check_id, (_, _, names) in sorted(seen.items()):
            missing = sorted((names & in_scope) - listed[check_id])
            if missing:
                raise Bad("certificate.json", f"check {check_id} names {', '.join(missing)} but is not listed under it")

    # ------------------------------------------------------------------ 8: waivers

    def _waivers(self) -> list[dict[str, Any]]:
        result = self.result
        record = result.get("waivers") or {}
        applied = [a for a in record.get("applied") or []]
        file_record = record.get("file")
        waived = {r["id"]: r for r in result["requirements"] if r["verdict"] == "WAIVED"}
        by_requirement: dict[str, dict[str, Any]] = {}
        for entry in applied:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("requirement"), str):
                raise Bad("certificate.json", "malformed applied waiver entry")
            if entry["requirement"] in by_requirement:
                raise Bad("certificate.json", f"two waivers applied to {entry['requirement']}")
            by_requirement[entry["requirement"]] = dict(entry)
        for rid in sorted(set(waived) | set(by_requirement)):
            if rid not in by_requirement:
                raise Bad("certificate.json", f"requirement {rid} is WAIVED without an applied waiver")
            if rid not in waived:
                raise Bad("certificate.json", f"waiver for {rid} is listed as applied, but {rid} is not WAIVED")
            if waived[rid].get("waiver") != by_requirement[rid]:
                raise Bad("certificate.json", f"requirement {rid}: its waiver differs from the applied waiver entry")
        labels = {str(e.get("id") or e.get("reference")) for e in by_requirement.values()}
        for check_id, waived_by in sorted(self.waived_checks.items()):
            if not waived_by <= labels:
                raise Bad(
                    "certificate.json", f"check {check_id} is WAIVED by {sorted(waived_by)}, which no applied waiver is"
                )
        carried = WAIVERS_IN_BUNDLE in self.listed
        if not file_record:
            if applied:
                raise Bad("certificate.json", "waivers are applied, but no waiver file is recorded or carried")
            if carried:
                raise Bad(WAIVERS_IN_BUNDLE, "carried in the bundle, but the certificate records no waiver file")
            return []
        if not isinstance(file_record, Mapping) or file_record.get("path") != WAIVERS_IN_BUNDLE or not carried:
            raise Bad(
                WAIVERS_IN_BUNDLE,
                "the signed waiver file the certificate applies is not carried in the bundle, so its waivers cannot be re-checked",
            )
        raw = self.source.read(WAIVERS_IN_BUNDLE, MAX_FILE_BYTES)
        if hashlib.sha256(raw).hexdigest() != file_record.get("sha256"):
            raise Bad(WAIVERS_IN_BUNDLE, "is not the waiver file the certificate records (sha256 differs)")
        if self.options.keyring is None:
            raise Bad(
                WAIVERS_IN_BUNDLE,
                "waivers are applied: re-checking them against the department's key needs the keyring (--keyring)",
            )
        try:
            waiver_set, issuer = verify_bundled_waivers(raw, WAIVERS_IN_BUNDLE, self.options.keyring)
        except UsageError as exc:
            raise Bad(WAIVERS_IN_BUNDLE, str(exc).removeprefix(f"waivers {WAIVERS_IN_BUNDLE}: ")) from None
        for name in ("issued_by", "issued_at", "key_id", "sha256"):
            if file_record.get(name) != getattr(waiver_set, name):
                raise Bad("certificate.json", f"waiver file record: {name} differs from the carried waiver file")
        return [self._waiver(entry, waiver_set, issuer) for entry in applied]

    def _waiver(self, entry: Mapping[str, Any], waiver_set: WaiverSet, issuer: KeyEntry) -> dict[str, Any]:
        label = f"waiver {entry.get('reference')!r} for {entry.get('requirement')}"
        if entry.get("original_verdict") != "FAIL":
            raise Bad("certificate.json", f"{label}: covers a {entry.get('original_verdict')}, not a FAIL")
        signed = {k: v for k, v in entry.items() if k != "original_verdict"}
        match: Waiver | None = next((w for w in waiver_set.waivers if w.to_json() == signed), None)
        if match is None:
            raise Bad(
                WAIVERS_IN_BUNDLE,
                f"{label} is applied on the certificate but is not an entry of the signed waiver file (invented or altered)",
            )
        finished = _timestamp(self.result.get("finished_at"))
        if finished is None:
            raise Bad("certificate.json", "finished_at is not a timestamp, so waiver expiry cannot be judged")
        if match.expires < finished.date():
            raise Bad(
                WAIVERS_IN_BUNDLE,
                f"{label} expired on {match.expires.isoformat()}, before the run finished ({finished.date().isoformat()})",
            )
        why_not = match.out_of_scope(self.about, self.result.get("council"))
        if why_not is not None:
            raise Bad(WAIVERS_IN_BUNDLE, f"{label} is out of scope for this certificate: {why_not}")
        return dict(signed, signed_by=issuer.record())

    # ------------------------------------------------------------------ 9: report and derived files

    def _report(self) -> None:
        self.rerendered = False
        report = self.source.read("report.html", MAX_FILE_BYTES)
        facts = _report_facts(report)
        certificate_sha = hashlib.sha256(self.certificate_bytes).hexdigest()
        stated = facts.get("ics-certificate-sha256")
        if not stated:
            raise Bad("report.html", "does not state the sha256 of the certificate it renders")
        if stated != certificate_sha:
            raise Bad(
                "report.html",
                f"renders another certificate (states sha256 {stated[:16]}…, certificate.json is {certificate_sha[:16]}…)",
            )
        from conformance.certificate.report import _verdict_label, target_identity
        from conformance.results.result import adapter_text

        result, signer = self.result, self.certificate["signer"]
        first_screen = {
            "ics-verdict": result.get("verdict"),
            "ics-phase": result.get("phase"),
            "ics-run-id": result.get("run_id") or "",
            "ics-assurance": signer.get("assurance") if signer else "unsigned",
            "ics-target-sha256": target_identity(result),
            "ics-adapter": adapter_text(result) or None,
        }
        local = result.get("local_profile")
        if isinstance(local, Mapping):  # the local verdict stands beside the national one on the first screen
            first_screen["ics-local-verdict"] = local.get("verdict")
            first_screen["ics-local-profile-sha256"] = local.get("sha256")
        for name, value in first_screen.items():
            if facts.get(name) != value:
                what = {"ics-target-sha256": "another target or council", "ics-adapter": "another adapter"}.get(
                    name, name.removeprefix("ics-")
                )
                raise Bad("report.html", f"states {what} {facts.get(name)!r}, certificate.json says {value!r}")

        shown = facts.get("#phase-verdict", "")
        if not shown.startswith(_verdict_label(result.get("verdict"))):
            raise Bad(
                "report.html",
                f"its first screen shows {shown.split(chr(10))[0]!r}, certificate.json says {result.get('verdict')}",
            )
        written_by = (result.get("harness") or {}).get("version")
        if written_by != __version__:
            self.notes.append(
                f"bundle written by ics-conformance {written_by}, this is {__version__}: verdicts re-derived and the "
                "report's first screen compared, but report.html, junit.xml, allure-results/ and evidence/ not re-rendered"
            )
            return
        extra: list[Mapping[str, Any]] = []
        if _RUN_EVIDENCE in self.listed:
            try:
                run = load_json(self.source.read(_RUN_EVIDENCE, MAX_FILE_BYTES))
                extra = [e for e in run["entries"] if isinstance(e, Mapping)]
            except (DocumentError, KeyError, TypeError) as exc:
                raise Bad(_RUN_EVIDENCE, f"malformed ({exc})") from None
        redaction = self.manifest.get("redaction") or {}
        info = report_info(
            str(self.manifest.get("bundle")),
            self.manifest["signing"]["key_id"],
            str(redaction.get("policy") if isinstance(redaction, Mapping) else None),
            self.certificate_bytes,
            signer,
        )
        expected = derived_files(result, extra, info, junit="junit.xml" in self.listed)
        own = {"certificate.json", WAIVERS_IN_BUNDLE, PROFILE_IN_BUNDLE, "report.pdf"}
        for rel in sorted(self.listed):
            if rel not in expected and rel not in own:
                raise Bad(rel, "is not a file this harness writes from the certificate (not re-derivable)")
        for rel, data in sorted(expected.items()):
            if rel not in self.listed:
                raise Bad(rel, "missing: certificate.json renders to it, but the manifest does not list it")
            if self.source.read(rel, MAX_FILE_BYTES) != data:
                raise Bad(
                    rel, "is not what certificate.json renders to (rendered again from the certificate and compared)"
                )
        self.rerendered = True
        if "report.pdf" in self.listed:
            self.notes.append("report.pdf is a print of report.html; only its hash is checked")

    # ------------------------------------------------------------------ 10-11: capabilities, intake

    def _capabilities(self) -> list[dict[str, Any]]:
        from conformance.spec.capabilities import differences

        result = self.result
        declared = self.about.get("capabilities")
        derived = differences(declared, result.get("capabilities") or {}) if isinstance(declared, Mapping) else None
        if "capability_overrides" in result and result["capability_overrides"] != derived:
            raise Bad(
                "certificate.json",
                "capability_overrides do not match the difference between the target's /about and the statement used",
            )
        if "capability_overrides" not in result:
            self.notes.append("certificate records no capability_overrides (older result); derived from /about")
        weakened = [d for d in derived or [] if d["weakens"]]
        if weakened and not self.options.allow_capability_override:
            off = {d["capability"] for d in weakened}
            judged = [
                r["id"]
                for r in result["requirements"]
                if r["verdict"] == "NOT_APPLICABLE" and r["level"] == "MUST" and r.get("capability") in off
            ]
            listed = ", ".join(f"{d['capability']} (declared {d['declared']}, used {d['used']})" for d in weakened)
            because = f"; MUST requirements NOT_APPLICABLE because of it: {', '.join(judged)}" if judged else ""
            raise Bad(
                "certificate.json",
                f"capability override: the run weakened what the target declares in /about: {listed}{because}. "
                "Accept it explicitly with --allow-capability-override",
            )
        return list(derived or [])

    def _local_profile(self) -> dict[str, Any] | None:
        """Step 12: the local block is what the carried profile and the recorded local checks give."""
        block = self.result.get("local_profile")
        carried = PROFILE_IN_BUNDLE in self.listed
        if block is None:
            if carried:
                raise Bad(PROFILE_IN_BUNDLE, "carried in the bundle, but the certificate records no local profile")
            return None
        if not carried:
            raise Bad(
                PROFILE_IN_BUNDLE,
                "the certificate records a local profile, but the bundle does not carry it, so the local verdict "
                "cannot be re-derived",
            )
        local_ids = {str(r.get("id")) for r in block.get("requirements") or []}
        for record in self.result["requirements"]:
            for check in record["checks"]:
                if set(check.get("requirements") or ()) & local_ids:
                    raise Bad("certificate.json", f"local check {check.get('id')} is counted in the national verdict")
        problem = local_problem(block, self.source.read(PROFILE_IN_BUNDLE, MAX_FILE_BYTES), self.result)
        if problem is not None:
            raise Bad(PROFILE_IN_BUNDLE if "carried profile" in problem else "certificate.json", problem)
        return {k: block.get(k) for k in ("council", "code", "file", "sha256", "verdict", "deviations")}

    def _intake(self) -> None:
        options = self.options
        for name, wanted in (
            ("supplier", options.expect_supplier),
            ("product", options.expect_product),
            ("version", options.expect_version),
        ):
            if wanted is None:
                continue
            actual = self.about.get(name)
            same = (
                actual == wanted
                if name == "version"
                else isinstance(actual, str) and actual.casefold() == wanted.casefold()
            )
            if not same:
                raise Bad("certificate.json", f"{name} is {actual!r}, expected {wanted!r} (--expect-{name})")
        if options.max_age_days is not None:
            finished = _timestamp(self.result.get("finished_at"))
            if finished is None:
                raise Bad("certificate.json", "finished_at is not a timestamp, so its age cannot be judged")
            age = options.now - finished
            if age > dt.timedelta(days=options.max_age_days):
                raise Bad(
                    "certificate.json",
                    f"the run finished on {finished.isoformat()}, {age.days} days ago: older than --max-age {options.max_age_days:g} days",
                )
            if age < -_FUTURE_SLACK:
                raise Bad("certificate.json", f"the run claims to finish in the future ({finished.isoformat()})")


def _timestamp(value: Any) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class _FirstScreen(html.parser.HTMLParser):
    """The report's ``ics-*`` meta elements and the text of its phase verdict (repeated facts refused)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts: dict[str, str] = {}
        self.repeated: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and (values.get("name") or "").startswith("ics-"):
            self._set(str(values["name"]), values.get("content") or "")
        if self._depth:
            self._depth += 1
        elif values.get("id") == "phase-verdict":
            if "#phase-verdict" in self.facts:
                self.repeated = "#phase-verdict"
            self.facts["#phase-verdict"] = ""
            self._depth = 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and (values.get("name") or "").startswith("ics-"):
            self._set(str(values["name"]), values.get("content") or "")

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.facts["#phase-verdict"] += data

    def _set(self, name: str, value: str) -> None:
        if name in self.facts and self.facts[name] != value:
            self.repeated = name
        self.facts[name] = value


def _report_facts(report: bytes) -> dict[str, str]:
    parser = _FirstScreen()
    try:
        parser.feed(report.decode("utf-8"))
        parser.close()
    except UnicodeDecodeError as exc:
        raise Bad("report.html", "not UTF-8") from exc
    if parser.repeated:
        raise Bad("report.html", f"states {parser.repeated} twice, differently")
    facts = dict(parser.facts)
    facts["#phase-verdict"] = " ".join(facts.get("#phase-verdict", "").split())
    return facts
