"""A child's chronology through the API (ICS-1C-CHRON-002)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from conformance.reference.chronology import events
from conformance.reference.openapi import Operation
from conformance.reference.service import Service, json_response


class ChronologyRoutes(Service):
    def get_chronology(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        return json_response({"items": events(self.store, self.faults, child_id)})
