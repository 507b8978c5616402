"""Aliases, previous and known-as names of a child."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from conformance.reference import rules
from conformance.reference.openapi import Operation
from conformance.reference.service import Service, field_error, json_response
from conformance.reference.store import new_id


class AliasRoutes(Service):
    @staticmethod
    def _alias_out(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("id", "child_id", "given_name", "family_name", "type")}

    async def add_alias(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        body = await self._body(request, op)
        for name in ("given_name", "family_name"):
            if not rules.valid_name(body[name]) and not self.has("names-any-character"):
                raise field_error(
                    "INVALID_NAME", name, "only letters, combining marks, spaces, hyphens, apostrophes and full stops"
                )
        row = {
            "id": new_id("al"),
            "child_id": child_id,
            "given_name": body["given_name"],
            "family_name": body["family_name"],
            "given_keys": rules.stored_name_keys(body["given_name"], self.faults),
            "family_keys": rules.stored_name_keys(body["family_name"], self.faults),
            "type": body["type"],
        }
        self.store.insert("aliases", row)
        return json_response(self._alias_out(row), 201)

    def list_aliases(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        rows = (
            []
            if self.has("aliases-not-listed")
            else self.store.all("SELECT * FROM aliases WHERE child_id = ? ORDER BY seq", (child_id,))
        )
        if self.has("aliases-listed-one-per-type"):  # grouped by type, the latest of each kept
            rows = list({r["type"]: r for r in rows}.values())
        return json_response({"items": [self._alias_out(r) for r in rows]})
