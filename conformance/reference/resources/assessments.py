"""Assessments, visits and the completion gate."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from conformance.reference import rules
from conformance.reference.openapi import FieldError, Operation
from conformance.reference.service import ApiError, Service, field_error, invalid, json_response
from conformance.reference.store import new_id


class AssessmentRoutes(Service):
    @staticmethod
    def _visit_out(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "assessment_id": row["assessment_id"],
            "visit_date": row["visit_date"],
            "child_seen": bool(row["child_seen"]),
            "seen_alone": None if row["seen_alone"] is None else bool(row["seen_alone"]),
            "not_seen_alone_reason": row.get("not_seen_alone_reason"),
            "recorded_by": row["recorded_by"],
        }

    def _assessment_out(self, row: dict[str, Any]) -> dict[str, Any]:
        today = self.today().isoformat()
        due = row["due_date"]
        late = (date.fromisoformat(due) + timedelta(days=1)).isoformat() if self.has("overdue-grace-day") else due
        open_late = today >= due if self.has("overdue-on-due-day") else today > due
        overdue = (row["status"] == "open" and (open_late or self.has("overdue-open-always"))) or (
            row["status"] == "completed" and (row["completed_on"] or "") > late
        )
        if self.has("visits-not-listed"):
            visits = []
        elif self.has("visits-listed-by-child"):  # every visit of the child, whichever assessment it is on
            visits = self.store.all(
                "SELECT v.* FROM visits v JOIN assessments a ON v.assessment_id = a.id WHERE a.child_id = ? "
                "ORDER BY v.seq",
                (row["child_id"],),
            )
        else:
            visits = self.store.all("SELECT * FROM visits WHERE assessment_id = ? ORDER BY seq", (row["id"],))
        out = {
            k: row[k]
            for k in (
                "id",
                "child_id",
                "referral_id",
                "type",
                "start_date",
                "due_date",
                "status",
                "completed_on",
                "authorised_by",
            )
        }
        out["overdue"] = False if self.has("overdue-never") else overdue
        out["visits"] = [self._visit_out(v) for v in visits]
        return out

    def _assessment_row(self, assessment_id: str) -> dict[str, Any]:
        row = self.store.get("assessments", assessment_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no assessment {assessment_id!r}")
        return row

    async def start_assessment(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        body = await self._body(request, op)
        start = date.fromisoformat(body["start_date"])
        horizon = self.today() + timedelta(days=1 if self.has("assessment-accepts-tomorrow") else 0)
        if self.has("assessment-refuses-today") and start == self.today():
            raise field_error("DATE_IN_FUTURE", "start_date", "is in the future")
        if start > horizon and not self.has("assessment-accepts-future-start"):
            raise field_error("DATE_IN_FUTURE", "start_date", "is in the future")
        referral_id = body.get("referral_id")
        if referral_id is not None:
            referral = self.store.get("referrals", referral_id)
            if referral is None or referral["child_id"] != child_id:
                raise invalid([FieldError("referral_id", "no such referral for this child")])
            received = date.fromisoformat(referral["received_on"])
            if self.has("assessment-referral-off-by-one"):
                received -= timedelta(days=1)
            if start < received:
                raise field_error("DATE_ORDER", "start_date", "is before the referral was received")
        try:
            due = rules.due_date(body["type"], start, self.faults).isoformat()
        except (OverflowError, ValueError):
            raise invalid([FieldError("start_date", "out of the supported range")]) from None
        with self.store.lock:
            if not self.has("gating-allows-second-open") and self.store.one(
                "SELECT id FROM assessments WHERE child_id = ? AND status = 'open'", (child_id,)
            ):
                raise ApiError(409, "ASSESSMENT_ALREADY_OPEN", "the child already has an open assessment")
            row = {
                "id": new_id("as"),
                "child_id": child_id,
                "referral_id": referral_id,
                "type": body["type"],
                "start_date": body["start_date"],
                "due_date": due,
                "status": "open",
                "completed_on": None,
                "authorised_by": None,
            }
            self.store.insert("assessments", row)
        return json_response(self._assessment_out(row), 201)

    def list_assessments(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        rows = self.store.all("SELECT * FROM assessments WHERE child_id = ? ORDER BY seq", (child_id,))
        return json_response({"items": [self._assessment_out(r) for r in rows]})

    def get_assessment(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        return json_response(self._assessment_out(self._assessment_row(request.path_params["assessment_id"])))

    async def record_visit(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        assessment = self._assessment_row(request.path_params["assessment_id"])
        body = await self._body(request, op)
        if assessment["status"] != "open":
            raise ApiError(409, "ASSESSMENT_NOT_OPEN", "the assessment is not open")
        visit_date = body["visit_date"]
        if visit_date > self._horizon() and not self.has("gating-accepts-future-seen"):
            raise field_error("DATE_IN_FUTURE", "visit_date", "is in the future")
        if self.has("visits-today-refused") and visit_date == self.today().isoformat():
            raise field_error("DATE_IN_FUTURE", "visit_date", "is in the future")
        if visit_date < self._earliest_visit(assessment) and not self.has("gating-ignores-start-date"):
            raise field_error("DATE_ORDER", "visit_date", "is before the assessment start")
        if body.get("seen_alone") and not body["child_seen"] and not self.has("seen-alone-unseen-accepted"):
            raise invalid([FieldError("seen_alone", "cannot be true when the child was not seen")])
        seen_alone = None if self.has("seen-alone-not-recorded") else body.get("seen_alone")
        reason = body.get("not_seen_alone_reason")
        seen_not_alone = bool(body["child_seen"]) and body.get("seen_alone") is False
        if seen_not_alone and reason is None and not self.has("not-alone-reason-optional"):
            raise invalid([FieldError("not_seen_alone_reason", "required when the child was seen but not alone")])
        if reason is not None and not seen_not_alone:
            raise invalid([FieldError("not_seen_alone_reason", "only for a child seen but not alone")])
        row = {
            "id": new_id("v"),
            "assessment_id": assessment["id"],
            "visit_date": visit_date,
            "child_seen": 1 if body["child_seen"] else 0,
            "seen_alone": None if seen_alone is None else int(seen_alone),
            "recorded_by": who["id"],
            "not_seen_alone_reason": None if self.has("not-alone-reason-dropped") else reason,
        }
        self.store.insert("visits", row)
        return json_response(self._visit_out(row), 201)

    def _horizon(self) -> str:
        """The last date not "in the future" (``gating-accepts-tomorrow``: tomorrow)."""
        extra = 1 if self.has("gating-accepts-tomorrow") else 0
        return (self.today() + timedelta(days=extra)).isoformat()

    def _earliest_visit(self, assessment: dict[str, Any]) -> str:
        """The first date a visit counts from (``gating-start-off-by-one``: the day before the start)."""
        if self.has("gating-start-off-by-one"):
            return (date.fromisoformat(assessment["start_date"]) - timedelta(days=1)).isoformat()
        return assessment["start_date"]

    def _child_seen(self, assessment: dict[str, Any], completed_on: str) -> bool:
        if self.has("gating-off"):
            return True
        today = self.today().isoformat()
        if self.has("gating-counts-other-assessments-visits"):  # the child's visits, on any assessment
            visits = self.store.all(
                "SELECT v.* FROM visits v JOIN assessments a ON v.assessment_id = a.id WHERE a.child_id = ?",
                (assessment["child_id"],),
            )
        else:
            visits = self.store.all("SELECT * FROM visits WHERE assessment_id = ?", (assessment["id"],))
        if self.has("gating-latest-visit-only") and visits:  # judges the most recent visit alone
            visits = [max(visits, key=lambda v: (v["visit_date"], v["seq"]))]
        for visit in visits:
            day = visit["visit_date"]
            if not visit["child_seen"] and not self.has("gating-counts-unseen-visits"):
                if self.has("gating-stops-at-unseen"):  # stops where it should skip
                    return False
                continue
            if day < self._earliest_visit(assessment) and not self.has("gating-ignores-start-date"):
                continue
            late_ok = self.has("gating-ignores-completion-date") or (
                self.has("gating-accepts-future-seen") and day > today
            )
            if day > completed_on and not late_ok:
                continue
            return True
        return False

    async def complete_assessment(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        assessment_id = request.path_params["assessment_id"]
        self._assessment_row(assessment_id)
        body = await self._body(request, op)
        with self.store.lock:
            row = self._assessment_row(assessment_id)
            if row["status"] != "open":
                raise ApiError(409, "ASSESSMENT_NOT_OPEN", "the assessment is not open")
            completed_on = body.get("completed_on") or self.today().isoformat()
            if completed_on > self._horizon():
                raise field_error("DATE_IN_FUTURE", "completed_on", "is in the future")
            if completed_on < row["start_date"]:
                raise field_error("DATE_ORDER", "completed_on", "is before the assessment start")
            changes = {"status": "completed", "completed_on": completed_on, "authorised_by": body.get("authorised_by")}
            exempt = self.has("gating-managers-exempt") and who["role"] in ("manager", "admin")
            if not exempt and not self._child_seen(row, completed_on):
                if self.has("gating-completes-despite-refusal"):
                    self.store.update("assessments", assessment_id, changes)
                code = "VALIDATION_ERROR" if self.has("gating-generic-error-code") else "CHILD_NOT_SEEN"
                raise ApiError(422, code, "no visit saw the child between the start and the completion date")
            self.store.update("assessments", assessment_id, changes)
            row.update(changes)
        return json_response(self._assessment_out(row))
