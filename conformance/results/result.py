"""The machine-readable result of a run (``result.json``), built from check results.

Every entry point — the pytest plugin, ``certify``, ``validate-export`` — reduces its
checks to :class:`CheckResult` objects and calls :func:`build_result`, so requirement
and phase verdicts are computed in exactly one place (:mod:`conformance.results.verdicts`).
"""

from __future__ import annotations

import platform
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from conformance._version import __version__
from conformance.results.verdicts import PhaseVerdict, Verdict, phase_verdict, requirement_verdict

RESULT_FORMAT = "ics-conformance/result/1"
RESULT_FILENAME = "result.json"

#: Dependencies whose versions are recorded in every result (they decide verdicts).
KEY_DEPENDENCIES = (
    "pytest",
    "hypothesis",
    "schemathesis",
    "httpx",
    "jsonschema",
    "jsonschema-rs",
    "python-stdnum",
    "holidays",
)


@dataclass
class CheckResult:
    """Outcome of one check against one or more requirements.

    ``failed_requirements`` narrows a FAIL to the requirements the failure proves
    broken (a stateful run that breaks search does not fail its notification
    requirements); empty means the FAIL applies to all ``requirements``.
    ``passed_requirements`` are those of a FAIL the check judged in full and found met
    (their contribution is PASS); the rest of a narrowed FAIL's requirements were not judged.
    """

    id: str
    requirements: tuple[str, ...]
    kind: str
    verdict: Verdict
    failed_requirements: tuple[str, ...] = ()
    message: str | None = None
    duration: float = 0.0
    reproduce: str | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    passed_requirements: tuple[str, ...] = ()
    #: the system the check judged in a pair run: ``"target"``, ``"peer"``, or None (the target; no pair)
    side: str | None = None
    #: HTTP requests the check sent to the target (and peer); None: not counted (e.g. an export file)
    requests: int | None = None
    #: of a failing Hypothesis check: its ``@reproduce_failure(...)`` blob (the seed in ``reproduce`` replays it too)
    hypothesis_blob: str | None = None

    def verdict_for(self, requirement_id: str) -> Verdict | None:
        """Return this check's contribution to ``requirement_id`` (None: no contribution)."""
        if requirement_id not in self.requirements:
            return None
        if self.verdict is Verdict.FAIL and self.failed_requirements and requirement_id not in self.failed_requirements:
            if requirement_id in self.passed_requirements:
                return Verdict.PASS  # judged in full by the failing check, and met
            return None  # the failure was attributed elsewhere; this requirement was not judged
        return self.verdict

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["requirements"] = list(self.requirements)
        data["failed_requirements"] = list(self.failed_requirements)
        data["passed_requirements"] = list(self.passed_requirements)
        if data["side"] is None:
            del data["side"]
        for optional in ("requests", "hypothesis_blob"):
            if data[optional] is None:
                del data[optional]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(
            id=data["id"],
            requirements=tuple(data["requirements"]),
            kind=data["kind"],
            verdict=Verdict(data["verdict"]),
            failed_requirements=tuple(data.get("failed_requirements", ())),
            message=data.get("message"),
            duration=float(data.get("duration", 0.0)),
            reproduce=data.get("reproduce"),
            evidence=list(data.get("evidence", [])),
            passed_requirements=tuple(data.get("passed_requirements", ())),
            side=data.get("side"),
            requests=data.get("requests"),
            hypothesis_blob=data.get("hypothesis_blob"),
        )


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def dependency_versions() -> dict[str, str]:
    """Return the installed versions of the dependencies that decide verdicts."""
    versions: dict[str, str] = {}
    for name in KEY_DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_result(
    *,
    phase: str,
    channels: Sequence[str],
    checks: Iterable[CheckResult],
    target: Mapping[str, Any],
    capabilities: Mapping[str, Any] | None = None,
    profile: str | None = None,
    seed: int | None = None,
    run_id: str | None = None,
    started_at: datetime,
    finished_at: datetime,
    command: str | None = None,
    findings: Sequence[Mapping[str, Any]] = (),
    errors: Sequence[str] = (),
    peer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Roll check results up into requirement verdicts and the phase verdict.

    In scope: the catalogue's requirements of ``phase`` (cumulative) whose channel
    meets ``channels``. A requirement whose capability the target does not declare is
    NOT_APPLICABLE whatever its checks did; one no check reached is NOT_RUN.

    A pair run (phase 1C) passes ``peer`` (``{"target": ..., "capabilities": ...}`` of the
    second system): checks that judged the peer (``side == "peer"``) are rolled up apart,
    into ``result["peer"]``, over the requirements they judged; the run's own verdict is
    the target's. ``draft`` says whether the phase is a draft (its verdict carries a DRAFT label).
    """
    from conformance.spec.capabilities import differences
    from conformance.spec.catalogue import load_catalogue, spec_digest

    catalogue = load_catalogue()
    check_list = list(checks)
    target_checks = [c for c in check_list if c.side != "peer"]
    requirements = _requirements(catalogue, phase, channels, target_checks, capabilities, only_judged=False)
    overall, counts, areas = roll_up(requirements, errors)
    about = target.get("about")
    declared = about.get("capabilities") if isinstance(about, Mapping) else None
    info = catalogue.phases.get(phase)
    result: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "run_id": run_id,
        "phase": phase,
        "draft": bool(info is not None and info.status == "draft"),
        "channels": list(channels),
        "verdict": overall.value,
        "spec": {"version": catalogue.spec_version, "sha256": spec_digest()},
        "harness": {
            "version": __version__,
            "python": platform.python_version(),
            "dependencies": dependency_versions(),
        },
        "target": dict(target),
        "capabilities": dict(capabilities or {}),
        "capability_overrides": differences(declared, dict(capabilities or {}))
        if isinstance(declared, Mapping)
        else None,
        "profile": profile,
        "seed": seed,
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "command": command,
        "counts": counts,
        "areas": areas,
        "requirements": requirements,
        "unknown_requirements": sorted({r for c in check_list for r in c.requirements} - {r.id for r in catalogue}),
        "findings": [dict(f) for f in findings],
        "waivers": {"applied": [], "unmatched": [], "refused": []},
        "errors": list(errors),
    }
    tally = request_tally(catalogue, check_list)
    if tally is not None:
        result["requests"] = tally
    if peer is not None:
        result["peer"] = peer_block(catalogue, phase, channels, [c for c in check_list if c.side == "peer"], peer)
    return result


def request_tally(catalogue: Any, checks: Sequence[CheckResult]) -> dict[str, Any] | None:
    """HTTP requests of the run: in total and per area (a check counted once, in its first requirement's area).

    None when no check counted its requests (an export judged alone).
    """
    counted = [c for c in checks if c.requests is not None]
    if not counted:
        return None
    areas: Counter[str] = Counter()
    for check in counted:
        first = check.requirements[0] if check.requirements else None
        area = catalogue.get(first).area if first is not None and first in catalogue else "other"
        areas[area] += int(check.requests or 0)
    return {"total": sum(areas.values()), "areas": dict(sorted(areas.items()))}


def peer_block(
    catalogue: Any, phase: str, channels: Sequence[str], checks: Sequence[CheckResult], peer: Mapping[str, Any]
) -> dict[str, Any]:
    """The peer of a pair run: its system, and the verdicts of the requirements judged on it."""
    requirements = _requirements(catalogue, phase, channels, checks, peer.get("capabilities"), only_judged=True)
    verdict, counts, _ = roll_up(requirements)
    return {
        "target": dict(peer.get("target") or {}),
        "capabilities": dict(peer.get("capabilities") or {}),
        "verdict": verdict.value,
        "counts": counts,
        "requirements": requirements,
    }


def _requirements(
    catalogue: Any,
    phase: str,
    channels: Sequence[str],
    check_list: Sequence[CheckResult],
    capabilities: Mapping[str, Any] | None,
    *,
    only_judged: bool,
) -> list[dict[str, Any]]:
    """Requirement entries (verdict and checks) of ``phase``; ``only_judged``: just those a check reached."""
    from conformance.spec.capabilities import CapabilityStatement, applies

    statement = CapabilityStatement(dict(capabilities or {}))
    by_requirement: dict[str, list[CheckResult]] = defaultdict(list)
    for check in check_list:
        for rid in check.requirements:
            by_requirement[rid].append(check)
    requirements: list[dict[str, Any]] = []
    for req in catalogue.in_scope(phase, channels=channels):
        if only_judged and req.id not in by_requirement:
            continue
        verdict = derive_requirement_verdict(req.id, by_requirement.get(req.id, []), applicable=applies(req, statement))
        requirements.append(
            {
                "id": req.id,
                "title": req.title,
                "statement": req.statement,
                "level": req.level,
                "phase": req.phase,
                "area": req.area,
                "channel": req.channel,
                "capability": req.capability,
                "verdict": verdict.value,
                "waiver": None,
                "checks": [c.to_json() for c in by_requirement.get(req.id, [])],
            }
        )
    return requirements


def derive_requirement_verdict(
    requirement_id: str, checks: Sequence[CheckResult], *, applicable: bool = True
) -> Verdict:
    """The verdict of one requirement from the checks that name it: the only place this is decided.

    Not ``applicable`` (its capability is not in the statement the run used):
    NOT_APPLICABLE whatever its checks did. Checks that all failed on other requirements
    first: NOT_RUN. Otherwise :func:`~conformance.results.verdicts.requirement_verdict`
    of the checks' contributions. ``build_result`` and ``verify`` both call this.
    """
    if not applicable:
        return Verdict.NOT_APPLICABLE
    contributions = [c.verdict_for(requirement_id) for c in checks]
    verdicts = [v for v in contributions if v is not None]
    if not verdicts and checks:
        return Verdict.NOT_RUN  # every check failed on other requirements first
    return requirement_verdict(verdicts)


def roll_up(
    requirements: Sequence[Mapping[str, Any]], errors: Sequence[Any] = ()
) -> tuple[PhaseVerdict, dict[str, int], dict[str, dict[str, int]]]:
    """Phase verdict, verdict counts and per-area counts of requirement records.

    The phase verdict is :func:`~conformance.results.verdicts.phase_verdict`; a run that
    recorded errors of its own is never CERTIFIED (INCONCLUSIVE instead).
    """
    counts = Counter(str(r["verdict"]) for r in requirements)
    areas: dict[str, Counter[str]] = defaultdict(Counter)
    for r in requirements:
        areas[str(r["area"])][str(r["verdict"])] += 1
    overall = phase_verdict((str(r["level"]), Verdict(r["verdict"])) for r in requirements)
    if errors and overall is PhaseVerdict.CERTIFIED:
        overall = PhaseVerdict.INCONCLUSIVE
    return (
        overall,
        dict(sorted(counts.items())),
        {area: dict(sorted(c.items())) for area, c in sorted(areas.items())},
    )


def adapter_text(result: Mapping[str, Any]) -> str:
    """``NAME version V (sha256 HEX)`` of the supplier adapter a run went through ("" without one).

    The terminal, the report (its first screen and its ``ics-adapter`` meta element) and
    ``verify`` all state it in these words.
    """
    adapter = result.get("adapter")
    if not isinstance(adapter, Mapping):
        return ""
    return f"{adapter.get('name')} version {adapter.get('version')} (sha256 {adapter.get('sha256')})"


def dumps(result: Mapping[str, Any]) -> bytes:
    """Serialise a result as stable, human-readable JSON (sorted keys, 2-space indent)."""
    return orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_result(result: Mapping[str, Any], directory: Path) -> Path:
    """Write ``result.json`` into ``directory`` (created if needed) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RESULT_FILENAME
    path.write_bytes(dumps(result))
    return path


def result_problems(result: Mapping[str, Any]) -> list[str]:
    """Where ``result`` departs from ``specs/schemas/result.schema.json`` (empty: it conforms).

    Each problem names the JSON pointer and what is wrong, so a consumer of someone
    else's ``result.json`` can check its shape before trusting its contents.
    """
    import jsonschema

    from conformance.spec.resources import spec_path

    schema = orjson.loads(spec_path("schemas", "result.schema.json").read_bytes())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        "/" + "/".join(str(p) for p in error.absolute_path) + f": {error.message}"
        for error in sorted(validator.iter_errors(result), key=lambda e: list(map(str, e.absolute_path)))
    ]


def read_result(path: Path) -> dict[str, Any]:
    """Read a ``result.json`` (or a directory holding one)."""
    if path.is_dir():
        path = path / RESULT_FILENAME
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
        from conformance.errors import UsageError

        raise UsageError(f"{path}: not an ics-conformance result (format {RESULT_FORMAT!r} expected)")
    return data


def blamed_checks(requirement: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The checks (JSON form) of a requirement record that make it FAIL, ERROR or WAIVED.

    A check that failed on a sibling requirement (``failed_requirements`` not naming this
    one) says nothing against it, so it is left out: each check's message is shown where
    it counts, once.
    """
    rid = str(requirement.get("id"))
    out = []
    for check in requirement.get("checks") or []:
        if not isinstance(check, Mapping):
            continue
        verdict = str(check.get("verdict"))
        failed = check.get("failed_requirements") or []
        if verdict == "FAIL" and failed and rid not in failed:
            continue
        if verdict in ("FAIL", "ERROR", "WAIVED"):
            out.append(dict(check))
    return out
