"""The certification bundle: write it (verified by :mod:`conformance.certificate.verify`).

A bundle is a directory ``<name>/`` and the same content as ``<name>.zip`` (one top-level
folder ``<name>/``)::

    certificate.json   the result (design §7), redacted, checks sorted, in canonical JSON,
                       wrapped as {"format": "ics-conformance/certificate/2", "result": ...,
                       "waivers": ..., "signer": {key_id, party, role, assurance} | null}
    waivers.json       the signed waiver file applied (exact bytes), when there is one
    local-profile.yaml the council local profile the run judged (exact bytes), when there is one
    report.html        the human report (self-contained); states the certificate's sha256
    report.pdf         only with pdf=True (headless Chromium)
    junit.xml          one testcase per (requirement, check); names carry requirement IDs
    allure-results/    one allure result per check (+ JSON attachments of its evidence)
    evidence/          redacted evidence, one JSON file per check that kept any
    manifest.json      sha256 and size of every file above, redaction policy, spec and
                       harness versions, and the certificate's phase, verdict, run, target,
                       council and signer; canonical JSON
    manifest.sig       raw 64-byte Ed25519 signature over the exact bytes of manifest.json

Everything but certificate.json, waivers.json, local-profile.yaml and report.pdf is a function of the
certificate (:func:`derived_files`), so ``verify`` renders it again and compares.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import stat
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from conformance._version import __version__
from conformance.certificate.keyring import Keyring
from conformance.certificate.redaction import Redactor
from conformance.certificate.signing import canonical_json, key_id, load_private_key, sign
from conformance.certificate.waivers import WAIVERS_IN_BUNDLE
from conformance.errors import UsageError
from conformance.profiles.verdict import PROFILE_IN_BUNDLE

__all__ = [
    "Bundle",
    "CERTIFICATE_FORMAT",
    "KNOWN_SPEC_DIGESTS",
    "MANIFEST_FORMAT",
    "OLD_CERTIFICATE_FORMATS",
    "derived_files",
    "manifest_facts",
    "known_spec_digests",
    "report_info",
    "signer_record",
    "write_bundle",
]

CERTIFICATE_FORMAT = "ics-conformance/certificate/2"
#: Certificates before the trust model (no signer record, waiver file not carried, report not bound).
OLD_CERTIFICATE_FORMATS = ("ics-conformance/certificate/1",)
MANIFEST_FORMAT = "ics-conformance/manifest/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
REQUIRED_FILES = ("certificate.json", "report.html")
REQUIREMENT_LINK = "../report.html#req-{id}"  # from an allure report generated inside the bundle

#: Released spec versions: sha256 of the spec data -> spec version. The spec of this
#: installation (``catalogue.spec_digest()``) is always known as well; add each released
#: digest here when a spec version is published so older bundles keep verifying.
KNOWN_SPEC_DIGESTS: dict[str, str] = {}

_SLUG = re.compile(r"[^a-z0-9]+")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


# --------------------------------------------------------------------------- spec identity


@cache
def _current_spec() -> tuple[str, str]:
    """``(version, sha256)`` of the spec data shipped with this installation."""
    from conformance.spec.catalogue import load_catalogue, spec_digest

    return load_catalogue().spec_version, spec_digest()


def known_spec_digests() -> dict[str, str]:
    """Every spec digest this verifier accepts, mapped to its spec version."""
    version, digest = _current_spec()
    return {**KNOWN_SPEC_DIGESTS, digest: version}


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Bundle:
    """A bundle written by :func:`write_bundle`."""

    name: str
    directory: Path
    zip_path: Path
    manifest: dict[str, Any]
    files: tuple[str, ...]
    signed: bool
    key_id: str | None
    verdict: str
    phase: str


def _slug(value: Any, limit: int = 32) -> str:
    slug = _SLUG.sub("-", str(value or "").lower()).strip("-")[:limit].strip("-")
    return slug


def _bundle_name(result: Mapping[str, Any]) -> str:
    about = (result.get("target") or {}).get("about") or {}
    parts = ["ics", _slug(result.get("phase"), 8) or "phase"]
    for key in ("supplier", "product", "version"):
        slug = _slug(about.get(key))
        if slug:
            parts.append(slug)
    stamp = re.sub(r"[^0-9TZ]", "", str(result.get("finished_at") or ""))[:16]
    parts.append(stamp or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    return "-".join(parts)


def _check_sort_key(check: Mapping[str, Any]) -> str:
    return str(check.get("id", ""))


def _redacted_result(result: Mapping[str, Any], redactor: Redactor) -> dict[str, Any]:
    """Deep copy with evidence, reproduction commands and URLs redacted, checks sorted."""
    out = copy.deepcopy(dict(result))
    raw_peer = out.get("peer")
    peer: dict[str, Any] = raw_peer if isinstance(raw_peer, dict) else {}
    raw_local = out.get("local_profile")
    local: dict[str, Any] = raw_local if isinstance(raw_local, dict) else {}
    for requirement in [
        *(out.get("requirements") or []),
        *(peer.get("requirements") or []),
        *(local.get("requirements") or []),
    ]:
        checks = requirement.get("checks") or []
        for check in checks:
            check["evidence"] = [redactor.evidence(e) for e in check.get("evidence") or [] if isinstance(e, Mapping)]
            for key in ("reproduce", "message"):
                if isinstance(check.get(key), str):
                    check[key] = redactor.text(check[key])
            if "example" in check:
                check["example"] = redactor.body(check["example"])
            if "details" in check:  # structured failure details: redacted like evidence
                check["details"] = redactor.details(check["details"])
        requirement["checks"] = sorted(checks, key=_check_sort_key)
    for key in ("command",):
        if isinstance(out.get(key), str):
            out[key] = redactor.text(out[key])
    for target in (out.get("target"), peer.get("target")):
        if isinstance(target, dict) and isinstance(target.get("url"), str):
            target["url"] = redactor.text(target["url"])
    if out.get("errors"):
        out["errors"] = [redactor.text(e) if isinstance(e, str) else e for e in out["errors"]]
    if local.get("errors"):
        local["errors"] = [redactor.text(e) if isinstance(e, str) else e for e in local["errors"]]
    return out


def _evidence_name(check_id: str) -> str:
    digest = hashlib.sha256(check_id.encode("utf-8")).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", check_id).strip("._")[:80]
    return f"evidence/{slug or 'check'}-{digest}.json"


def _evidence_files(result: Mapping[str, Any], extra: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    by_check: dict[str, dict[str, Any]] = {}
    peer = result.get("peer") if isinstance(result.get("peer"), Mapping) else {}
    local = result.get("local_profile") if isinstance(result.get("local_profile"), Mapping) else {}
    for requirement in [
        *(result.get("requirements") or []),
        *(peer.get("requirements") or []),  # type: ignore[union-attr]  # a Mapping when set
        *(local.get("requirements") or []),  # type: ignore[union-attr]  # a Mapping when set
    ]:
        for check in requirement.get("checks") or []:
            entries = check.get("evidence") or []
            if not entries:
                continue
            cid = str(check.get("id"))
            record = by_check.setdefault(
                cid,
                {
                    "check": cid,
                    "kind": check.get("kind"),
                    "requirements": [],
                    "verdict": check.get("verdict"),
                    "entries": entries,
                },
            )
            record["requirements"].append(requirement.get("id"))
    for cid, record in sorted(by_check.items()):
        files[_evidence_name(cid)] = _pretty_json(record)
    if extra:
        files["evidence/run.json"] = _pretty_json({"check": "run", "entries": list(extra)})
    return files


def _pretty_json(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8") + b"\n"


_JUNIT_STATUS = {
    "FAIL": "failure",
    "ERROR": "error",
    "SKIPPED": "skipped",
    "NOT_APPLICABLE": "skipped",
    "NOT_RUN": "skipped",
    "WAIVED": "skipped",
}
_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: Any) -> str:
    return _XML_INVALID.sub("\ufffd", "" if value is None else str(value))


def _check_verdict_for(check: Mapping[str, Any], requirement_id: str) -> str:
    verdict = str(check.get("verdict"))
    failed_for = check.get("failed_requirements") or []
    if verdict == "FAIL" and failed_for and requirement_id not in failed_for:
        return "NOT_RUN"  # this check's failure was attributed to other requirements
    return verdict


def _junit_xml(result: Mapping[str, Any]) -> bytes:
    import xml.etree.ElementTree as ET

    phase = _xml_text(result.get("phase"))
    suites = ET.Element("testsuites", name=f"ICS conformance phase {phase}")
    by_area: dict[str, list[Mapping[str, Any]]] = {}
    for requirement in result.get("requirements") or []:
        by_area.setdefault(str(requirement.get("area")), []).append(requirement)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for area, requirements in by_area.items():
        suite = ET.SubElement(suites, "testsuite", name=_xml_text(f"ics.{phase}.{area}"))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        duration = 0.0
        for requirement in requirements:
            rid = _xml_text(requirement.get("id"))
            title = _xml_text(requirement.get("title"))
            cases = list(requirement.get("checks") or []) or [None]
            for check in cases:
                if check is None:
                    verdict, name, message, seconds = str(requirement.get("verdict")), f"{rid} {title}", "", 0.0
                else:
                    verdict = _check_verdict_for(check, str(requirement.get("id")))
                    name = f"{rid} {title} [{_xml_text(check.get('id'))}]"
                    message = _xml_text(check.get("message"))
                    seconds = float(check.get("duration") or 0.0)
                duration += seconds
                case = ET.SubElement(
                    suite,
                    "testcase",
                    classname=_xml_text(f"ics.{phase}.{area}.{rid}"),
                    name=name,
                    time=f"{seconds:.3f}",
                )
                props = ET.SubElement(case, "properties")
                for prop, value in (
                    ("requirement", rid),
                    ("level", requirement.get("level")),
                    ("area", area),
                    ("phase", requirement.get("phase")),
                    ("verdict", verdict),
                ):
                    ET.SubElement(props, "property", name=prop, value=_xml_text(value))
                counts["tests"] += 1
                status = _JUNIT_STATUS.get(verdict)
                if status is None:
                    continue
                counts["failures" if status == "failure" else "errors" if status == "error" else "skipped"] += 1
                element = ET.SubElement(
                    case, status, message=_xml_text(f"{verdict}: {message}" if message else verdict)
                )
                if check is not None and status in ("failure", "error"):
                    detail = message
                    if check.get("reproduce"):
                        detail += f"\n\nReproduce:\n{_xml_text(check.get('reproduce'))}"
                    element.text = detail
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{duration:.3f}")
    for key, value in totals.items():
        suites.set(key, str(value))
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


_ALLURE_STATUS = {
    "PASS": "passed",
    "FAIL": "failed",
    "ERROR": "broken",
    "SKIPPED": "skipped",
    "NOT_APPLICABLE": "skipped",
    "NOT_RUN": "skipped",
    "WAIVED": "skipped",
}
_ALLURE_PRECEDENCE = ("FAIL", "ERROR", "WAIVED", "SKIPPED", "NOT_RUN", "NOT_APPLICABLE", "PASS")
_SEVERITY = {"MUST": "critical", "SHOULD": "normal", "MAY": "minor"}


def _epoch_ms(stamp: Any) -> int:
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _allure_files(result: Mapping[str, Any]) -> dict[str, bytes]:
    """allure-results: one result per check (requirements without checks get one too)."""
    from allure_commons.model2 import Attachment, Label, Link, Parameter, Status, StatusDetails, TestResult
    from attr import asdict

    phase = str(result.get("phase"))
    run = str(result.get("run_id") or result.get("started_at") or "")
    start = _epoch_ms(result.get("started_at"))
    grouped: dict[str, list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]] = {}
    for requirement in result.get("requirements") or []:
        checks = requirement.get("checks") or []
        if not checks:
            grouped.setdefault(f"requirement:{requirement.get('id')}", []).append((requirement, None))
        for check in checks:
            grouped.setdefault(str(check.get("id")), []).append((requirement, check))
    files: dict[str, bytes] = {}
    for key, pairs in sorted(grouped.items()):
        ident = uuid.uuid5(uuid.NAMESPACE_URL, f"ics-conformance:{run}:{key}")
        requirements = [req for req, _ in pairs]
        check = pairs[0][1]
        verdicts = {
            (_check_verdict_for(c, str(r.get("id"))) if c is not None else str(r.get("verdict"))) for r, c in pairs
        }
        verdict = next((v for v in _ALLURE_PRECEDENCE if v in verdicts), "NOT_RUN")
        ids = [str(r.get("id")) for r in requirements]
        levels = [str(r.get("level")) for r in requirements]
        level = next((lv for lv in ("MUST", "SHOULD", "MAY") if lv in levels), levels[0])
        areas = sorted({str(r.get("area")) for r in requirements})
        labels = [Label("requirement", rid) for rid in ids]
        labels += [Label("area", a) for a in areas]
        labels += [
            Label("phase", phase),
            Label("level", level),
            Label("severity", _SEVERITY.get(level, "normal")),
            Label("parentSuite", f"ICS phase {phase}"),
            Label("suite", areas[0]),
            Label("feature", areas[0]),
            Label("framework", "ics-conformance"),
        ]
        labels += [Label("story", rid) for rid in ids]
        links = [Link(type="tms", url=REQUIREMENT_LINK.format(id=rid), name=rid) for rid in ids]
        duration_ms = int(float((check or {}).get("duration") or 0.0) * 1000)
        name = f"{' '.join(ids)}: {requirements[0].get('title')}"
        details = None
        attachments = []
        parameters = []
        if check is not None:
            parameters.append(Parameter(name="kind", value=str(check.get("kind"))))
            message = check.get("message")
            trace_parts = []
            if check.get("example") is not None:
                trace_parts.append(
                    "Minimal failing example:\n" + json.dumps(check.get("example"), indent=2, default=str)
                )
            if check.get("reproduce"):
                trace_parts.append("Reproduce:\n" + str(check.get("reproduce")))
            if message or trace_parts or verdict != "PASS":
                details = StatusDetails(
                    message=str(message) if message else verdict, trace="\n\n".join(trace_parts) or None
                )
            for index, entry in enumerate(check.get("evidence") or []):
                source = f"{uuid.uuid5(ident, str(index))}-attachment.json"
                files[f"allure-results/{source}"] = _pretty_json(entry)
                attachments.append(Attachment(name=f"evidence {index + 1}", source=source, type="application/json"))
        else:
            details = StatusDetails(message=f"{verdict}: no check reached this requirement")
        test = TestResult(
            uuid=str(ident),
            historyId=hashlib.md5(key.encode("utf-8")).hexdigest(),
            testCaseId=hashlib.md5(key.encode("utf-8")).hexdigest(),
            fullName=key if check is not None else ids[0],
            name=name,
            status=_ALLURE_STATUS.get(verdict, Status.UNKNOWN),
            statusDetails=details,
            stage="finished",
            labels=labels,
            links=links,
            parameters=parameters,
            attachments=attachments,
            start=start,
            stop=start + duration_ms,
        )
        data = asdict(test, filter=lambda _, v: v or v is False or v == 0)
        files[f"allure-results/{ident}-result.json"] = _pretty_json(data)
    return files


def manifest_facts(clean: Mapping[str, Any], signer: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the manifest repeats of the certificate (``verify`` checks the two agree)."""
    target = clean.get("target") or {}
    about = target.get("about") or {}
    spec = clean.get("spec") or {}
    return (
        {
            "harness": {"version": (clean.get("harness") or {}).get("version", __version__)},
            "spec": {"version": spec.get("version"), "sha256": spec.get("sha256")},
            "phase": clean.get("phase"),
            "verdict": clean.get("verdict"),
            "run_id": clean.get("run_id"),
            "target": {k: about.get(k) for k in ("supplier", "product", "version")} | {"url": target.get("url")},
            "council": clean.get("council"),
            "signing": dict({"alg": "Ed25519"}, **signer) if signer else None,
        }
        | _local_facts(clean)
        | _adapter_fact(clean)
    )


