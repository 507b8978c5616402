"""The audit trail and the bulk export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from conformance._version import __version__
from conformance.reference.export import write_export
from conformance.reference.openapi import Operation
from conformance.reference.service import ApiError, Service


class AuditRoutes(Service):
    def list_audit(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        q = self._query(request, op)
        where, params = ["1 = 1"], []
        for key in ("child_id", "practitioner_id"):
            if key in q:
                where.append(f"{key} = ?")
                params.append(q[key])
        return self._paged(
            f"FROM audit WHERE {' AND '.join(where)}",
            tuple(params),
            q,
            lambda r: {k: r[k] for k in ("id", "at", "practitioner_id", "child_id", "action")},
        )

    async def export(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        if self.has("export-unavailable"):
            raise ApiError(501, "NOT_IMPLEMENTED", "bulk export is not available")
        producer = {"supplier": "ics-conformance", "product": "ICS reference service", "version": __version__}
        spool = await run_in_threadpool(write_export, self.store, self.faults, producer)

        def chunks() -> Iterator[bytes]:
            with spool:
                spool.seek(0)
                while block := spool.read(65536):
                    yield block

        return StreamingResponse(
            chunks(),
            media_type="application/zip",
            headers={"content-disposition": 'attachment; filename="ics-export.zip"'},
        )
