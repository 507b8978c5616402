"""The human report: one self-contained ``report.html`` (and optionally ``report.pdf``).

Rendered with Jinja2 from ``conformance/templates/report.html.j2`` with autoescape on
for everything. Target-supplied strings (about fields, names, URLs, messages, evidence)
are only ever text: no target URL becomes a link, no inline script exists, and a
Content-Security-Policy forbids scripts and any fetch. The page reads top-down for a
council manager: verdict and what was tested, the requirement matrix by area, each
failure with its reproduction, then the (redacted) evidence.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from conformance.errors import EXIT_USAGE, ConformanceError

__all__ = ["ChromiumError", "find_chromium", "render_html", "run_headless", "target_identity", "write_pdf"]

_VERDICT_CLASSES = {
    "PASS": "pass",
    "FAIL": "fail",
    "ERROR": "error",
    "WAIVED": "waived",
    "NOT_APPLICABLE": "na",
    "SKIPPED": "skipped",
    "NOT_RUN": "notrun",
    "CERTIFIED": "pass",
    "NOT_CERTIFIED": "fail",
    "INCONCLUSIVE": "error",
    "MET": "pass",
    "NOT_MET": "fail",
}
_VERDICT_LABELS = {
    "NOT_APPLICABLE": "NOT APPLICABLE",
    "NOT_RUN": "NOT RUN",
    "NOT_CERTIFIED": "NOT CERTIFIED",
    "NOT_MET": "NOT MET",
}
_VERDICT_ORDER = ("FAIL", "ERROR", "WAIVED", "SKIPPED", "NOT_RUN", "NOT_APPLICABLE", "PASS")
_AREA_NAMES = {
    "records": "Child records",
    "referrals": "Referrals",
    "allocations": "Allocations",
    "case-notes": "Case notes",
    "timescales": "Timescales",
    "assessments": "Assessments",
    "export": "Bulk export",
    "contract": "API contract",
    "search": "Search",
    "notifications": "Notifications",
    "gating": "Assessment gating (child seen)",
    "access": "Access control",
    "transfer": "Inter-council transfer",
    "audit": "Audit",
    "shielding": "Shielded records",
    "visits": "Visits",
    "chronology": "Chronology",
}
_EVIDENCE_TEXT_LIMIT = 8000
#: Lines of a check message printed in the PDF summary (the HTML report has them all).
_PRINT_MESSAGE_LINES = 3
_PRINT_MESSAGE_CHARS = 300
_SCREEN_FINDINGS, _PRINT_FINDINGS = 500, 40
#: Exchanges shown per failing check and in the whole report (the bundle's evidence/ holds every one).
_CHECK_EXCHANGES, _REPORT_EXCHANGES = 30, 200
#: What a failure in each area means, for a council manager (above the HTTP detail).
_PLAIN = {
    "records": "Child records may not be stored or read back exactly as entered.",
    "referrals": "Referrals may not be recorded or followed up correctly.",
    "allocations": "It may be wrong or unclear which worker a child is allocated to.",
    "case-notes": "Case notes may be lost, altered or shown to the wrong people.",
    "timescales": "Statutory timescales (in working days) may be worked out wrongly, so deadlines shown are wrong.",
    "assessments": "Assessments may be recorded or tracked incorrectly.",
    "export": "The bulk export may be incomplete or wrong: data cannot be moved or audited reliably.",
    "contract": "The system does not keep to the agreed interface: other systems may misread what it sends.",
    "search": "A search may miss a child who is on the system (for example a name typed without its accent).",
    "notifications": "Workers may not be told when a new case note is recorded for a child they work with.",
    "gating": "An assessment can be recorded as complete although no one has seen the child.",
    "access": "People may see or change records they should not.",
    "transfer": "A child's record may not move correctly from one council to another.",
    "audit": "Who looked at or changed a record may not be recorded.",
    "shielding": "Shielded (protected) records may be shown to people who should not see them.",
    "visits": "Visits to the child may not be recorded correctly.",
    "chronology": "A child's chronology (the timeline of events) may be incomplete or wrong.",
}
_ANCHOR_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ChromiumError(ConformanceError):
    """Headless Chromium is missing, failed or timed out (exit 2: fix the environment)."""

    exit_code = EXIT_USAGE


def _anchor(value: Any) -> str:
    return "req-" + _ANCHOR_UNSAFE.sub("_", str(value))[:120]


def _detail_anchor(value: Any) -> str:
    return "detail-" + _ANCHOR_UNSAFE.sub("_", str(value))[:120]


def _check_anchor(value: Any) -> str:
    """A stable anchor for a check (its node ID may be long and hold any character)."""
    import hashlib

    return "check-" + hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:16]


def _verdict_class(value: Any) -> str:
    return _VERDICT_CLASSES.get(str(value), "unknown")


def _verdict_label(value: Any) -> str:
    value = str(value)
    return _VERDICT_LABELS.get(value, value)


def _pretty(value: Any) -> str:
    """Readable text for an evidence body or example (always rendered escaped)."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > _EVIDENCE_TEXT_LIMIT:
        text = text[:_EVIDENCE_TEXT_LIMIT] + f"\n… ({len(text) - _EVIDENCE_TEXT_LIMIT} more characters in evidence/)"
    return text


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("conformance.certificate", "templates"),
        autoescape=True,  # everything, whatever the template name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["anchor"] = _anchor
    env.filters["vclass"] = _verdict_class
    env.filters["vlabel"] = _verdict_label
    env.filters["pretty"] = _pretty
    return env


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _failing_example(check: Mapping[str, Any]) -> str:
    example = check.get("example")
    if example is None:
        for entry in check.get("evidence") or []:
            if isinstance(entry, Mapping) and entry.get("kind") in ("example", "falsifying-example", "hypothesis"):
                example = entry.get("example", entry.get("data", entry))
                break
    return _pretty(example)


