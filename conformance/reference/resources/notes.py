"""Case notes and the notifications they raise."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from conformance.reference.openapi import Operation
from conformance.reference.service import MANAGERS, NOTIFY_DELAY_SECONDS, ApiError, Service, json_response, now_stamp
from conformance.reference.store import new_id


class NoteRoutes(Service):
    def _note_out(self, row: dict[str, Any], who: dict[str, Any]) -> dict[str, Any]:
        hidden = (
            row["restricted"]
            and who["id"] != row["author_id"]
            and who["role"] not in MANAGERS
            and not self.has("restricted-note-visible")
            and not (self.has("restricted-note-visible-to-allocated") and self._allocated(who["id"], row["child_id"]))
        )
        return {
            "id": row["id"],
            "child_id": row["child_id"],
            "author_id": row["author_id"],
            "text": None if hidden else row["text"],
            "restricted": bool(row["restricted"]),
            "created_at": row["created_at"],
        }

    async def add_case_note(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        body = await self._body(request, op)
        stamp = now_stamp()
        note = {
            "id": new_id("n"),
            "child_id": child_id,
            "author_id": who["id"],
            "text": body["text"][:4000] if self.has("case-note-text-truncated") else body["text"],
            "restricted": 1 if body.get("restricted") else 0,
            "created_at": stamp,
        }
        with self.store.transaction():
            self.store.insert("case_notes", note)
            self._notify(note, stamp)
        return json_response(self._note_out(note, who), 201)

    def _recipients(self, child_id: str, author_id: str) -> list[str]:
        today = self.today().isoformat()
        allocations = self.store.all(
            "SELECT practitioner_id, end_date FROM allocations WHERE child_id = ? ORDER BY seq", (child_id,)
        )
        if self.has("notify-unrelated"):
            return [r["id"] for r in self.store.all("SELECT id FROM practitioners ORDER BY seq")]
        current = [
            a["practitioner_id"]
            for a in allocations
            if self.has("notify-ended-allocation") or a["end_date"] is None or a["end_date"] > today
        ]
        if self.has("notify-ended-before-today"):  # end_date compared with today for equality alone
            current += [a["practitioner_id"] for a in allocations if a["end_date"] and a["end_date"] < today]
        if self.has("notify-once-per-allocation"):  # one per current allocation, never de-duplicated
            return [p for p in current if p != author_id]
        if self.has("notify-author-excluded-once"):  # list.remove: the author's first allocation only
            if author_id in current:
                current.remove(author_id)
            recipients = list(dict.fromkeys(current))
        else:
            recipients = [p for p in dict.fromkeys(current) if p != author_id]
        if self.has("notify-missing-co-allocated"):
            recipients = recipients[:1]
        if self.has("notify-author") and author_id not in recipients:
            recipients.append(author_id)
        if self.has("notify-skips-once-ended"):  # anyone with an ended allocation to the child is left out
            ended = {a["practitioner_id"] for a in allocations if a["end_date"] is not None and a["end_date"] <= today}
            recipients = [p for p in recipients if p not in ended]
        roles = {r["id"]: r["role"] for r in self.store.all("SELECT id, role FROM practitioners")}
        if self.has("notify-practitioner-role-only"):
            recipients = [p for p in recipients if roles.get(p) == "practitioner"]
        if self.has("notify-only-practitioner-authors") and roles.get(author_id) != "practitioner":
            return []
        if self.has("notify-all-managers"):  # supervisors see every note
            recipients += [
                p for p, role in roles.items() if role in MANAGERS and p != author_id and p not in recipients
            ]
        return recipients

    def _notify(self, note: dict[str, Any], stamp: str) -> None:
        if self.has("notify-ack-lost"):
            self.store.execute(
                "UPDATE notifications SET acknowledged_at = NULL WHERE child_id = ?", (note["child_id"],)
            )
        preview = None if note["restricted"] and not self.has("restricted-note-leaks-text") else note["text"][:100]
        if self.has("notify-preview-whole-text") and preview is not None:
            preview = note["text"]
        visible_at = time.time() + (NOTIFY_DELAY_SECONDS if self.has("notify-delayed") else 0.0)
        entitled: set[str] = set()
        if self.has("restricted-preview-for-managers"):  # those who may read the text get it in the preview
            entitled = {r["id"] for r in self.store.all("SELECT id, role FROM practitioners") if r["role"] in MANAGERS}
        for practitioner_id in self._recipients(note["child_id"], note["author_id"]):
            shown = note["text"][:100] if practitioner_id in entitled else preview
            for _ in range(2 if self.has("notify-duplicate") else 1):
                self.store.insert(
                    "notifications",
                    {
                        "id": new_id("nt"),
                        "practitioner_id": practitioner_id,
                        "child_id": note["child_id"],
                        "case_note_id": note["id"],
                        "created_at": stamp,
                        "acknowledged_at": None,
                        "preview": shown,
                        "visible_at": visible_at,
                    },
                )

    def list_case_notes(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        order = "DESC" if self.has("case-notes-newest-first") else "ASC"
        rows = self.store.all(f"SELECT * FROM case_notes WHERE child_id = ? ORDER BY seq {order}", (child_id,))
        if not self.has("audit-misses-note-reads"):
            self._audit(who, child_id, "read_notes")
        return json_response({"items": [self._note_out(r, who) for r in rows]})

    @staticmethod
    def _notification_out(row: dict[str, Any]) -> dict[str, Any]:
        return {
            k: row[k]
            for k in ("id", "practitioner_id", "child_id", "case_note_id", "created_at", "acknowledged_at", "preview")
        }

    def list_notifications(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        q = self._query(request, op)
        status = q.get("status", "all")
        extra = {
            "all": "",
            "acknowledged": " AND acknowledged_at IS NOT NULL",
            "unacknowledged": " AND acknowledged_at IS NULL",
        }[status]
        return self._paged(
            f"FROM notifications WHERE practitioner_id = ? AND visible_at <= ?{extra}",
            (who["id"], time.time()),
            q,
            self._notification_out,
        )

    def acknowledge(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        notification_id = request.path_params["notification_id"]
        with self.store.lock:
            if self.has("ack-by-managers") and who["role"] in MANAGERS:  # team leads acknowledge for their team
                row = self.store.one(
                    "SELECT * FROM notifications WHERE id = ? AND visible_at <= ?", (notification_id, time.time())
                )
            else:
                row = self.store.one(
                    "SELECT * FROM notifications WHERE id = ? AND practitioner_id = ? AND visible_at <= ?",
                    (notification_id, who["id"], time.time()),
                )
            if row is None:
                raise ApiError(404, "NOT_FOUND", f"no notification {notification_id!r} for you")
            if row["acknowledged_at"] is None or self.has("ack-twice-overwrites-time"):
                row["acknowledged_at"] = now_stamp()
                self.store.update("notifications", notification_id, {"acknowledged_at": row["acknowledged_at"]})
        return json_response(self._notification_out(row))
