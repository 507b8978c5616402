"""Allocating practitioners to a child and ending allocations."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from conformance.reference.openapi import Operation
from conformance.reference.service import ApiError, Service, field_error, json_response
from conformance.reference.store import new_id


class AllocationRoutes(Service):
    def _allocation_out(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row[k] for k in ("id", "child_id", "practitioner_id", "start_date", "end_date")}
        if self.has("allocation-end-not-recorded"):
            out["end_date"] = None
        return out

    async def allocate(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        body = await self._body(request, op)
        if self.store.get("practitioners", body["practitioner_id"]) is None and not self.has(
            "allocation-unknown-practitioner"
        ):
            raise field_error("UNKNOWN_PRACTITIONER", "practitioner_id", "no such practitioner")
        row = {
            "id": new_id("a"),
            "child_id": child_id,
            "practitioner_id": body["practitioner_id"],
            "start_date": body.get("start_date") or self.today().isoformat(),
            "end_date": None,
        }
        self.store.insert("allocations", row)
        return json_response(self._allocation_out(row), 201)

    def list_allocations(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        rows = (
            []
            if self.has("allocations-not-listed")
            else self.store.all("SELECT * FROM allocations WHERE child_id = ? ORDER BY seq", (child_id,))
        )
        return json_response({"items": [self._allocation_out(r) for r in rows]})

    async def end_allocation(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        allocation_id = request.path_params["allocation_id"]
        row = self.store.get("allocations", allocation_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no allocation {allocation_id!r}")
        body = await self._body(request, op)
        if row["end_date"] is None or self.has("allocation-end-twice-overwrites"):
            end = body.get("end_date") or self.today().isoformat()
            if end < row["start_date"]:
                raise field_error("DATE_ORDER", "end_date", "is before the allocation's start date")
            if self.has("allocation-end-ends-all-of-practitioner"):  # by child and practitioner, not by allocation
                self.store.execute(
                    "UPDATE allocations SET end_date = ? WHERE child_id = ? AND practitioner_id = ? AND end_date IS NULL",
                    (end, row["child_id"], row["practitioner_id"]),
                )
            self.store.update("allocations", allocation_id, {"end_date": end})
            row["end_date"] = end
        return json_response(self._allocation_out(row))
