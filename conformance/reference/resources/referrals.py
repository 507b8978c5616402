"""Referrals of a child."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from conformance.reference.openapi import Operation
from conformance.reference.service import ApiError, Service, field_error, json_response
from conformance.reference.store import new_id


class ReferralRoutes(Service):
    @staticmethod
    def _referral_out(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("id", "child_id", "received_on", "source", "reason")}

    async def create_referral(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        body = await self._body(request, op)
        self._child_row(body["child_id"])
        today = self.today()
        horizon = (today + timedelta(days=1) if self.has("referral-accepts-tomorrow") else today).isoformat()
        if body["received_on"] > horizon and not self.has("referral-accepts-future-date"):
            raise field_error("DATE_IN_FUTURE", "received_on", "is in the future")
        if self.has("referral-refuses-today") and body["received_on"] == today.isoformat():
            raise field_error("DATE_IN_FUTURE", "received_on", "is in the future")
        source = body["source"]
        if self.has("referral-loses-source") or (
            self.has("referral-local-authority-as-other") and source == "local_authority"
        ):
            source = "other"
        row = {
            "id": new_id("r"),
            "child_id": body["child_id"],
            "received_on": body["received_on"],
            "source": source,
            "reason": body["reason"][:255] if self.has("referral-reason-truncated") else body["reason"],
        }
        self.store.insert("referrals", row)
        return json_response(self._referral_out(row), 201)

    def get_referral(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        referral_id = request.path_params["referral_id"]
        row = self.store.get("referrals", referral_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no referral {referral_id!r}")
        return json_response(self._referral_out(row))

    def list_referrals(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        rows = self.store.all("SELECT * FROM referrals WHERE child_id = ? ORDER BY seq", (child_id,))
        return json_response({"items": [self._referral_out(r) for r in rows]})
