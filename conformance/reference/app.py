"""The reference service's HTTP application: the canonical ICS API of design.md §4.

:class:`Reference` mixes the resource groups of :mod:`conformance.reference.resources` over
:class:`~conformance.reference.service.Service`; each operation of ``specs/openapi.yaml`` is one
method, wrapped by ``Service._endpoint``, which authenticates the caller, turns
:class:`ApiError` into an error body and never lets an expected failure become a 5xx. Bodies and
query strings are validated against the OpenAPI document's own schemas before any rule of the
domain is applied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance.reference.resources.aliases import AliasRoutes
from conformance.reference.resources.allocations import AllocationRoutes
from conformance.reference.resources.assessments import AssessmentRoutes
from conformance.reference.resources.audit import AuditRoutes
from conformance.reference.resources.audit_log import AuditLogRoutes
from conformance.reference.resources.children import ChildRoutes
from conformance.reference.resources.chronology import ChronologyRoutes
from conformance.reference.resources.notes import NoteRoutes
from conformance.reference.resources.practitioners import PractitionerRoutes
from conformance.reference.resources.referrals import ReferralRoutes
from conformance.reference.resources.transfers import TransferRoutes
from conformance.reference.service import ADMINS, DEFAULT_COUNCIL, MANAGERS, READERS, WRITERS, ApiError, json_response
from conformance.reference.store import Store


class Reference(
    PractitionerRoutes,
    ChildRoutes,
    AliasRoutes,
    AllocationRoutes,
    NoteRoutes,
    ReferralRoutes,
    AssessmentRoutes,
    AuditRoutes,
    AuditLogRoutes,
    ChronologyRoutes,
    TransferRoutes,
):
    """The service: every resource group's operations over one store."""

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, str, Callable[..., Any], frozenset[str] | None]] = [
            ("/about", "GET", "getAbout", self.about, None),
            ("/practitioners", "POST", "createPractitioner", self.create_practitioner, ADMINS),
            ("/practitioners/me", "GET", "getMe", self.me, READERS),
            ("/practitioners/me/notifications", "GET", "listNotifications", self.list_notifications, READERS),
            (
                "/notifications/{notification_id}/acknowledge",
                "POST",
                "acknowledgeNotification",
                self.acknowledge,
                READERS,
            ),
            ("/children", "POST", "createChild", self.create_child, WRITERS),
            ("/children", "GET", "searchChildren", self.search_children, READERS),
            ("/children/{child_id}", "GET", "getChild", self.get_child, READERS),
            ("/children/{child_id}", "PATCH", "updateChild", self.update_child, WRITERS),
            ("/children/{child_id}/aliases", "POST", "addAlias", self.add_alias, WRITERS),
            ("/children/{child_id}/aliases", "GET", "listAliases", self.list_aliases, READERS),
            ("/children/{child_id}/allocations", "POST", "allocate", self.allocate, MANAGERS),
            ("/children/{child_id}/allocations", "GET", "listAllocations", self.list_allocations, READERS),
            ("/allocations/{allocation_id}/end", "POST", "endAllocation", self.end_allocation, MANAGERS),
            ("/children/{child_id}/case-notes", "POST", "addCaseNote", self.add_case_note, WRITERS),
            ("/children/{child_id}/case-notes", "GET", "listCaseNotes", self.list_case_notes, READERS),
            ("/children/{child_id}/referrals", "GET", "listReferrals", self.list_referrals, READERS),
            ("/referrals", "POST", "createReferral", self.create_referral, WRITERS),
            ("/referrals/{referral_id}", "GET", "getReferral", self.get_referral, READERS),
            ("/children/{child_id}/assessments", "POST", "startAssessment", self.start_assessment, WRITERS),
            ("/children/{child_id}/assessments", "GET", "listAssessments", self.list_assessments, READERS),
            ("/assessments/{assessment_id}", "GET", "getAssessment", self.get_assessment, READERS),
            ("/assessments/{assessment_id}/visits", "POST", "recordVisit", self.record_visit, WRITERS),
            ("/assessments/{assessment_id}/complete", "POST", "completeAssessment", self.complete_assessment, WRITERS),
            ("/audit", "GET", "listAudit", self.list_audit, MANAGERS),
            ("/export", "GET", "bulkExport", self.export, MANAGERS),
            # phase 1C
            ("/children/{child_id}/chronology", "GET", "getChronology", self.get_chronology, READERS),
            ("/children/{child_id}/transfer-package", "GET", "getTransferPackage", self.get_transfer_package, READERS),
            ("/transfers", "POST", "importTransfer", self.import_transfer, MANAGERS),
            ("/transfers/{transfer_id}", "GET", "getTransfer", self.get_transfer, MANAGERS),
        ]
        by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
        for path, method, operation_id, handler, roles in table:
            by_path.setdefault(path, {})[method] = self._endpoint(operation_id, handler, roles)
        routes = [Route(path, _dispatch(methods), methods=list(methods)) for path, methods in by_path.items()]
        return routes + self.fault_routes()


def _dispatch(methods: dict[str, Callable[[Request], Awaitable[Response]]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await methods[request.method if request.method != "HEAD" else "GET"](request)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 405:
        response = ApiError(405, "MALFORMED_REQUEST", "method not allowed on this path").response()
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response
    if status == 404:
        return ApiError(404, "NOT_FOUND", "no such resource").response()
    return ApiError(status, "MALFORMED_REQUEST", str(getattr(exc, "detail", "bad request"))).response()


async def _internal_error(request: Request, exc: Exception) -> Response:
    return json_response({"code": "INTERNAL_ERROR", "message": f"internal error: {type(exc).__name__}"}, 500)


def build_app(
    *,
    faults: Collection[str],
    admin_token: str,
    db_path: str | None,
    today: Callable[[], date] | None,
    council: str = DEFAULT_COUNCIL,
) -> Starlette:
    """Assemble the Starlette application (faults already validated by the caller)."""
    service = Reference(Store(db_path), faults, admin_token, today, council)
    app = Starlette(
        routes=service.routes(), exception_handlers={HTTPException: _http_error, Exception: _internal_error}
    )
    app.state.reference = service
    return app
