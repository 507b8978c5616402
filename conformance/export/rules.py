"""Cross-file rules, run by the coordinator over the compact indexes of the scans."""

from __future__ import annotations

from typing import Any

from conformance.export.findings import EXP_DATES, EXP_REFS, EXP_TIMESCALES, FindingSink

_MISSING = object()


def check_referrals(sink: FindingSink, referrals: dict[str, Any], children: dict[str, str | None]) -> None:
    """Referral -> child exists (EXP-005); received on or before the child's death (EXP-006)."""
    for rid, entry in referrals.items():
        if entry is None:
            continue
        child_id, received, line = entry
        death = children.get(child_id, _MISSING)
        if death is _MISSING:
            sink.add(EXP_REFS, "referrals.jsonl", line, "/child_id", f"child_id {child_id!r} not found in children.jsonl")
        elif death is not None and received > death:
            sink.add(EXP_DATES, "referrals.jsonl", line, "/received_on", f"referral received {received}, after the child's date of death {death}")


def check_assessments(
    sink: FindingSink,
    assessments: dict[str, Any],
    children: dict[str, str | None],
    referrals: dict[str, Any],
) -> None:
    """Assessment -> child and referral exist (EXP-005); referral <= start,
    start on or before the child's death (EXP-006)."""
    for aid, entry in assessments.items():
        if entry is None:
            continue
        child_id, referral_id, start, _completed, line = entry
        death = children.get(child_id, _MISSING)
        if death is _MISSING:
            sink.add(EXP_REFS, "assessments.jsonl", line, "/child_id", f"child_id {child_id!r} not found in children.jsonl")
        elif death is not None and start > death:
            sink.add(EXP_DATES, "assessments.jsonl", line, "/start_date", f"assessment started {start}, after the child's date of death {death}")
        if referral_id is None:
            continue
        referral = referrals.get(referral_id, _MISSING)
        if referral is _MISSING:
            sink.add(EXP_REFS, "assessments.jsonl", line, "/referral_id", f"referral_id {referral_id!r} not found in referrals.jsonl")
        elif referral is not None:
            _ref_child, received, _ = referral
            if start < received:
                sink.add(EXP_DATES, "assessments.jsonl", line, "/start_date", f"assessment started {start}, before its referral was received ({received})")


def check_seen(sink: FindingSink, assessments: dict[str, Any], seen_ok: set[str]) -> None:
    """Every completed assessment has a visit with the child seen between start and completion (EXP-008)."""
    for aid, entry in assessments.items():
        if entry is None:
            continue
        _child, _ref, start, completed, line = entry
        if completed is not None and aid not in seen_ok:
            sink.add(
                EXP_TIMESCALES, "assessments.jsonl", line, "/status",
                f"assessment {aid!r} completed on {completed} without a visit seeing the child between {start} and {completed}",
            )
