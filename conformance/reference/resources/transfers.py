"""Inter-council transfer (ICS-1C-XFER-*): a child's transfer package out, an import in.

The package is the bulk export format restricted to one child (design.md §5 and §11).
An import is checked with the harness's own package rules
(:func:`conformance.export.transfer.validate_transfer`) and stored in one transaction
as a new local child: new IDs for every record, the sending council's practitioners as
practitioners who cannot sign in, allocations open in the package ended on the import
date, restricted notes still restricted, a shielded child still shielded.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from conformance._version import __version__
from conformance.reference import rules
from conformance.reference.chronology import from_records
from conformance.reference.export import RECORD_TYPES, SPEC_VERSION, rows, stamp, write_archive
from conformance.reference.openapi import FieldError, Operation
from conformance.reference.service import (
    CAPABILITIES,
    MANAGERS,
    ApiError,
    Service,
    json_response,
    now_stamp,
    token_digest,
)
from conformance.reference.store import new_id

MAX_PACKAGE_BYTES = 64 * 1024 * 1024
PRODUCER = {"supplier": "ics-conformance", "product": "ICS reference service", "version": __version__}


def _invalid(message: str, details: list[FieldError] | None = None) -> ApiError:
    return ApiError(422, "INVALID_TRANSFER_PACKAGE", message, details)


class TransferRoutes(Service):
    # -- sending ---------------------------------------------------------------------------
    def _package_files(self, child: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
        """The records of one child's package, by record type (the transfer faults applied)."""
        cid = child["id"]
        child_ids = [cid]
        if self.has("transfer-includes-other-child"):
            other = self.store.one("SELECT id FROM children WHERE seq < ? ORDER BY seq DESC LIMIT 1", (child["seq"],))
            if other is not None:
                child_ids.append(other["id"])
        marks = ", ".join("?" for _ in child_ids)
        where, params = f"WHERE child_id IN ({marks})", tuple(child_ids)
        found = {t: rows(self.store, t, where, params) for t in ("aliases", "allocations", "referrals", "case_notes")}
        found["children"] = rows(self.store, "children", f"WHERE id IN ({marks})", params)
        found["assessments"] = rows(self.store, "assessments", where, params)
        found["visits"] = rows(
            self.store, "visits", f"WHERE assessment_id IN (SELECT id FROM assessments {where})", params
        )
        if self.has("transfer-drops-restricted-flag"):
            for note in found["case_notes"]:
                note["restricted"] = False
        if self.has("transfer-omits-ended-allocations"):
            found["allocations"] = [a for a in found["allocations"] if a["end_date"] is None]
        referenced = {n["author_id"] for n in found["case_notes"]}
        referenced |= {a["practitioner_id"] for a in found["allocations"]}
        referenced |= {v["recorded_by"] for v in found["visits"]}
        found["practitioners"] = [p for p in rows(self.store, "practitioners") if p["id"] in referenced]
        files = [(t, found[t]) for t in RECORD_TYPES]
        if CAPABILITIES.get("chronology_export"):  # the chronology of the package's own records
            chronology = from_records(
                self.faults,
                referrals=found["referrals"],
                assessments=found["assessments"],
                visits=found["visits"],
                allocations=found["allocations"],
            )
            files.append(("chronology", chronology))
        return files

    async def get_transfer_package(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        if not self.has("transfer-package-for-practitioners"):
            self._require(who, MANAGERS)
        child_id = request.path_params["child_id"]
        head = {
            "kind": "transfer",
            "spec_version": SPEC_VERSION,
            "generated_at": stamp(),
            "producer": PRODUCER,
        }

        def build() -> Any:
            with self.store.lock:
                child = self._child_row(child_id)
                head["source"] = {"council": self.council, "child_id": child["id"], "local_id": child["local_id"]}
                spool = write_archive(self._package_files(child), head)
                if not self.has("audit-misses-transfer-out"):
                    self._audit(who, child_id, "transfer_out")
                return spool

        spool = await run_in_threadpool(build)

        def chunks() -> Iterator[bytes]:
            with spool:
                spool.seek(0)
                while block := spool.read(65536):
                    yield block

        return StreamingResponse(
            chunks(),
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="transfer-{child_id}.zip"'},
        )

    # -- receiving -------------------------------------------------------------------------
    async def import_transfer(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        raw = await request.body()
        if len(raw) > MAX_PACKAGE_BYTES:
            raise ApiError(
                413, "INVALID_TRANSFER_PACKAGE", f"a transfer package may not exceed {MAX_PACKAGE_BYTES} bytes"
            )
        if not raw.startswith(b"PK"):
            raise _invalid("the body is not a zip archive (a transfer package)")
        transfer = await run_in_threadpool(self._import, raw, who)
        return json_response(transfer, 201)

    def _import(self, raw: bytes, who: dict[str, Any]) -> dict[str, Any]:
        from conformance.errors import ConformanceError
        from conformance.export.records import validator
        from conformance.export.transfer import read_package, validate_transfer

        with tempfile.TemporaryDirectory(prefix="ics-import-") as tmp:
            path = Path(tmp) / "package.zip"
            path.write_bytes(raw)
            if not self.has("import-accepts-invalid-package"):
                report = validate_transfer(path, max_examples=10)
                if report.errors:
                    raise _invalid("the package could not be checked: " + "; ".join(report.errors)[:300])
                if not report.conformant:
                    details = [
                        FieldError(
                            f"{f.location}{' ' + f.pointer if f.pointer else ''}".replace(str(path), "package"),
                            f.message.replace(str(path), "package"),
                        )
                        for f in report.findings()
                    ]
                    summary = report.summary(3).replace(str(path), "package")
                    raise _invalid(f"not a valid transfer package: {summary}"[:1000], details)
            try:
                package = read_package(path)
            except ConformanceError as exc:
                raise _invalid(f"unreadable package: {str(exc).replace(str(path), 'package')}") from None
        for record_type, found in package.records.items():  # what cannot be stored is refused even so
            check = validator(record_type).is_valid
            if not all(check(r) for r in found):
                raise _invalid(f"{record_type}.jsonl holds records that are not valid {record_type}")
        raw_source = package.manifest.get("source")
        source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
        children = package.records.get("children") or []
        child = next((c for c in children if c.get("id") == source.get("child_id")), children[0] if children else None)
        if child is None:
            raise _invalid("the package holds no child")
        return self._store_package(package.records, child, source, who)

    def _external_practitioner(self, council: str, record: dict[str, Any]) -> str:
        """The local practitioner standing for a sending council's practitioner (created once; cannot sign in)."""
        known = self.store.one(
            "SELECT practitioner_id FROM external_practitioners WHERE council = ? AND source_id = ?",
            (council, record["id"]),
        )
        if known is not None:
            return str(known["practitioner_id"])
        local = new_id("p")
        self.store.insert(
            "practitioners",
            {
                "id": local,
                "name": record["name"],
                "role": record["role"],
                "token_sha256": token_digest(secrets.token_urlsafe(32)),  # no token is ever issued
            },
        )
        self.store.insert(
            "external_practitioners", {"council": council, "source_id": record["id"], "practitioner_id": local}
        )
        return local

    def _store_package(
        self, found: dict[str, list[dict[str, Any]]], child: dict[str, Any], source: dict[str, Any], who: dict[str, Any]
    ) -> dict[str, Any]:
        council = str(source.get("council") or "unknown council")
        maps: dict[str, dict[str, str]] = {t: {} for t in RECORD_TYPES}
        today = self.today().isoformat()
        stamp_now = now_stamp()
        with self.store.transaction():
            for record in found.get("practitioners") or []:
                maps["practitioners"][record["id"]] = self._external_practitioner(council, record)

            def practitioner(source_id: str) -> str:
                return maps["practitioners"].get(source_id) or who["id"]

            cid = new_id("c")
            postcode = rules.canonical_postcode(child["postcode"]) if child.get("postcode") else None
            self.store.insert(
                "children",
                {
                    "id": cid,
                    "local_id": None,
                    "given_name": child["given_name"],
                    "family_name": child["family_name"],
                    "given_keys": rules.stored_name_keys(child["given_name"], self.faults),
                    "family_keys": rules.stored_name_keys(child["family_name"], self.faults),
                    "date_of_birth": child.get("date_of_birth"),
                    "expected_date_of_birth": child.get("expected_date_of_birth"),
                    "gender": child["gender"],
                    "date_of_death": child.get("date_of_death"),
                    "upn": child.get("upn"),
                    "nhs_number": child.get("nhs_number"),
                    "postcode": postcode or child.get("postcode"),
                    "postcode_key": rules.postcode_key(child["postcode"]) if child.get("postcode") else None,
                    "shielded": 0 if self.has("import-unshields") else int(bool(child.get("shielded"))),
                    "created_at": stamp_now,
                    "updated_at": stamp_now,
                },
            )
            maps["children"][child["id"]] = cid
            if not self.has("import-loses-aliases"):
                for alias in found.get("aliases") or []:
                    local = new_id("al")
                    self.store.insert(
                        "aliases",
                        {
                            "id": local,
                            "child_id": cid,
                            "given_name": alias["given_name"],
                            "family_name": alias["family_name"],
                            "given_keys": rules.stored_name_keys(alias["given_name"], self.faults),
                            "family_keys": rules.stored_name_keys(alias["family_name"], self.faults),
                            "type": alias["type"],
                        },
                    )
                    maps["aliases"][alias["id"]] = local
            for referral in found.get("referrals") or []:
                local = new_id("r")
                self.store.insert(
                    "referrals",
                    {
                        "id": local,
                        "child_id": cid,
                        **{k: referral[k] for k in ("received_on", "source", "reason")},
                    },
                )
                maps["referrals"][referral["id"]] = local
            for assessment in found.get("assessments") or []:
                local = new_id("as")
                self.store.insert(
                    "assessments",
                    {
                        "id": local,
                        "child_id": cid,
                        "referral_id": maps["referrals"].get(assessment.get("referral_id") or ""),
                        **{
                            k: assessment.get(k)
                            for k in ("type", "start_date", "due_date", "status", "completed_on", "authorised_by")
                        },
                    },
                )
                maps["assessments"][assessment["id"]] = local
            if not self.has("import-loses-visits"):
                for visit in found.get("visits") or []:
                    assessment_id = maps["assessments"].get(visit["assessment_id"])
                    if assessment_id is None:
                        continue
                    local = new_id("v")
                    seen_alone = visit.get("seen_alone")
                    self.store.insert(
                        "visits",
                        {
                            "id": local,
                            "assessment_id": assessment_id,
                            "visit_date": visit["visit_date"],
                            "child_seen": int(bool(visit["child_seen"])),
                            "seen_alone": None if seen_alone is None else int(seen_alone),
                            "not_seen_alone_reason": visit.get("not_seen_alone_reason"),
                            "recorded_by": practitioner(visit["recorded_by"]),
                        },
                    )
                    maps["visits"][visit["id"]] = local
            for note in found.get("case_notes") or []:
                local = new_id("n")
                restricted = bool(note["restricted"]) and not self.has("import-unrestricts-notes")
                self.store.insert(
                    "case_notes",
                    {
                        "id": local,
                        "child_id": cid,
                        "author_id": practitioner(note["author_id"]),
                        "text": note["text"],
                        "restricted": int(restricted),
                        "created_at": note["created_at"],
                    },
                )
                maps["case_notes"][note["id"]] = local
            for allocation in found.get("allocations") or []:
                local = new_id("a")
                self.store.insert(
                    "allocations",
                    {
                        "id": local,
                        "child_id": cid,
                        "practitioner_id": practitioner(allocation["practitioner_id"]),
                        "start_date": allocation["start_date"],
                        "end_date": allocation.get("end_date") or max(today, allocation["start_date"]),
                    },
                )
                maps["allocations"][allocation["id"]] = local
            transfer = {
                "id": new_id("t"),
                "child_id": cid,
                "source": {
                    "council": council,
                    "child_id": str(source.get("child_id") or child["id"]),
                    "local_id": source.get("local_id") if "local_id" in source else child.get("local_id"),
                },
                "imported_at": stamp_now,
                "imported_by": who["id"],
                "records": maps,
            }
            self.store.insert(
                "transfers",
                {
                    "id": transfer["id"],
                    "child_id": cid,
                    "imported_at": stamp_now,
                    "imported_by": who["id"],
                    "source": orjson.dumps(transfer["source"]).decode(),
                    "records": orjson.dumps(maps).decode(),
                },
            )
            if not self.has("audit-misses-transfer-in"):
                self._audit(who, cid, "transfer_in")
        return transfer

    def get_transfer(self, request: Request, who: dict[str, Any], op: Operation) -> Response:
        transfer_id = request.path_params["transfer_id"]
        row = self.store.get("transfers", transfer_id)
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no transfer {transfer_id!r}")
        return json_response(
            {
                "id": row["id"],
                "child_id": row["child_id"],
                "source": orjson.loads(row["source"]),
                "imported_at": row["imported_at"],
                "imported_by": row["imported_by"],
                "records": orjson.loads(row["records"]),
            }
        )
