"""``GET /about``, practitioners and who the caller is."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from conformance._version import __version__
from conformance.reference.openapi import Operation
from conformance.reference.service import CAPABILITIES, Service, json_response, token_digest
from conformance.reference.store import new_id
from conformance.spec.catalogue import load_catalogue

#: The spec versions the reference implements: 2008.1 (phases 1A, 1B) and the current one.
SPEC_VERSIONS = tuple(dict.fromkeys(("2008.1", load_catalogue().spec_version)))


class PractitionerRoutes(Service):
    def about(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        versions: Any = "2008.1" if self.has("about-schema-violation") else list(SPEC_VERSIONS)
        return json_response(
            {
                "supplier": "ics-conformance",
                "product": "ICS reference service",
                "version": __version__,
                "spec_versions": versions,
                "council": self.council,
                "capabilities": dict(CAPABILITIES),
            }
        )

    async def create_practitioner(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        body = await self._body(request, op)
        token = secrets.token_urlsafe(24)
        row = {"id": new_id("p"), "name": body["name"], "role": body["role"]}
        self.store.insert("practitioners", {**row, "token_sha256": token_digest(token)})
        return json_response({**row, "token": token}, 201)

    def me(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        return json_response({"id": who["id"], "name": who["name"], "role": who["role"]})
