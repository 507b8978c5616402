"""The chronology oracle (ICS-1C-CHRON-001..003): a child's significant events, derived from its records.

An event is one of six types, each coming from one date field of one record type
(:data:`EVENT_SOURCES`); a child's events are ordered by date, then type, then source ID,
compared in code-point order (:func:`order_key`). The reference service, the checks and the
export rules all derive chronologies here, so they agree on what "complete" and
"ordered" mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["EVENT_SOURCES", "EVENT_TYPES", "Event", "derive_events", "order_key", "source_date"]

#: event type -> (source record type, the record's date field)
EVENT_SOURCES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "referral_received": ("referrals", "received_on"),
        "assessment_started": ("assessments", "start_date"),
        "assessment_completed": ("assessments", "completed_on"),
        "child_seen": ("visits", "visit_date"),
        "allocation_started": ("allocations", "start_date"),
        "allocation_ended": ("allocations", "end_date"),
    }
)
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SOURCES)


class Event(NamedTuple):
    """One significant event of a child's chronology."""

    child_id: str
    date: str
    type: str
    source_type: str
    source_id: str

    def to_json(self) -> dict[str, str]:
        return self._asdict()


def order_key(event: Event | Mapping[str, Any]) -> tuple[str, str, str]:
    """The order of a child's events: date, then type, then source ID (code-point order)."""
    if isinstance(event, Event):
        return (event.date, event.type, event.source_id)
    return (str(event.get("date")), str(event.get("type")), str(event.get("source_id")))


def source_date(event_type: str, record: Mapping[str, Any]) -> str | None:
    """The date ``record`` gives an event of ``event_type`` (None: the record holds no such event)."""
    _, field = EVENT_SOURCES[event_type]
    if event_type == "assessment_completed" and record.get("status", "completed") != "completed":
        return None
    if event_type == "child_seen" and record.get("child_seen") is not True:
        return None
    value = record.get(field)
    return value if isinstance(value, str) and value else None


def derive_events(
    *,
    referrals: Iterable[Mapping[str, Any]] = (),
    assessments: Iterable[Mapping[str, Any]] = (),
    visits: Iterable[Mapping[str, Any]] = (),
    allocations: Iterable[Mapping[str, Any]] = (),
) -> list[Event]:
    """Every significant event of the given records, in chronology order (per child, then by :func:`order_key`).

    Visits belong to the child of their assessment; a visit whose assessment is not among
    ``assessments`` gives no event.
    """
    assessment_list = list(assessments)
    child_of_assessment = {str(a.get("id")): str(a.get("child_id")) for a in assessment_list}
    sources: tuple[tuple[tuple[str, ...], Iterable[Mapping[str, Any]]], ...] = (
        (("referral_received",), referrals),
        (("assessment_started", "assessment_completed"), assessment_list),
        (("allocation_started", "allocation_ended"), allocations),
    )
    events: list[Event] = []
    for types, records in sources:
        for record in records:
            for event_type in types:
                day = source_date(event_type, record)
                if day is not None:
                    source_type = EVENT_SOURCES[event_type][0]
                    events.append(
                        Event(str(record.get("child_id")), day, event_type, source_type, str(record.get("id")))
                    )
    for visit in visits:
        child = child_of_assessment.get(str(visit.get("assessment_id")))
        day = source_date("child_seen", visit)
        if child is not None and day is not None:
            events.append(Event(child, day, "child_seen", "visits", str(visit.get("id"))))
    events.sort(key=lambda e: (e.child_id, *order_key(e)))
    return events