def _exchange(entry: Mapping[str, Any]) -> dict[str, Any]:
    raw_request, raw_response = entry.get("request"), entry.get("response")
    request: Mapping[str, Any] = raw_request if isinstance(raw_request, Mapping) else {}
    response: Mapping[str, Any] = raw_response if isinstance(raw_response, Mapping) else {}
    return {
        "kind": _text(entry.get("kind", "")),
        "method": _text(request.get("method", "")),
        "url": _text(request.get("url", "")),
        "request_headers": {str(k): _text(v) for k, v in (request.get("headers") or {}).items()}
        if isinstance(request.get("headers"), Mapping)
        else {},
        "request_body": _pretty(request.get("json", request.get("body"))),
        "status": _text(response.get("status", "")),
        "response_headers": {str(k): _text(v) for k, v in (response.get("headers") or {}).items()}
        if isinstance(response.get("headers"), Mapping)
        else {},
        "response_body": _pretty(response.get("json", response.get("body"))),
        "error": _text(entry.get("error", "")),
        "other": ""
        if entry.get("kind") == "http"
        else _pretty({k: v for k, v in entry.items() if k not in ("request", "response")}),
    }


def _pair(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The peer of a pair run (phase 1C), for the report: its system, verdict and what it broke."""
    peer = result.get("peer")
    if not isinstance(peer, Mapping):
        return None
    system = peer.get("target") or {}
    about = system.get("about") or {}
    requirements = [r for r in peer.get("requirements") or [] if isinstance(r, Mapping)]
    failures = [
        {
            "id": _text(r.get("id")),
            "verdict": _text(r.get("verdict")),
            "messages": [
                _text(c.get("message")) for c in r.get("checks") or [] if c.get("verdict") in ("FAIL", "ERROR")
            ],
        }
        for r in requirements
        if r.get("verdict") in ("FAIL", "ERROR")
    ]
    own_about = (result.get("target") or {}).get("about") or {}
    return {
        "url": _text(system.get("url")),
        "council": _text(about.get("council")),
        "builtin": bool(system.get("builtin_reference")),
        "faults": [_text(f) for f in system.get("faults") or []],
        "verdict": _text(peer.get("verdict")),
        "failed": [f["id"] for f in failures],
        "failures": failures,
        "target_council": _text(own_about.get("council")),
        "target_failed": [
            _text(r.get("id")) for r in result.get("requirements") or [] if r.get("verdict") in ("FAIL", "ERROR")
        ],
    }


def _local(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The council local profile of the run, for the report: the profile, deviations and the local verdict."""
    block = result.get("local_profile")
    if not isinstance(block, Mapping):
        return None
    requirements = []
    for req in block.get("requirements") or []:
        if not isinstance(req, Mapping):
            continue
        checks = [
            {
                "id": _text(c.get("id")),
                "verdict": _text(c.get("verdict")),
                "message": _text(c.get("message")),
                "reproduce": _text(c.get("reproduce")),
            }
            for c in req.get("checks") or []
            if isinstance(c, Mapping) and c.get("verdict") in ("FAIL", "ERROR")
        ]
        requirements.append(
            {
                "id": _text(req.get("id")),
                "level": _text(req.get("level")),
                "title": _text(req.get("title")),
                "statement": _text(req.get("statement")),
                "kind": _text(req.get("kind")),
                "reason": _text(req.get("reason")),
                "verdict": _text(req.get("verdict")),
                "checks": checks,
            }
        )
    return {
        "council": _text(block.get("council")),
        "code": _text(block.get("code")),
        "title": _text(block.get("title")),
        "file": _text(block.get("file")),
        "sha256": _text(block.get("sha256")),
        "bundled_as": _text(block.get("bundled_as")),
        "verdict": _text(block.get("verdict")),
        "requirements": requirements,
        "deviations": [
            {"type": _text(d.get("type")), "text": _text(d.get("text")), "reason": _text(d.get("reason"))}
            for d in block.get("deviations") or []
            if isinstance(d, Mapping)
        ],
        "capabilities": [
            {
                "capability": _text(c.get("capability")),
                "needed": _flag(c.get("needed")),
                "used": _flag(c.get("used")),
                "reason": _text(c.get("reason")),
                "verdict": _text(c.get("verdict")),
            }
            for c in block.get("capabilities") or []
            if isinstance(c, Mapping)
        ],
        "not_needed": [
            {
                "id": _text(n.get("id")),
                "level": _text(n.get("level")),
                "reason": _text(n.get("reason")),
                "national_verdict": _text(n.get("national_verdict") or "not in scope"),
            }
            for n in block.get("not_needed") or []
            if isinstance(n, Mapping)
        ],
        "errors": [_text(e) for e in block.get("errors") or []],
    }


def _first_line(text: str) -> str:
    from conformance.results.text import headline

    return headline(text)


def _blamed(req: Mapping[str, Any]) -> list[dict[str, Any]]:
    from conformance.results.result import blamed_checks

    return blamed_checks(req)


def _why_not_judged(req: Mapping[str, Any], result: Mapping[str, Any], switched_off: set[str]) -> str:
    """Why a requirement has no PASS/FAIL verdict, in one sentence."""
    verdict, capability = _text(req.get("verdict")), _text(req.get("capability"))
    checks = [c for c in req.get("checks") or [] if isinstance(c, Mapping)]
    if verdict == "NOT_APPLICABLE":
        if capability in switched_off:
            return f"capability {capability} was switched off for this run (--capabilities), although the system declares it"
        if capability:
            return (
                f"the system does not declare capability {capability} (GET /about), so this requirement does not apply"
            )
        reasons = [_first_line(_text(c.get("message"))) for c in checks if c.get("message")]
        return reasons[0] if reasons else "does not apply to this system"
    if verdict == "NOT_RUN":
        if not checks:
            if result.get("selection"):
                return "no check of this requirement was selected (the run was a -k / -m subset)"
            if any("interrupted" in _text(e) for e in result.get("errors") or []):
                return "the run was interrupted before a check of this requirement ran"
            return "no check of this run covers it"
        earlier = sorted({_text(r) for c in checks for r in c.get("failed_requirements") or []} - {req.get("id")})
        if earlier:
            return (
                f"not judged: {'its check stops' if len(checks) == 1 else 'each of its checks stops'} at the first "
                f"violation it meets, and met one of {', '.join(earlier)} first; fix that and re-run"
            )
        return "not judged: its checks ended before reaching it"
    reasons = [_first_line(_text(c.get("message"))) for c in checks if c.get("message")]
    return reasons[0] if reasons else verdict.lower().replace("_", " ")


def _check_view(check: Mapping[str, Any], *, message_lines: int | None, budget: list[int]) -> dict[str, Any]:
    message = _text(check.get("message"))
    clipped = False
    if message_lines is not None:
        lines = message.splitlines()
        if len(lines) > message_lines:
            message, clipped = "\n".join(lines[:message_lines]), True
        if len(message) > _PRINT_MESSAGE_CHARS:
            message, clipped = message[:_PRINT_MESSAGE_CHARS] + " …", True
    entries = [e for e in check.get("evidence") or [] if isinstance(e, Mapping)]
    shown = entries[: min(_CHECK_EXCHANGES, max(budget[0], 0))]
    budget[0] -= len(shown)
    exchanges = [_exchange(e) for e in shown]
    return {
        "id": _text(check.get("id")),
        "anchor": _check_anchor(check.get("id")),
        "kind": _text(check.get("kind")),
        "verdict": _text(check.get("verdict")),
        "message": message,
        "clipped": clipped,
        "example": _failing_example(check),
        "reproduce": _text(check.get("reproduce")),
        "exchanges": exchanges,
        "exchanges_total": len(entries),
    }


def _failures(
    requirements: Sequence[Mapping[str, Any]], side_effects: Mapping[str, Sequence[str]], *, message_lines: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The first screen's list (root causes, side effects under them), the details (each check once), and the
    failing checks that have evidence (the PDF's appendix)."""
    failing = [r for r in requirements if r.get("verdict") in ("FAIL", "ERROR")]
    failing_ids = {_text(r.get("id")) for r in failing}
    causes_of = {
        rid: [c for c in causes if c in failing_ids]
        for rid, causes in side_effects.items()
        if rid in failing_ids and any(c in failing_ids and c != rid for c in causes)
    }

    def line(req: Mapping[str, Any]) -> dict[str, Any]:
        rid = _text(req.get("id"))
        blamed = _blamed(req)
        first = next((_first_line(_text(c.get("message"))) for c in blamed if c.get("message")), "")
        return {
            "id": rid,
            "anchor": _detail_anchor(rid),
            "title": _text(req.get("title")),
            "level": _text(req.get("level")),
            "verdict": _text(req.get("verdict")),
            "plain": _PLAIN.get(_text(req.get("area")), ""),
            "first": first,
            "causes": causes_of.get(rid, []),
            "side_effects": [],
        }

    lines = {_text(r.get("id")): line(r) for r in failing}
    roots = [lines[_text(r.get("id"))] for r in failing if _text(r.get("id")) not in causes_of]
    for rid, causes in causes_of.items():
        lines[causes[0]]["side_effects"].append(lines[rid])
    roots.sort(key=lambda x: (x["verdict"] != "FAIL", x["level"] != "MUST"))

    details: list[dict[str, Any]] = []
    shown: dict[str, str] = {}
    appendix: list[dict[str, Any]] = []
    budget = [_REPORT_EXCHANGES]  # exchanges rendered in the whole report; all of them are in evidence/
    for req in requirements:
        if req.get("verdict") not in ("FAIL", "ERROR", "WAIVED"):
            continue
        rid = _text(req.get("id"))
        checks, also = [], []
        for check in _blamed(req):
            cid = _text(check.get("id"))
            if cid in shown:
                also.append({"id": cid, "anchor": _check_anchor(cid), "under": shown[cid]})
                continue
            shown[cid] = rid
            checks.append(_check_view(check, message_lines=message_lines, budget=budget))
            if checks[-1]["exchanges_total"]:
                appendix.append(dict(checks[-1], requirement=rid))
        more = 0
        if message_lines is not None and len(checks) > 1:  # print: one check per requirement, the rest in the HTML
            more, checks = len(checks) - 1, checks[:1]
        details.append(
            {
                "more": more,
                "req": req,
                "anchor": _detail_anchor(rid),
                "plain": _PLAIN.get(_text(req.get("area")), ""),
                "causes": causes_of.get(rid, []),
                "checks": checks,
                "also": also,
            }
        )
    return roots, details, appendix


def _plain_lines(requirements: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """What the failures mean, once per failing area, in plain language."""
    areas = dict.fromkeys(_text(r.get("area")) for r in requirements if r.get("verdict") in ("FAIL", "ERROR"))
    return [(_AREA_NAMES.get(a, a), _PLAIN[a]) for a in areas if a in _PLAIN]


def _view(
    result: Mapping[str, Any],
    evidence: Sequence[Mapping[str, Any]],
    manifest_info: Mapping[str, Any],
    *,
    medium: str = "screen",
    appendix: bool = False,
) -> dict[str, Any]:
    target = result.get("target") or {}
    about = target.get("about") or {}
    requirements = [r for r in result.get("requirements") or [] if isinstance(r, Mapping)]
    areas: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for req in requirements:
        areas[str(req.get("area", "other"))].append(req)
    matrix = [{"key": area, "name": _AREA_NAMES.get(area, area), "requirements": reqs} for area, reqs in areas.items()]
    raw_effects = result.get("side_effects")
    side_effects = (
        {str(k): [str(c) for c in v] for k, v in raw_effects.items() if isinstance(v, list)}
        if isinstance(raw_effects, Mapping)
        else {}
    )
    printing = medium == "print"
    failed, details, appendix_checks = _failures(
        requirements, side_effects, message_lines=_PRINT_MESSAGE_LINES if printing else None
    )
    overrides = [o for o in result.get("capability_overrides") or [] if isinstance(o, Mapping)]
    switched_off = {str(o.get("capability")) for o in overrides if o.get("weakens")}
    not_judged = [
        {
            "id": _text(r.get("id")),
            "anchor": _anchor(r.get("id")),
            "title": _text(r.get("title")),
            "level": _text(r.get("level")),
            "verdict": _text(r.get("verdict")),
            "why": _why_not_judged(r, result, switched_off),
        }
        for r in requirements
        if r.get("verdict") in ("NOT_RUN", "NOT_APPLICABLE", "SKIPPED")
    ]
    not_judged.sort(key=lambda x: (x["verdict"] == "NOT_APPLICABLE", x["level"] != "MUST"))
    run_exchanges = [_exchange(e) for e in evidence if isinstance(e, Mapping)]
    counts = result.get("counts") or {}
    verdict = _text(result.get("verdict") or "INCONCLUSIVE")
    must_fail = sum(1 for r in requirements if r.get("level") == "MUST" and r.get("verdict") == "FAIL")
    errors = sum(1 for r in requirements if r.get("verdict") == "ERROR") + len(result.get("errors") or [])
    if verdict == "CERTIFIED":
        summary = (
            "Every in-scope MUST requirement passed, was waived by a signed waiver, or does not apply to this system."
        )
    elif verdict == "NOT_CERTIFIED":
        summary = (
            f"{must_fail} MUST requirement{'s' if must_fail != 1 else ''} failed. "
            "Each is listed below in one line, with a link to what was observed and how to reproduce it."
        )
    elif any(_text(e).startswith("interrupted") for e in result.get("errors") or []):
        summary = "The run was interrupted before every check had finished, so it is not judged (INCONCLUSIVE)."
    else:
        summary = (
            "The run could not be judged: some checks could not run or did not complete "
            f"({errors} error{'s' if errors != 1 else ''}). This is not a finding against the supplier."
        )
    selection = result.get("selection")
    if isinstance(selection, Mapping):
        summary += (
            f" Only a subset of the checks ran, so the phase verdict is {'NOT CERTIFIED because a MUST failed' if verdict == 'NOT_CERTIFIED' else 'INCONCLUSIVE by design'}; "
            f"the subset's own result is {_verdict_label(selection.get('verdict'))} over the "
            f"{_text(selection.get('judged'))} of {_text(selection.get('in_scope'))} requirements it judged."
        )
    spec = result.get("spec") or {}
    harness = result.get("harness") or {}
    waivers = result.get("waivers") or {}
    return {
        "medium": medium,
        "appendix": appendix and printing,
        "appendix_checks": appendix_checks if appendix and printing else [],
        "assurance": _assurance(manifest_info.get("signer")),
        "certificate_sha256": _text(manifest_info.get("certificate_sha256")),
        "council": _text(result.get("council")),
        "adapter": _adapter(result),
        "target_identity": target_identity(result),
        "overrides": [
            {
                "capability": _text(o.get("capability")),
                "declared": _flag(o.get("declared")),
                "used": _flag(o.get("used")),
                "weakens": bool(o.get("weakens")),
            }
            for o in overrides
        ],
        "override_not_applicable": [
            _text(r.get("id"))
            for r in requirements
            if r.get("verdict") == "NOT_APPLICABLE" and r.get("level") == "MUST" and r.get("capability") in switched_off
        ],
        "verdict": verdict,
        "summary": summary,
        "draft": bool(result.get("draft")),
        "pair": _pair(result),
        "local": _local(result),
        "phase": _text(result.get("phase")),
        "supplier": _text(about.get("supplier")) or "unknown supplier",
        "product": _text(about.get("product")) or "unknown product",
        "version": _text(about.get("version")) or "unknown",
        "target_url": _text(target.get("url")),
        "builtin_reference": bool(target.get("builtin_reference")),
        "faults": [_text(f) for f in target.get("faults") or []],
        "export": _text(target.get("export")) if target.get("export") else "",
        "channels": ", ".join(_text(c) for c in result.get("channels") or []),
        "profile": _text(result.get("profile")) or "default",
        "seed": _text(result.get("seed")),
        "started_at": _text(result.get("started_at")),
        "finished_at": _text(result.get("finished_at")),
        "run_id": _text(result.get("run_id")),
        "command": _text(result.get("command")),
        "spec_version": _text(spec.get("version")),
        "spec_sha256": _text(spec.get("sha256")),
        "harness_version": _text(harness.get("version")),
        "python": _text(harness.get("python")),
        "dependencies": sorted((str(k), _text(v)) for k, v in (harness.get("dependencies") or {}).items()),
        "capabilities": sorted((str(k), _text(v)) for k, v in (result.get("capabilities") or {}).items()),
        "counts": [(v, counts[v]) for v in _VERDICT_ORDER if counts.get(v)],
        "total": len(requirements),
        "matrix": matrix,
        "failed": failed,
        "plain": _plain_lines(requirements),
        "waived": [_text(r.get("id")) for r in requirements if r.get("verdict") == "WAIVED"],
        "passed": [_text(r.get("id")) for r in requirements if r.get("verdict") == "PASS"],
        "not_judged": not_judged,
        "details": details,
        "run_errors": [_text(e) for e in result.get("errors") or []],
        "findings": [f for f in result.get("findings") or [] if isinstance(f, Mapping)],
        "findings_limit": _PRINT_FINDINGS if printing else _SCREEN_FINDINGS,
        "waivers_applied": list(waivers.get("applied") or []),
        "waivers_unmatched": list(waivers.get("unmatched") or []),
        "waivers_refused": list(waivers.get("refused") or []),
        "waiver_file": waivers.get("file") or {},
        "run_exchanges": run_exchanges,
        "bundle": dict(manifest_info),
    }


def _adapter(result: Mapping[str, Any]) -> dict[str, str] | None:
    """The supplier adapter the run went through, as the report states it (None without one)."""
    from conformance.results.result import adapter_text

    adapter = result.get("adapter")
    if not isinstance(adapter, Mapping):
        return None
    return {
        "text": _text(adapter_text(result)),
        "name": _text(adapter.get("name")),
        "version": _text(adapter.get("version")),
        "sha256": _text(adapter.get("sha256")),
        "entry_point": _text(adapter.get("entry_point")),
    }


def target_identity(result: Mapping[str, Any]) -> str:
    """sha256 of the target's supplier, product, version (from ``/about``) and the council, as the report states it.

    A digest, not the names: target-supplied text never goes into an attribute of the page.
    """
    import hashlib

    about = (result.get("target") or {}).get("about") or {}
    about = about if isinstance(about, Mapping) else {}
    facts = [_text(about.get(k)) for k in ("supplier", "product", "version")] + [_text(result.get("council"))]
    return hashlib.sha256(json.dumps(facts, ensure_ascii=False).encode("utf-8")).hexdigest()


def _flag(value: Any) -> str:
    return "true" if value is True else "false" if value is False else _text(value)


def _assurance(signer: Any) -> dict[str, str]:
    """The assurance level as the report states it (first screen and a meta element)."""
    if not isinstance(signer, Mapping):
        return {
            "level": "unsigned",
            "label": "NOT SIGNED",
            "text": "This bundle is not signed: it proves nothing about who ran the checks.",
        }
    level = _text(signer.get("assurance"))
    key = _text(signer.get("key_id"))
    party, role = _text(signer.get("party")), _text(signer.get("role"))
    who = f"{party} ({role})" if party else f"the holder of key {key}"
    if level == "witnessed":
        text = f"Run and signed by {who}, a party independent of the supplier of the system tested. Key {key}."
    else:
        text = f"Run and signed by {who} for a system of its own; no independent party witnessed the run. Key {key}."
        if not party:
            text += " The signer was not named by a keyring when the bundle was written."
    return {"level": level, "label": level.upper(), "text": text}


def render_html(
    result: Mapping[str, Any],
    *,
    evidence: Sequence[Mapping[str, Any]] = (),
    bundle_info: Mapping[str, Any] | None = None,
    medium: str = "screen",
    appendix: bool = False,
) -> str:
    """Render the report for ``result`` (already redacted) as one self-contained HTML page.

    ``bundle_info`` adds the bundle name, redaction policy and signing key id to the footer.
    ``medium="print"`` is the page printed to PDF: an A4 summary with page numbers, long
    messages clipped, and the evidence only as an appendix when ``appendix`` is true.
    Control characters and bidi overrides from the target are shown escaped (``\u202e``),
    never acted on.
    """
    from conformance.results.text import printable_tree

    if medium not in ("screen", "print"):
        raise ValueError(f"medium must be 'screen' or 'print', not {medium!r}")
    view = _view(
        printable_tree(dict(result)),
        printable_tree(list(evidence)),
        printable_tree(dict(bundle_info or {})),
        medium=medium,
        appendix=appendix,
    )
    return _environment().get_template("report.html.j2").render(**view)


def find_chromium(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """Return the Chromium executable: ``explicit``, ``$ICS_CHROMIUM``, or one on ``PATH``."""
    for candidate in (explicit, os.environ.get("ICS_CHROMIUM")):
        if candidate:
            return str(candidate) if Path(candidate).exists() else shutil.which(str(candidate))
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def run_headless(
    html_path: Path,
    *args: str,
    timeout: float = 60.0,
    chromium: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on a local HTML file with extra ``args`` (e.g. ``--dump-dom``).

    Networking is cut off (every host name resolves nowhere); a fresh profile directory is
    used and removed. Raises :class:`ChromiumError` if Chromium is absent, fails or times out.
    """
    executable = find_chromium(chromium)
    if executable is None:
        raise ChromiumError(
            "headless Chromium is needed for this (Debian/Ubuntu: apt-get install chromium; "
            "or set ICS_CHROMIUM to the browser executable)"
        )
    with tempfile.TemporaryDirectory(prefix="ics-chromium-") as profile:
        command = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}",
            *args,
            Path(html_path).resolve().as_uri(),
        ]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, "HOME": profile},
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.communicate()
            raise ChromiumError(f"headless Chromium did not finish within {timeout:g} s") from exc
    if process.returncode != 0:
        tail = (stderr or "").strip().splitlines()[-3:]
        raise ChromiumError(f"headless Chromium failed (exit {process.returncode}): {' | '.join(tail)}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def write_pdf(html_path: Path, pdf_path: Path, *, timeout: float = 60.0, chromium: str | None = None) -> Path:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium; return ``pdf_path``."""
    pdf_path = Path(pdf_path).resolve()
    pdf_path.unlink(missing_ok=True)
    run_headless(
        html_path,
        f"--print-to-pdf={pdf_path}",
        "--no-pdf-header-footer",
        "--print-to-pdf-no-header",
        timeout=timeout,
        chromium=chromium,
    )
    if not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        raise ChromiumError(f"headless Chromium wrote no PDF to {pdf_path}")
    return pdf_path
