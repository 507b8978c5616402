"""Side effects: failing export requirements that a failing API requirement probably caused.

A system that accepts data it should refuse (a completion without the child seen, an
invalid UPN) lets a check store such a record; the bulk export taken afterwards then
truthfully breaks an export rule too. The fault registry states these links per fault
(``collateral``, docs/design.md section 6); here they become ``result["side_effects"]``
(export requirement -> the failing requirements that probably caused it), so that the
report lists root causes first. For the built-in reference only the injected faults'
links count; for any other system every fault's links are the harness's knowledge of
which failures produce which.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["side_effects"]


def side_effects(result: Mapping[str, Any]) -> dict[str, list[str]]:
    """Failing requirement -> the failing requirements that probably caused it (empty: none)."""
    from conformance.reference.faults import FAULTS

    failing = {str(r.get("id")) for r in result.get("requirements") or [] if r.get("verdict") in ("FAIL", "ERROR")}
    if not failing:
        return {}
    target = result.get("target") or {}
    injected = [str(f) for f in target.get("faults") or []]
    if target.get("builtin_reference") and injected:
        faults = [FAULTS[name] for name in injected if name in FAULTS]
        roots = {t for fault in faults for t in fault.targets}  # what was broken on purpose is never a side effect
    else:
        faults = list(FAULTS.values())
        roots = set()
    out: dict[str, set[str]] = {}
    for fault in faults:
        causes = [t for t in fault.targets if t in failing]
        if not causes:
            continue
        for rid in fault.collateral:
            if rid in failing and rid not in roots:
                out.setdefault(rid, set()).update(causes)
    return {rid: sorted(causes) for rid, causes in sorted(out.items())}
