"""The local verdict: a profile's requirements judged by their checks, beside the national verdict, never merged.

:func:`local_block` builds ``result["local_profile"]`` from the profile, the local checks'
results and the national result (whose capability statement and requirement verdicts the
capability settings and not-needed entries are read against). It is a pure function of
those, so ``verify`` re-derives the whole block from the profile carried in the bundle and
the recorded checks (:func:`local_problem`). The local verdict uses the national roll-up
rules (any ERROR: INCONCLUSIVE; a local MUST failing: NOT MET; a local MUST not judged:
INCONCLUSIVE) and the words MET / NOT MET, so it is never mistaken for a certification.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conformance.profiles.model import KIND_BASIS, LocalProfile, LocalRequirement, parse_profile
from conformance.results.result import CheckResult, derive_requirement_verdict, roll_up

__all__ = ["BLOCK_FORMAT", "PROFILE_IN_BUNDLE", "deviations", "local_block", "local_lines", "local_problem"]

BLOCK_FORMAT = "ics-conformance/local-verdict/1"
#: The profile's exact bytes travel in the bundle under this name (``verify`` re-reads them).
PROFILE_IN_BUNDLE = "local-profile.yaml"
#: The local verdict's words for the phase verdict rules' outcomes.
WORDS = {"CERTIFIED": "MET", "NOT_CERTIFIED": "NOT_MET", "INCONCLUSIVE": "INCONCLUSIVE"}


def _params_text(requirement: LocalRequirement) -> str:
    p = requirement.params
    if requirement.kind == "timescale":
        field = f", field {p['field']}" if p.get("field") else ""
        return f"{p['assessment']} assessment due {p['working_days']} working days after its start{field}"
    if requirement.kind == "notification-latency":
        return f"notification within {p['seconds']:g} s"
    if requirement.kind == "search-criterion":
        return "search by " + " + ".join(p["criteria"])
    if requirement.kind == "code-list":
        refuse = ", others refused" if p.get("refuse_others") else ""
        return f"{p['field']} from {len(p['codes'])} local codes{refuse}"
    return "judged by the council's own checks"


def deviations(profile: LocalProfile) -> list[dict[str, Any]]:
    """Every way the profile departs from the national catalogue, in one list (for reports)."""
    from conformance.domain.workingdays import TIMESCALES

    out: list[dict[str, Any]] = []
    for req in profile.requirements:
        text = f"adds {req.level} {req.id} ({req.kind}: {_params_text(req)})"
        if req.kind == "timescale":
            national = TIMESCALES[req.params["assessment"]]
            if req.params["working_days"] < national:
                text += f"; shorter than the national {national} working days"
        basis = KIND_BASIS[req.kind]
        out.append({"type": "added", "id": req.id, "basis": basis or None, "text": text, "reason": req.reason})
    for item in profile.not_needed:
        out.append(
            {
                "type": "not-needed",
                "id": item.id,
                "basis": item.id,
                "text": f"does not need national {item.level} {item.id} (its national verdict is unchanged)",
                "reason": item.reason,
            }
        )
    for setting in profile.capabilities:
        wanted = (
            f"a notification latency bound of at most {setting.value} s"
            if setting.capability == "notification_latency_seconds"
            else f"capability {setting.capability}"
        )
        out.append(
            {
                "type": "capability",
                "id": setting.capability,
                "basis": None,
                "text": f"needs {wanted}",
                "reason": setting.reason,
            }
        )
    return out


def _capability_entry(setting: Any, statement: Mapping[str, Any] | None) -> dict[str, Any]:
    """A capability setting judged against the statement the run used (NOT_RUN: the run established none)."""
    from conformance.spec.capabilities import CapabilityStatement

    used = CapabilityStatement(dict(statement)).get(setting.capability) if statement is not None else None
    if setting.capability == "notification_latency_seconds":
        met = isinstance(used, (int, float)) and not isinstance(used, bool) and used <= setting.value
    else:
        met = used is True
    verdict = "NOT_RUN" if statement is None else "PASS" if met else "FAIL"
    return {
        "capability": setting.capability,
        "needed": setting.value,
        "used": used,
        "reason": setting.reason,
        "level": "MUST",
        "verdict": verdict,
    }


def local_block(
    profile: LocalProfile, checks: Sequence[CheckResult], national: Mapping[str, Any], errors: Sequence[str] = ()
) -> dict[str, Any]:
    """``result["local_profile"]``: the profile, its deviations and the local verdict.

    ``checks``: the results of the local checks (each naming only the profile's IDs);
    ``national``: the run's national result; ``errors``: problems of the local part alone
    (a council check naming an unknown local ID). A local requirement whose check kind
    builds on a later phase than the run's is NOT_APPLICABLE.
    """
    from conformance.spec.catalogue import phase_includes

    phase = str(national.get("phase"))
    requirements = []
    for req in profile.requirements:
        mine = sorted((c for c in checks if req.id in c.requirements), key=lambda c: c.id)
        verdict = derive_requirement_verdict(req.id, mine, applicable=phase_includes(phase, req.phase))
        requirements.append(dict(req.to_json(), verdict=verdict.value, checks=[c.to_json() for c in mine]))
    about = (national.get("target") or {}).get("about")
    statement = national.get("capabilities") or {} if isinstance(about, Mapping) else None  # None: no /about read
    capabilities = [_capability_entry(s, statement) for s in profile.capabilities]
    national_verdicts = {r.get("id"): r.get("verdict") for r in national.get("requirements") or []}
    not_needed = [
        {
            "id": item.id,
            "level": item.level,
            "reason": item.reason,
            "national_verdict": national_verdicts.get(item.id),  # None: not in this run's scope
        }
        for item in profile.not_needed
    ]
    judged = [{"level": r["level"], "area": "local", "verdict": r["verdict"]} for r in requirements]
    judged += [{"level": "MUST", "area": "capability", "verdict": c["verdict"]} for c in capabilities]
    overall, counts, _ = roll_up(judged, errors)
    if not judged:
        overall_word = "INCONCLUSIVE"
    else:
        overall_word = WORDS[overall.value]
    return {
        "format": BLOCK_FORMAT,
        "council": profile.council,
        "code": profile.code,
        "title": profile.title,
        "file": profile.source,
        "sha256": profile.sha256,
        "bundled_as": PROFILE_IN_BUNDLE,
        "verdict": overall_word,
        "counts": counts,
        "requirements": requirements,
        "capabilities": capabilities,
        "not_needed": not_needed,
        "deviations": deviations(profile),
        "errors": list(errors),
    }


def local_problem(block: Mapping[str, Any], raw: bytes, national: Mapping[str, Any]) -> str | None:
    """Why ``block`` is not what the profile bytes ``raw`` and its recorded checks give (None: it is)."""
    import hashlib

    from conformance.errors import UsageError

    if hashlib.sha256(raw).hexdigest() != block.get("sha256"):
        return "the carried profile is not the one the certificate records (sha256 differs)"
    try:
        profile = parse_profile(raw, str(block.get("file")))
    except UsageError as exc:
        return f"the carried profile does not validate: {exc}"
    checks: dict[str, CheckResult] = {}
    for record in block.get("requirements") or []:
        for raw_check in record.get("checks") or []:
            try:
                check = CheckResult.from_json(raw_check)
            except (KeyError, TypeError, ValueError) as exc:
                return f"local requirement {record.get('id')}: malformed check ({exc})"
            outside = [r for r in check.requirements if r not in profile.ids]
            if outside:
                return f"local check {check.id} names {', '.join(outside)}, not a requirement of the profile"
            if check.id in checks and checks[check.id].to_json() != check.to_json():
                return f"local check {check.id} is recorded differently under two requirements"
            checks[check.id] = check
    expected = local_block(profile, list(checks.values()), national, [str(e) for e in block.get("errors") or []])
    for key in sorted(set(expected) | set(block)):
        if expected.get(key) != block.get(key):
            return f"local_profile {key} is not what the profile and the recorded local checks give"
    return None


def local_lines(result: Mapping[str, Any]) -> list[str]:
    """Terminal lines for a run with a local profile (empty without one): the two verdicts side by side."""
    from conformance.results.text import printable

    block = result.get("local_profile")
    if not isinstance(block, Mapping):
        return []
    national = str(result.get("verdict", "")).replace("_", " ")
    local = str(block.get("verdict", "")).replace("_", " ")
    code = f" ({block.get('code')})" if block.get("code") else ""
    lines = [
        f"  local profile: {printable(str(block.get('council')))}{code}, {printable(str(block.get('file')))} "
        f"sha256 {str(block.get('sha256'))[:16]}…",
        f"  verdicts (never merged): national phase {result.get('phase')}: {national}   |   local: {local}",
        "  deviations from the national catalogue:",
    ]
    lines += [f"    - {printable(str(d.get('text')))}" for d in block.get("deviations") or []] or ["    (none)"]
    for record in block.get("requirements") or []:
        if record.get("verdict") in ("FAIL", "ERROR", "NOT_RUN"):
            lines.append(f"  local {record.get('verdict')}: {record.get('id')} ({record.get('level')})")
            for check in record.get("checks") or []:
                if check.get("verdict") in ("FAIL", "ERROR") and check.get("message"):
                    lines_of = str(check["message"]).splitlines() or [""]
                    first = printable(" ".join(lines_of[:2]))[:240]
                    lines.append(f"      {first}")
    for entry in block.get("capabilities") or []:
        if entry.get("verdict") == "FAIL":
            lines.append(
                f"  local FAIL: capability {entry.get('capability')} needed {entry.get('needed')}, "
                f"the run used {entry.get('used')}"
            )
    for item in block.get("not_needed") or []:
        if item.get("national_verdict") in ("FAIL", "ERROR"):
            lines.append(
                f"  not needed locally: {item.get('id')} ({item.get('level')}) is {item.get('national_verdict')} nationally"
            )
    for error in block.get("errors") or []:
        lines.append(f"  local error: {printable(str(error), keep_newlines=True)}")
    return lines
