"""Chronologies of the reference store (ICS-1C-CHRON-*), derived by :mod:`conformance.domain.chronology`.

One function serves the API (``GET /children/{id}/chronology``), the bulk export and the
transfer package, so the chronology faults bend all three alike.
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import groupby
from typing import Any

from conformance.domain.chronology import Event, derive_events, order_key
from conformance.reference.store import Store


def events(store: Store, faults: Collection[str], child_id: str | None = None) -> list[dict[str, Any]]:
    """The chronology of one child (or of every child, grouped by child ID) as JSON-ready events."""
    where, params = ("WHERE child_id = ?", (child_id,)) if child_id is not None else ("", ())
    referrals = store.all(f"SELECT id, child_id, received_on FROM referrals {where} ORDER BY seq", params)
    assessments = store.all(
        f"SELECT id, child_id, start_date, completed_on, status FROM assessments {where} ORDER BY seq", params
    )
    allocations = store.all(f"SELECT id, child_id, start_date, end_date FROM allocations {where} ORDER BY seq", params)
    visit_where = "WHERE a.child_id = ?" if child_id is not None else ""
    visits = store.all(
        "SELECT v.id, v.assessment_id, v.visit_date, v.child_seen FROM visits v "
        f"JOIN assessments a ON a.id = v.assessment_id {visit_where} ORDER BY v.seq",
        params,
    )
    for visit in visits:
        visit["child_seen"] = bool(visit["child_seen"])
    return from_records(faults, referrals=referrals, assessments=assessments, visits=visits, allocations=allocations)


def from_records(
    faults: Collection[str],
    *,
    referrals: list[dict[str, Any]],
    assessments: list[dict[str, Any]],
    visits: list[dict[str, Any]],
    allocations: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The chronology of the given records (grouped by child, each child's in order), the chronology faults applied."""
    derived = derive_events(referrals=referrals, assessments=assessments, visits=visits, allocations=allocations)
    if "chronology-misses-seen-visits" in faults:
        derived = [e for e in derived if e.type != "child_seen"]
    if "chronology-links-assessment-for-visits" in faults:
        assessment_of = {v["id"]: v["assessment_id"] for v in visits}
        derived = [e._replace(source_id=assessment_of[e.source_id]) if e.type == "child_seen" else e for e in derived]
    out: list[Event] = []
    for _, group in groupby(sorted(derived, key=lambda e: e.child_id), key=lambda e: e.child_id):
        out.extend(sorted(group, key=order_key, reverse="chronology-newest-first" in faults))
    return [e.to_json() for e in out]
