"""The audit log's immutability (ICS-1C-AUD-003) and the faults that break it.

The canonical API has no operation that changes an audit entry: ``/audit/{id}`` does not
exist and ``/audit`` answers only GET (other methods 405). The faults ``audit-deletable``
and ``audit-editable`` add the undocumented operations a careless system might have.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance.reference.service import MANAGERS, ApiError, Service, json_response

_FIELDS = ("id", "at", "practitioner_id", "child_id", "action")


class AuditLogRoutes(Service):
    def fault_routes(self) -> list[Route]:
        """Routes that exist only under the audit faults (none on a clean service)."""
        methods: dict[str, Callable[[Request, dict[str, Any]], Awaitable[Response]]] = {}
        if self.has("audit-deletable"):
            methods["DELETE"] = self._delete_entry
        if self.has("audit-editable"):
            methods["PATCH"] = self._edit_entry
        if not methods:
            return []

        async def endpoint(request: Request) -> Response:
            try:
                who = self._authenticate(request)
                self._require(who, MANAGERS)
                return await methods[request.method](request, who)
            except ApiError as exc:
                return exc.response()

        return [Route("/audit/{audit_id}", endpoint, methods=list(methods))]

    def _entry(self, audit_id: str) -> dict[str, Any]:
        row = self.store.get("audit", audit_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no audit entry {audit_id!r}")
        return row

    async def _delete_entry(self, request: Request, who: dict[str, Any]) -> Response:
        entry = self._entry(request.path_params["audit_id"])
        self.store.execute("DELETE FROM audit WHERE id = ?", (entry["id"],))
        return Response(status_code=204)

    async def _edit_entry(self, request: Request, who: dict[str, Any]) -> Response:
        entry = self._entry(request.path_params["audit_id"])
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            raise ApiError(400, "MALFORMED_REQUEST", "the request body is not valid JSON") from None
        action = body.get("action") if isinstance(body, dict) else None
        if isinstance(action, str) and action:
            self.store.update("audit", entry["id"], {"action": action})
        return json_response({k: v for k, v in self._entry(entry["id"]).items() if k in _FIELDS})