def _local_facts(clean: Mapping[str, Any]) -> dict[str, Any]:
    """The local profile and verdict the manifest repeats (nothing without a profile: such bundles are unchanged)."""
    block = clean.get("local_profile")
    if not isinstance(block, Mapping):
        return {}
    return {
        "local_profile": {k: block.get(k) for k in ("council", "code", "file", "sha256", "verdict")},
    }


def _adapter_fact(clean: Mapping[str, Any]) -> dict[str, Any]:
    """The supplier adapter, when the run went through one (a bundle without one has no such member)."""
    adapter = clean.get("adapter")
    if not isinstance(adapter, Mapping):
        return {}
    return {"adapter": {k: adapter.get(k) for k in ("name", "version", "sha256")}}


def signer_record(private_key: Any, result: Mapping[str, Any], keyring: Keyring | None) -> dict[str, Any]:
    """Who signs this certificate and at which assurance level (see the keyring module)."""
    from conformance.certificate.keyring import SELF_ASSESSED, OutOfScope, assess

    ident = key_id(private_key.public_key())
    if keyring is None:
        return {"key_id": ident, "party": None, "role": None, "assurance": SELF_ASSESSED}
    entry = keyring.get(ident)
    if entry is None:
        raise UsageError(f"signing key {ident} is not in the keyring {keyring.source}; the department adds it first")
    about = (result.get("target") or {}).get("about") or {}
    try:
        level = assess(
            entry, supplier=about.get("supplier"), product=about.get("product"), council=result.get("council")
        )
    except OutOfScope as exc:
        raise UsageError(f"not signing: {exc}") from None
    return dict(entry.record(), assurance=level)


