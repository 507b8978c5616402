"""Child records and their search (design.md §4)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from conformance.reference import rules
from conformance.reference.openapi import FieldError, Operation
from conformance.reference.service import (
    CHILD_FIELDS,
    SEARCH_CRITERIA,
    ApiError,
    Service,
    field_error,
    invalid,
    json_response,
    now_stamp,
    parse_date,
)
from conformance.reference.store import new_id

#: identifier criteria (searched exactly, compacted)
IDENTIFIERS = ("upn", "nhs_number", "local_id")


class ChildRoutes(Service):
    def _child_out(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row[k] for k in CHILD_FIELDS}
        out["shielded"] = bool(out["shielded"])
        if self.has("child-read-back-drops-postcode"):
            out["postcode"] = None
        if self.has("names-truncated"):  # a 64-character display column
            out["given_name"], out["family_name"] = out["given_name"][:64], out["family_name"][:64]
        if self.has("gender-not-specified-read-as-not-known") and out["gender"] == "not_specified":
            out["gender"] = "not_known"
        return out

    def _check_child(
        self, record: dict[str, Any], self_id: str | None, sent: Collection[str] | None = None
    ) -> dict[str, Any]:
        """Apply the domain rules to a complete child record (``sent``: the fields a PATCH
        gave); return the columns to store."""
        for name in ("given_name", "family_name"):
            if not rules.valid_name(record[name]) and not self.has("names-any-character"):
                raise field_error(
                    "INVALID_NAME", name, "only letters, combining marks, spaces, hyphens, apostrophes and full stops"
                )
        dob, expected = record.get("date_of_birth"), record.get("expected_date_of_birth")
        if self.has("unborn-requires-dob") and not dob:
            raise invalid([FieldError("date_of_birth", "a date of birth is required")])
        if bool(dob) == bool(expected):
            raise invalid([FieldError("date_of_birth", "give exactly one of date_of_birth and expected_date_of_birth")])
        today = self.today()
        born, died = parse_date(dob), parse_date(record.get("date_of_death"))
        today_is_future = self.has("records-today-is-future")
        if born and (born > today or (today_is_future and born == today)):
            raise field_error("DATE_IN_FUTURE", "date_of_birth", "is in the future")
        if died and (died > today or (today_is_future and died == today)):
            raise field_error("DATE_IN_FUTURE", "date_of_death", "is in the future")
        order_checked = not (
            self.has("records-patch-checks-sent-dates-only") and sent is not None and "date_of_death" not in sent
        )
        same_day_refused = self.has("records-death-on-birth-day-refused") and born == died
        if born and died and (died < born or same_day_refused) and order_checked:
            if not self.has("records-accepts-death-before-birth"):
                raise field_error("DATE_ORDER", "date_of_death", "is before the date of birth")
        columns = dict(record)
        if record.get("upn") is not None:
            columns["upn"] = rules.check_upn(record["upn"], self.faults)
            if columns["upn"] is None:
                raise field_error("INVALID_UPN", "upn", "not a UPN with a valid check letter")
            if self.has("upn-stored-as-written"):
                columns["upn"] = record["upn"]
        if record.get("nhs_number") is not None:
            columns["nhs_number"] = rules.check_nhs_number(record["nhs_number"], self.faults)
            if columns["nhs_number"] is None:
                raise field_error("INVALID_NHS_NUMBER", "nhs_number", "not a 10-digit NHS number passing modulus 11")
        if record.get("postcode") is not None:
            columns["postcode"] = rules.canonical_postcode(record["postcode"])
            if columns["postcode"] is None:
                raise field_error("INVALID_POSTCODE", "postcode", "not a UK postcode")
        local_id = record.get("local_id")
        if local_id is not None and not self.has("local-id-duplicates-allowed"):
            itself = self.has("local-id-clashes-with-itself") and sent is not None and "local_id" in sent
            clash = self.store.one(
                "SELECT id FROM children WHERE local_id = ? AND id != ?", (local_id, "" if itself else self_id or "")
            )
            if clash is not None:
                raise ApiError(409, "DUPLICATE_LOCAL_ID", f"local_id {local_id!r} is already used")
        columns["gender"] = str(record["gender"])
        columns["shielded"] = 1 if record.get("shielded") else 0
        columns["postcode_key"] = rules.postcode_key(columns["postcode"]) if columns.get("postcode") else None
        columns["given_keys"] = rules.stored_name_keys(record["given_name"], self.faults)
        columns["family_keys"] = rules.stored_name_keys(record["family_name"], self.faults)
        return columns

    def _gender_skip(self, body: Any) -> frozenset[str]:
        if self.has("accepts-invalid-input") and isinstance(body, dict) and isinstance(body.get("gender"), str):
            return frozenset({"gender"})
        return frozenset()

    async def _child_body(self, request: Request, op: Operation) -> dict[str, Any]:
        raw = await request.body()
        try:
            peek = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            peek = None
        return await self._body(request, op, self._gender_skip(peek))

    async def create_child(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        body = await self._child_body(request, op)
        record = {k: None for k in CHILD_FIELDS if k not in ("id", "created_at", "updated_at")}
        record.update(body)
        with self.store.lock:
            columns = self._check_child(record, None)
            stamp = now_stamp()
            columns.update(id=new_id("c"), created_at=stamp, updated_at=stamp)
            self.store.insert("children", columns)
            self._audit(who, columns["id"], "create")
        return json_response(self._child_out(columns), 201)

    def get_child(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        row = self.store.get("children", child_id)
        if row is None:
            if self.has("server-error-on-unknown-child"):
                return json_response({"code": "INTERNAL_ERROR", "message": "unexpected error"}, 500)
            raise ApiError(404, "NOT_FOUND", f"no child {child_id!r}")
        hidden = (
            row["shielded"]
            and who["role"] != "admin"
            and not self.has("search-shows-shielded")
            and not self._allocated(who["id"], child_id, ever=self.has("shielded-ended-allocation-sees"))
        )
        if not self._view_unaudited(who, child_id) and not (hidden and self.has("shielded-attempt-not-audited")):
            self._audit(who, child_id, "view")
        if hidden:
            if self.has("shielded-forbidden-not-hidden"):
                raise ApiError(403, "FORBIDDEN", "this child is shielded")
            raise ApiError(404, "NOT_FOUND", f"no child {child_id!r}")
        return json_response(self._child_out(row))

    def _view_unaudited(self, who: dict[str, Any], child_id: str) -> bool:
        """True when an audit fault skips this view."""
        if self.has("audit-misses-views"):
            return True
        if self.has("audit-skips-privileged-views") and who["role"] in ("manager", "admin"):
            return True
        return self.has("audit-views-deduplicated") and (
            self.store.one(
                "SELECT 1 AS x FROM audit WHERE practitioner_id = ? AND child_id = ? AND action = 'view'",
                (who["id"], child_id),
            )
            is not None
        )

    async def update_child(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        child_id = request.path_params["child_id"]
        self._child_row(child_id)
        body = await self._child_body(request, op)
        with self.store.lock:
            row = self._child_row(child_id)
            record = {k: row[k] for k in CHILD_FIELDS if k not in ("id", "created_at", "updated_at")}
            record["shielded"] = bool(record["shielded"])
            record.update(body)
            columns = self._check_child(record, child_id, sent=frozenset(body))
            if self.has("patch-ignored"):
                return json_response(self._child_out(row))
            columns["updated_at"] = now_stamp()
            self.store.update("children", child_id, columns)
            self._audit(who, child_id, "update")
            row = self._child_row(child_id)
        return json_response(self._child_out(row))

    def search_children(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        q = self._query(request, op)
        if not any(k in q for k in SEARCH_CRITERIA):
            raise invalid([FieldError("query", f"give at least one of: {', '.join(SEARCH_CRITERIA)}")])
        if self.has("search-gender-alone-refused") and [k for k in SEARCH_CRITERIA if k in q] == ["gender"]:
            raise invalid([FieldError("gender", "give a name, a date of birth, a postcode or an identifier as well")])
        if self.has("search-local-id-symbols-refused") and "local_id" in q:
            if not all(c.isascii() and (c.isalnum() or c in "- ") for c in q["local_id"]):
                raise invalid([FieldError("local_id", "letters, digits, hyphens and spaces only")])
        skip: set[str] = set()
        if any(k in q for k in IDENTIFIERS):  # the identifier "fast path" of the faults below
            if self.has("search-identifier-includes-deceased"):
                skip.add("deceased")
            if self.has("search-identifier-shows-shielded"):
                skip.add("shielded")
        names: dict[str, str] = {k: q[k] for k in ("given_name", "family_name") if k in q}
        rows = self._search_rows(q, who, frozenset(skip), names)
        if names:
            counted = self._match_names(rows, q, who, frozenset(skip), names)
            alias_skip = set(skip)
            for fault, kind in (
                ("search-alias-includes-deceased", "deceased"),
                ("search-alias-shows-shielded", "shielded"),
                ("search-alias-skips-criteria", "criteria"),
            ):
                if self.has(fault):
                    alias_skip.add(kind)
            if alias_skip != skip:  # alias-only matches found without some filters
                relaxed = self._search_rows(q, who, frozenset(alias_skip), names)
                known = {r["id"] for r in rows}
                extra = [
                    (r, n)
                    for r, n, current in self._match_names(
                        [r for r in relaxed if r["id"] not in known], q, who, frozenset(alias_skip), names
                    )
                    if not current
                ]
                counted = sorted(
                    [(r, n, c) for r, n, c in counted] + [(r, n, False) for r, n in extra],
                    key=lambda item: item[0]["seq"],
                )
            repeat = self.has("search-alias-matches-duplicated")
            rows = [r for r, n, _current in counted for _ in range(n if repeat else 1)]
        page, size = self._page(q)
        total = len(rows)
        start = (page - 1) * size
        if self.has("search-repeats-across-pages") and page > 1:
            start -= 1
        items = rows[start : start + size]
        if self.has("search-drops-last-page") and page > 1 and start + size >= total:
            items = []
        if self.has("search-full-last-page-dropped") and total and total % size == 0 and page == total // size:
            items = []  # the last page holds total % size items: none when the total is a multiple
        if not self.has("audit-misses-searches"):
            self._audit(who, None, "search")
        return json_response(
            {"items": [self._child_out(r) for r in items], "page": page, "page_size": size, "total": total}
        )

    def _filters(self, q: dict[str, Any], who: dict[str, Any], skip: frozenset[str]) -> tuple[list[str], list[Any]]:
        """SQL conditions of every criterion but names and local ID, and of the deceased and
        shielding filters, less the ``skip`` kinds (``criteria``, ``deceased``, ``shielded``)."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if "criteria" not in skip:
            if "date_of_birth" in q and not self.has("search-ignores-dob"):
                if self.has("search-ignores-unborn"):
                    where.append("date_of_birth = ?")
                    params.append(q["date_of_birth"])
                elif self.has("search-dob-within-a-day"):
                    day = date.fromisoformat(str(q["date_of_birth"]))
                    where.append(
                        "(date_of_birth BETWEEN ? AND ? OR (date_of_birth IS NULL AND expected_date_of_birth = ?))"
                    )
                    params += [
                        (day - timedelta(days=1)).isoformat(),
                        (day + timedelta(days=1)).isoformat(),
                        q["date_of_birth"],
                    ]
                else:
                    where.append("(date_of_birth = ? OR (date_of_birth IS NULL AND expected_date_of_birth = ?))")
                    params += [q["date_of_birth"], q["date_of_birth"]]
            if "gender" in q:
                where.append("gender = ?")
                params.append(q["gender"])
            if "postcode" in q:
                if self.has("search-postcode-exact"):
                    where.append("postcode = ?")
                    params.append(q["postcode"])
                elif self.has("search-postcode-prefix"):
                    where.append("postcode_key LIKE ?")
                    params.append(rules.postcode_key(q["postcode"]) + "%")
                else:
                    where.append("postcode_key = ?")
                    params.append(rules.postcode_key(q["postcode"]))
        if "upn" in q:
            where.append("upn = ?")
            params.append(rules.search_identifier("upn", q["upn"]))
        if "nhs_number" in q:
            where.append("0 = 1" if self.has("search-ignores-nhs-number") else "nhs_number = ?")
            if not self.has("search-ignores-nhs-number"):
                params.append(rules.search_identifier("nhs_number", q["nhs_number"]))
        if "deceased" not in skip and not q.get("include_deceased") and not self.has("search-includes-deceased"):
            where.append("date_of_death IS NULL")
        exempt = ("admin", "manager") if self.has("search-shielded-visible-to-managers") else ("admin",)
        if "shielded" not in skip and who["role"] not in exempt and not self.has("search-shows-shielded"):
            current = "(end_date IS NULL OR end_date > ?)"
            if self.has("search-shielded-any-allocation"):  # any current allocation, to whichever child
                where.append(
                    f"(shielded = 0 OR EXISTS (SELECT 1 FROM allocations WHERE practitioner_id = ? AND {current}))"
                )
                params += [who["id"], self.today().isoformat()]
            elif self.has("search-shielded-once-anyone-allocated"):  # anybody's allocation to the child
                where.append(f"(shielded = 0 OR id IN (SELECT child_id FROM allocations WHERE {current}))")
                params.append(self.today().isoformat())
            else:
                where.append(
                    f"(shielded = 0 OR id IN (SELECT child_id FROM allocations WHERE practitioner_id = ? AND {current}))"
                )
                params += [who["id"], self.today().isoformat()]
        return where, params

    def _search_rows(
        self, q: dict[str, Any], who: dict[str, Any], skip: frozenset[str], names: dict[str, str]
    ) -> list[dict[str, Any]]:
        """Children satisfying every criterion but the names (which only narrow the scan here)."""
        where, params = self._filters(q, who, skip)
        if names and rules.clean_name_search(self.faults):
            self._prefilter_names(names, where, params)
        rows = self.store.all(f"SELECT * FROM children WHERE {' AND '.join(where)} ORDER BY seq", params)
        if "local_id" in q:
            if self.has("search-local-id-raw"):
                return [r for r in rows if r["local_id"] == q["local_id"]]
            wanted = rules.search_identifier("local_id", q["local_id"])
            rows = [
                r
                for r in rows
                if r["local_id"] is not None and rules.search_identifier("local_id", r["local_id"]) == wanted
            ]
        return rows

    @staticmethod
    def _prefilter_names(names: Mapping[str, str], where: list[str], params: list[Any]) -> None:
        """Narrow the SQL scan to children whose current name or an alias has a key starting with each term.

        Only a superset (LIKE ignores ASCII case): :meth:`_match_names` still decides, per name record.
        """
        for field, term in names.items():
            key = rules.like_prefix(term)
            column = "given_keys" if field == "given_name" else "family_keys"
            where.append(
                f"((char(31) || {column}) LIKE ? ESCAPE '\\' OR id IN "
                f"(SELECT child_id FROM aliases WHERE (char(31) || {column}) LIKE ? ESCAPE '\\'))"
            )
            params += [key, key]

    def _match_names(
        self,
        rows: list[dict[str, Any]],
        q: dict[str, Any],
        who: dict[str, Any],
        skip: frozenset[str],
        names: dict[str, str],
    ) -> list[tuple[dict[str, Any], int, bool]]:
        """The rows some name record of which matches both terms: (row, matching records, current name matches)."""
        norm, match, alias_match = rules.name_matcher(self.faults)
        given, family = names.get("given_name"), names.get("family_name")
        g_term = norm(given) if given is not None else None
        f_term = norm(family) if family is not None else None
        if g_term == "" or f_term == "" or not rows:
            return []
        aliases: dict[str, list[dict[str, Any]]] = {}
        use_aliases = not self.has("search-ignores-aliases") and not (
            self.has("search-aliases-need-family-name") and family is None
        )
        if use_aliases:
            marks = ",".join("?" for _ in rows)
            for a in self.store.all(
                "SELECT child_id, given_name, family_name, given_keys, family_keys FROM aliases "
                f"WHERE child_id IN ({marks}) ORDER BY seq",
                [r["id"] for r in rows],
            ):
                aliases.setdefault(a["child_id"], []).append(a)

        def current_matches(rec: dict[str, Any]) -> bool:
            return (g_term is None or match(g_term, rec["given_name"], rec["given_keys"])) and (
                f_term is None or match(f_term, rec["family_name"], rec["family_keys"])
            )

        def alias_matches(rec: dict[str, Any]) -> bool:
            return (g_term is None or alias_match(g_term, given or "", rec["given_name"], rec["given_keys"])) and (
                f_term is None or alias_match(f_term, family or "", rec["family_name"], rec["family_keys"])
            )

        out = []
        for row in rows:
            current = current_matches(row)
            count = int(current) + sum(1 for a in aliases.get(row["id"], ()) if alias_matches(a))
            if count:
                out.append((row, count, current))
        return out
