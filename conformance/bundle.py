"""The certification bundle: write it, and verify it offline.

A bundle is a directory ``<name>/`` and the same content as ``<name>.zip`` (one top-level
folder ``<name>/``)::

    certificate.json   the result (design §7), redacted, checks sorted, in canonical JSON,
                       wrapped as {"format": "ics-conformance/certificate/1", "result": ...,
                       "waivers": ...}
    report.html        the human report (self-contained)
    report.pdf         only with pdf=True (headless Chromium)
    junit.xml          one testcase per (requirement, check); names carry requirement IDs
    allure-results/    one allure result per check (+ JSON attachments of its evidence)
    evidence/          redacted evidence, one JSON file per check that kept any
    manifest.json      sha256 and size of every file above, redaction policy, spec and
                       harness versions, verdict; canonical JSON
    manifest.sig       raw 64-byte Ed25519 signature over the exact bytes of manifest.json

:func:`verify_bundle` checks the signature, then every listed file's size and sha256,
that no file is missing or extra, and that the spec hash is a known spec version.
Zip bundles are read in place, never extracted, with limits on member count and size.
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
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from conformance._version import __version__
from conformance.errors import UsageError
from conformance.redaction import Redactor
from conformance.signing import canonical_json, key_id, load_private_key, load_public_key, sign, verify

__all__ = [
    "Bundle",
    "CERTIFICATE_FORMAT",
    "KNOWN_SPEC_DIGESTS",
    "MANIFEST_FORMAT",
    "VerifyResult",
    "known_spec_digests",
    "verify_bundle",
    "write_bundle",
]

CERTIFICATE_FORMAT = "ics-conformance/certificate/1"
MANIFEST_FORMAT = "ics-conformance/manifest/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
REQUIRED_FILES = ("certificate.json", "report.html")
REQUIREMENT_LINK = "../report.html#req-{id}"  # from an allure report generated inside the bundle

#: Released spec versions: sha256 of the spec data -> spec version. The spec of this
#: installation (``catalogue.spec_digest()``) is always known as well; add each released
#: digest here when a spec version is published so older bundles keep verifying.
KNOWN_SPEC_DIGESTS: dict[str, str] = {}

# Reading limits for untrusted bundles.
MAX_MEMBERS = 20_000
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
_CHUNK = 1024 * 1024
_SLUG = re.compile(r"[^a-z0-9]+")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


# --------------------------------------------------------------------------- spec identity


def _fallback_spec_digest() -> tuple[str, str]:  # pragma: no cover - until catalogue.py lands
    from conformance._resources import specs_dir

    root = specs_dir()
    entries = sorted(
        (p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in root.rglob("*")
        if p.is_file()
    )
    return "2008.1", hashlib.sha256(canonical_json(entries)).hexdigest()


@cache
def _current_spec() -> tuple[str, str]:
    """``(version, sha256)`` of the spec data shipped with this installation."""
    try:
        from conformance.catalogue import load_catalogue, spec_digest
    except ModuleNotFoundError as exc:  # pragma: no cover - until catalogue.py lands
        if exc.name != "conformance.catalogue":
            raise
        return _fallback_spec_digest()
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
    parts.append(stamp or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    return "-".join(parts)


def _check_sort_key(check: Mapping[str, Any]) -> str:
    return str(check.get("id", ""))


def _redacted_result(result: Mapping[str, Any], redactor: Redactor) -> dict[str, Any]:
    """Deep copy with evidence, reproduction commands and URLs redacted, checks sorted."""
    out = copy.deepcopy(dict(result))
    for requirement in out.get("requirements") or []:
        checks = requirement.get("checks") or []
        for check in checks:
            check["evidence"] = [redactor.evidence(e) for e in check.get("evidence") or [] if isinstance(e, Mapping)]
            for key in ("reproduce", "message"):
                if isinstance(check.get(key), str):
                    check[key] = redactor.text(check[key])
            if "example" in check:
                check["example"] = redactor.body(check["example"])
        requirement["checks"] = sorted(checks, key=_check_sort_key)
    for key in ("command",):
        if isinstance(out.get(key), str):
            out[key] = redactor.text(out[key])
    target = out.get("target")
    if isinstance(target, dict) and isinstance(target.get("url"), str):
        target["url"] = redactor.text(target["url"])
    if out.get("errors"):
        out["errors"] = [redactor.text(e) if isinstance(e, str) else e for e in out["errors"]]
    return out


def _evidence_name(check_id: str) -> str:
    digest = hashlib.sha256(check_id.encode("utf-8")).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", check_id).strip("._")[:80]
    return f"evidence/{slug or 'check'}-{digest}.json"


def _evidence_files(result: Mapping[str, Any], extra: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    by_check: dict[str, dict[str, Any]] = {}
    for requirement in result.get("requirements") or []:
        for check in requirement.get("checks") or []:
            entries = check.get("evidence") or []
            if not entries:
                continue
            cid = str(check.get("id"))
            record = by_check.setdefault(
                cid, {"check": cid, "kind": check.get("kind"), "requirements": [], "verdict": check.get("verdict"), "entries": entries}
            )
            record["requirements"].append(requirement.get("id"))
    for cid, record in sorted(by_check.items()):
        files[_evidence_name(cid)] = _pretty_json(record)
    if extra:
        files["evidence/run.json"] = _pretty_json({"check": "run", "entries": list(extra)})
    return files


def _pretty_json(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8") + b"\n"


_JUNIT_STATUS = {"FAIL": "failure", "ERROR": "error", "SKIPPED": "skipped", "NOT_APPLICABLE": "skipped",
                 "NOT_RUN": "skipped", "WAIVED": "skipped"}
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
                    suite, "testcase", classname=_xml_text(f"ics.{phase}.{area}.{rid}"), name=name, time=f"{seconds:.3f}"
                )
                props = ET.SubElement(case, "properties")
                for prop, value in (("requirement", rid), ("level", requirement.get("level")), ("area", area),
                                    ("phase", requirement.get("phase")), ("verdict", verdict)):
                    ET.SubElement(props, "property", name=prop, value=_xml_text(value))
                counts["tests"] += 1
                status = _JUNIT_STATUS.get(verdict)
                if status is None:
                    continue
                counts["failures" if status == "failure" else "errors" if status == "error" else "skipped"] += 1
                element = ET.SubElement(case, status, message=_xml_text(f"{verdict}: {message}" if message else verdict))
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


_ALLURE_STATUS = {"PASS": "passed", "FAIL": "failed", "ERROR": "broken", "SKIPPED": "skipped",
                  "NOT_APPLICABLE": "skipped", "NOT_RUN": "skipped", "WAIVED": "skipped"}
_ALLURE_PRECEDENCE = ("FAIL", "ERROR", "WAIVED", "SKIPPED", "NOT_RUN", "NOT_APPLICABLE", "PASS")
_SEVERITY = {"MUST": "critical", "SHOULD": "normal", "MAY": "minor"}


def _epoch_ms(stamp: Any) -> int:
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _allure_files(result: Mapping[str, Any]) -> dict[str, bytes]:
    """allure-results: one result per check (requirements without checks get one too)."""
    from attr import asdict
    from allure_commons.model2 import Attachment, Label, Link, Parameter, Status, StatusDetails, TestResult

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
        verdicts = {(_check_verdict_for(c, str(r.get("id"))) if c is not None else str(r.get("verdict"))) for r, c in pairs}
        verdict = next((v for v in _ALLURE_PRECEDENCE if v in verdicts), "NOT_RUN")
        ids = [str(r.get("id")) for r in requirements]
        levels = [str(r.get("level")) for r in requirements]
        level = next((lv for lv in ("MUST", "SHOULD", "MAY") if lv in levels), levels[0])
        areas = sorted({str(r.get("area")) for r in requirements})
        labels = [Label("requirement", rid) for rid in ids]
        labels += [Label("area", a) for a in areas]
        labels += [Label("phase", phase), Label("level", level), Label("severity", _SEVERITY.get(level, "normal")),
                   Label("parentSuite", f"ICS phase {phase}"), Label("suite", areas[0]), Label("feature", areas[0]),
                   Label("framework", "ics-conformance")]
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
                trace_parts.append("Minimal failing example:\n" + json.dumps(check.get("example"), indent=2, default=str))
            if check.get("reproduce"):
                trace_parts.append("Reproduce:\n" + str(check.get("reproduce")))
            if message or trace_parts or verdict != "PASS":
                details = StatusDetails(message=str(message) if message else verdict, trace="\n\n".join(trace_parts) or None)
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
    junit: bool = True,
    redactor: Redactor | None = None,
    name: str | None = None,
) -> Bundle:
    """Write the bundle for ``result`` under ``output_dir``: ``<name>/`` and ``<name>.zip``.

    ``evidence``: extra run-level evidence entries. ``sign_key``: Ed25519 private key PEM
    (unsigned bundle without it). ``pdf``: also ``report.pdf`` (needs Chromium).
    ``redactor``: the one used at capture (its policy is recorded in the manifest and
    applied again, idempotently, as a safety net); default
    ``Redactor.for_target(target.builtin_reference)``. ``name`` overrides the bundle name.
    """
    if not isinstance(result, Mapping) or not isinstance(result.get("requirements"), list):
        raise UsageError("write_bundle: not an ics-conformance result (no 'requirements' list)")
    private_key = load_private_key(sign_key) if sign_key is not None else None
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
    files["certificate.json"] = canonical_json({"format": CERTIFICATE_FORMAT, "result": clean, "waivers": waivers})
    from conformance.report import render_html, write_pdf

    files["report.html"] = render_html(
        clean, evidence=extra, bundle_info={"name": bundle_name, "key_id": key_ident, "redaction": redactor.policy}
    ).encode("utf-8")
    if junit:
        files["junit.xml"] = _junit_xml(clean)
    files.update(_allure_files(clean))
    files.update(_evidence_files(clean, extra))
    try:
        for rel, data in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if pdf:
            write_pdf(staging / "report.html", staging / "report.pdf")
            files["report.pdf"] = (staging / "report.pdf").read_bytes()

        clean_target = clean.get("target") or {}
        about = clean_target.get("about") or {}
        spec = clean.get("spec") or {}
        manifest = {
            "format": MANIFEST_FORMAT,
            "bundle": bundle_name,
            "created_by": f"ics-conformance {__version__}",
            "harness": {"version": (clean.get("harness") or {}).get("version", __version__)},
            "spec": {"version": spec.get("version"), "sha256": spec.get("sha256")},
            "phase": clean.get("phase"),
            "verdict": clean.get("verdict"),
            "run_id": clean.get("run_id"),
            "target": {k: about.get(k) for k in ("supplier", "product", "version")} | {"url": clean_target.get("url")},
            "redaction": policy,
            "signing": {"alg": "Ed25519", "key_id": key_ident} if key_ident else None,
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


# --------------------------------------------------------------------------- verifying


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


class _Source:
    """Uniform read access to a bundle directory or zip (paths relative to the bundle root)."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def size(self, rel: str) -> int:
        raise NotImplementedError

    def chunks(self, rel: str) -> Iterator[bytes]:
        raise NotImplementedError

    def read(self, rel: str, limit: int) -> bytes:
        data = bytearray()
        for chunk in self.chunks(rel):
            data += chunk
            if len(data) > limit:
                raise _Bad(rel, f"larger than {limit} bytes")
        return bytes(data)

    def close(self) -> None:
        pass