def report_info(
    name: str, key_ident: str | None, policy: str, certificate: bytes, signer: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What the report shows of its bundle: name, key, redaction, the certificate it renders, the signer."""
    return {
        "name": name,
        "key_id": key_ident,
        "redaction": policy,
        "certificate_sha256": hashlib.sha256(certificate).hexdigest(),
        "signer": dict(signer) if signer else None,
    }


def derived_files(
    clean: Mapping[str, Any],
    extra: Sequence[Mapping[str, Any]],
    info: Mapping[str, Any],
    *,
    junit: bool = True,
) -> dict[str, bytes]:
    """Every bundle file that is a function of the certificate's result (and the run evidence).

    ``report.html``, ``junit.xml``, ``allure-results/`` and ``evidence/``: ``verify``
    renders them again from ``certificate.json`` and compares them byte for byte.
    """
    from conformance.certificate.report import render_html

    files: dict[str, bytes] = {"report.html": render_html(clean, evidence=extra, bundle_info=info).encode("utf-8")}
    if junit:
        files["junit.xml"] = _junit_xml(clean)
    files.update(_allure_files(clean))
    files.update(_evidence_files(clean, extra))
    return files


def _print_pdf(
    clean: Mapping[str, Any], extra: Sequence[Mapping[str, Any]], info: Mapping[str, Any], pdf: Path, *, appendix: bool
) -> bytes:
    """``report.pdf``: the print version of the report (A4, page numbers), printed by headless Chromium."""
    import tempfile

    from conformance.certificate.report import render_html, write_pdf

    page = render_html(clean, evidence=extra, bundle_info=info, medium="print", appendix=appendix)
    with tempfile.TemporaryDirectory(prefix="ics-report-print-") as scratch:
        source = Path(scratch) / "report-print.html"
        source.write_text(page, encoding="utf-8")
        write_pdf(source, pdf)
    return pdf.read_bytes()


def _write_zip(directory: Path, name: str, files: Sequence[str], zip_path: Path) -> None:
    tmp = zip_path.with_name(zip_path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel in sorted(files):
            info = zipfile.ZipInfo(f"{name}/{rel}", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, (directory / rel).read_bytes())
    os.replace(tmp, zip_path)


def write_bundle(
    result: Mapping[str, Any],
    output_dir: Path,
    *,
    evidence: Sequence[Mapping[str, Any]] | None = None,
    sign_key: Path | None = None,
    pdf: bool = False,
    pdf_evidence: bool = False,
    junit: bool = True,
    redactor: Redactor | None = None,
    name: str | None = None,
    waiver_file: bytes | None = None,
    keyring: Keyring | None = None,
    local_profile: bytes | None = None,
) -> Bundle:
    """Write the bundle for ``result`` under ``output_dir``: ``<name>/`` and ``<name>.zip``.

    ``evidence``: extra run-level evidence entries. ``sign_key``: Ed25519 private key PEM
    (unsigned bundle without it). ``pdf``: also ``report.pdf`` (needs Chromium): an A4
    summary with page numbers, the evidence as an appendix only with ``pdf_evidence``.
    ``redactor``: the one used at capture (its policy is recorded in the manifest and
    applied again, idempotently, as a safety net); default
    ``Redactor.for_target(target.builtin_reference)``. ``name`` overrides the bundle name.
    ``waiver_file``: the exact bytes of the signed waiver file applied to ``result``
    (required when ``result`` records one): it travels in the bundle as ``waivers.json``.
    ``keyring``: names the signer and its role on the certificate and decides the
    assurance level (:func:`conformance.certificate.keyring.assess`); a signing key
    outside the keyring, or outside its scope for this target, is refused. Without a
    keyring the certificate claims *self-assessed* and names no party. ``local_profile``: the
    exact bytes of the council local profile ``result`` records (required when it records one);
    they travel as ``local-profile.yaml``.
    """
    if not isinstance(result, Mapping) or not isinstance(result.get("requirements"), list):
        raise UsageError("write_bundle: not an ics-conformance result (no 'requirements' list)")
    private_key = load_private_key(sign_key) if sign_key is not None else None
    waiver_record = (result.get("waivers") or {}).get("file")
    if waiver_record and waiver_file is None:
        raise UsageError("write_bundle: the result applies a waiver file; its signed bytes must travel in the bundle")
    if waiver_file is not None:
        if not isinstance(waiver_record, Mapping):
            raise UsageError("write_bundle: a waiver file was given but the result records none applied")
        if hashlib.sha256(waiver_file).hexdigest() != waiver_record.get("sha256"):
            raise UsageError("write_bundle: the waiver file given is not the one the result records (sha256 differs)")
    local_record = result.get("local_profile")
    if isinstance(local_record, Mapping) != (local_profile is not None):
        raise UsageError(
            "write_bundle: the local profile's bytes travel in the bundle exactly when the result records one"
        )
    if local_profile is not None and hashlib.sha256(local_profile).hexdigest() != local_record.get("sha256"):  # type: ignore[union-attr]  # a Mapping here
        raise UsageError("write_bundle: the local profile given is not the one the result records (sha256 differs)")
    signer = signer_record(private_key, result, keyring) if private_key is not None else None
    target = result.get("target") or {}
    redactor = redactor or Redactor.for_target(bool(target.get("builtin_reference")))
    clean = _redacted_result(result, redactor)
    extra = [redactor.evidence(e) for e in (evidence or []) if isinstance(e, Mapping)]

    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {output_dir}: {exc.strerror}") from exc
    base = name or _bundle_name(clean)
    if "/" in base or base in ("", ".", ".."):
        raise UsageError(f"invalid bundle name {base!r}")
    bundle_name, counter = base, 1
    while (output_dir / bundle_name).exists() or (output_dir / f"{bundle_name}.zip").exists():
        counter += 1
        bundle_name = f"{base}-{counter}"
    directory = output_dir / bundle_name
    staging = output_dir / f".{bundle_name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()

    key_ident = key_id(private_key.public_key()) if private_key is not None else None
    policy = redactor.policy_record()
    files: dict[str, bytes] = {}
    waivers = clean.get("waivers") or {"applied": [], "unmatched": [], "refused": []}
    files["certificate.json"] = canonical_json(
        {"format": CERTIFICATE_FORMAT, "result": clean, "waivers": waivers, "signer": signer}
    )
    if waiver_file is not None:
        files[WAIVERS_IN_BUNDLE] = waiver_file
    if local_profile is not None:
        files[PROFILE_IN_BUNDLE] = local_profile
    info = report_info(bundle_name, key_ident, redactor.policy, files["certificate.json"], signer)
    files.update(derived_files(clean, extra, info, junit=junit))
    try:
        for rel, data in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if pdf:
            files["report.pdf"] = _print_pdf(clean, extra, info, staging / "report.pdf", appendix=pdf_evidence)

        manifest = {
            "format": MANIFEST_FORMAT,
            "bundle": bundle_name,
            "created_by": f"ics-conformance {__version__}",
            **manifest_facts(clean, signer),
            "redaction": policy,
            "files": [
                {"path": rel, "sha256": hashlib.sha256(files[rel]).hexdigest(), "size": len(files[rel])}
                for rel in sorted(files)
            ],
        }
        manifest_bytes = canonical_json(manifest)
        (staging / MANIFEST).write_bytes(manifest_bytes)
        written = sorted(files) + [MANIFEST]
        if private_key is not None:
            (staging / SIGNATURE).write_bytes(sign(private_key, manifest_bytes))
            written.append(SIGNATURE)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    zip_path = output_dir / f"{bundle_name}.zip"
    _write_zip(directory, bundle_name, written, zip_path)
    return Bundle(
        name=bundle_name,
        directory=directory,
        zip_path=zip_path,
        manifest=manifest,
        files=tuple(sorted(written)),
        signed=private_key is not None,
        key_id=key_ident,
        verdict=str(clean.get("verdict")),
        phase=str(clean.get("phase")),
    )