class _Bad(Exception):
    def __init__(self, rel: str, problem: str) -> None:
        super().__init__(f"{rel}: {problem}")
        self.rel, self.problem = rel, problem


class _DirSource(_Source):
    def __init__(self, root: Path) -> None:
        self.root = root
        self._names: list[str] = []
        self._unsafe: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for entry in sorted(dirnames + filenames):
                full = Path(dirpath) / entry
                rel = full.relative_to(root).as_posix()
                mode = full.lstat().st_mode
                if stat.S_ISLNK(mode):
                    self._unsafe.append((rel, "is a symbolic link"))
                elif stat.S_ISREG(mode):
                    self._names.append(rel)
                elif not stat.S_ISDIR(mode):
                    self._unsafe.append((rel, "is not a regular file"))
            if len(self._names) > MAX_MEMBERS:
                raise UsageError(f"{root}: more than {MAX_MEMBERS} files; not a bundle")

    def names(self) -> list[str]:
        if self._unsafe:
            raise _Bad(*self._unsafe[0])
        return sorted(self._names)

    def size(self, rel: str) -> int:
        return (self.root / rel).lstat().st_size

    def chunks(self, rel: str) -> Iterator[bytes]:
        with open(self.root / rel, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk


class _ZipSource(_Source):
    def __init__(self, path: Path) -> None:
        try:
            self.archive = zipfile.ZipFile(path)
            infos = self.archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise UsageError(f"{path}: not a readable zip archive ({exc})") from exc
        if len(infos) > MAX_MEMBERS:
            raise UsageError(f"{path}: more than {MAX_MEMBERS} members; not a bundle")
        if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
            raise UsageError(f"{path}: declares more than {MAX_TOTAL_BYTES} bytes uncompressed; refusing (zip bomb?)")
        self.infos: dict[str, zipfile.ZipInfo] = {}
        self._unsafe: list[tuple[str, str]] = []
        # The bundle root: the folder holding manifest.json (normally the one top-level folder).
        roots = sorted(i.filename[: -len(MANIFEST)] for i in infos if i.filename.rsplit("/", 1)[-1] == MANIFEST)
        prefix = roots[0] if len(roots) == 1 else ""
        for info in infos:
            raw = info.filename
            if info.is_dir():
                continue
            rel = raw[len(prefix):] if raw.startswith(prefix) else raw
            problem = _unsafe_member(raw, info)
            if problem is None and not raw.startswith(prefix):
                problem = f"outside the bundle folder {prefix.rstrip('/')!r} (extra file)"
            if problem:
                self._unsafe.append((raw, problem))
            elif rel in self.infos:
                self._unsafe.append((rel, "appears twice in the zip"))
            else:
                self.infos[rel] = info

    def names(self) -> list[str]:
        if self._unsafe:
            raise _Bad(*self._unsafe[0])
        return sorted(self.infos)

    def size(self, rel: str) -> int:
        return self.infos[rel].file_size

    def chunks(self, rel: str) -> Iterator[bytes]:
        info = self.infos[rel]
        if info.file_size > MAX_FILE_BYTES:
            raise _Bad(rel, f"larger than {MAX_FILE_BYTES} bytes")
        total = 0
        try:
            with self.archive.open(info) as handle:
                while chunk := handle.read(_CHUNK):
                    total += len(chunk)
                    if total > info.file_size:
                        raise _Bad(rel, "expands beyond its declared size (zip bomb?)")
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise _Bad(rel, f"unreadable in the zip ({exc})") from exc

    def close(self) -> None:
        self.archive.close()


def _unsafe_member(name: str, info: zipfile.ZipInfo) -> str | None:
    if "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "unsafe path in the zip"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "unsafe path in the zip"
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def _open_source(path: Path) -> _Source:
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such bundle (a directory or .zip)")
    if path.is_dir():
        return _DirSource(path)
    if path.is_file():
        return _ZipSource(path)
    raise UsageError(f"{path}: not a directory or a zip file")


def _sha256(source: _Source, rel: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in source.chunks(rel):
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise _Bad(rel, f"larger than {MAX_FILE_BYTES} bytes")
        digest.update(chunk)
    return digest.hexdigest(), size


def verify_bundle(path: Path, public_key: Path) -> VerifyResult:
    """Verify a bundle directory or zip offline against the certifier's/supplier's public key.

    Checks, in order: manifest and signature present; the signature over the exact
    manifest bytes; the manifest's form; every listed file present with the listed size
    and sha256; no file that is not listed; the spec hash is a known spec version.
    Returns the first problem as ``bad_file`` + ``problem``. Raises :class:`UsageError`
    when the key or the bundle cannot be read at all.
    """
    key = load_public_key(public_key)
    source = _open_source(Path(path))
    label = Path(path).name
    try:
        return _verify(source, key, label)
    except _Bad as bad:
        return VerifyResult(ok=False, bundle=label, bad_file=bad.rel, problem=bad.problem)
    finally:
        source.close()


def _verify(source: _Source, key: Any, label: str) -> VerifyResult:
    names = source.names()
    if MANIFEST not in names:
        raise _Bad(MANIFEST, "missing (not a bundle, or the manifest was removed)")
    if SIGNATURE not in names:
        raise _Bad(SIGNATURE, "missing (the bundle is unsigned or the signature was removed)")
    manifest_bytes = source.read(MANIFEST, MAX_MANIFEST_BYTES)
    signature = source.read(SIGNATURE, 1024)
    if len(signature) != 64:
        raise _Bad(SIGNATURE, f"malformed signature ({len(signature)} bytes; an Ed25519 signature has 64)")
    if not verify(key, manifest_bytes, signature):
        raise _Bad(
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
        raise _Bad(MANIFEST, f"signed but malformed ({exc})") from exc
    for required in REQUIRED_FILES:
        if required not in listed:
            raise _Bad(required, "not listed in the manifest")
    present = set(names)
    for rel in sorted(listed):
        expected_sha, expected_size = listed[rel]
        if rel not in present:
            raise _Bad(rel, "missing")
        if source.size(rel) != expected_size:
            raise _Bad(rel, f"size mismatch ({source.size(rel)} bytes, manifest says {expected_size})")
        actual_sha, actual_size = _sha256(source, rel)
        if actual_size != expected_size:
            raise _Bad(rel, f"size mismatch ({actual_size} bytes, manifest says {expected_size})")
        if actual_sha != expected_sha:
            raise _Bad(rel, "sha256 mismatch")
    extra = sorted(present - set(listed) - {MANIFEST, SIGNATURE})
    if extra:
        raise _Bad(extra[0], "not listed in the manifest (extra file)")
    spec = manifest.get("spec") or {}
    known = known_spec_digests()
    if spec.get("sha256") not in known:
        raise _Bad(MANIFEST, f"spec sha256 {str(spec.get('sha256'))[:16]}… is not a known spec version")
    if spec.get("version") != known[spec["sha256"]]:
        raise _Bad(MANIFEST, f"spec version {spec.get('version')!r} does not match its hash (known as {known[spec['sha256']]!r})")
    try:
        certificate = json.loads(source.read("certificate.json", MAX_FILE_BYTES))
        result = certificate["result"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _Bad("certificate.json", f"not a certificate ({exc})") from exc
    if not isinstance(result, dict):
        raise _Bad("certificate.json", "not a certificate (its result is not an object)")
    from conformance.result import result_problems

    problems = result_problems(result)
    if problems:  # signed, but not a result this harness could have written
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise _Bad("certificate.json", f"result does not match the published schema: {problems[0]}{more}")
    if result.get("verdict") != manifest.get("verdict") or (result.get("spec") or {}).get("sha256") != spec.get("sha256"):
        raise _Bad("certificate.json", "verdict or spec hash differs from the manifest")
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
