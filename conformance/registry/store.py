"""The registry store: what ``ics-conformance registry`` does to the database.

:class:`Registry` wraps one database (SQLite file or PostgreSQL URL). Writes run in one
transaction each (:func:`conformance.registry.db.write`): a submit stores the bundle, its
certificate and its waivers together or not at all. Reads for the rules load a
:class:`conformance.registry.rules.Programme`.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from conformance.errors import UsageError
from conformance.registry import db, intake, migrate
from conformance.registry import schema as t
from conformance.registry.intake import Facts, KeyInfo, Refused
from conformance.registry.rules import Cert, Deployment, PhaseRule, Programme, Status, Version, requirement_phase

COUNCILS_CSV = Path(__file__).resolve().parent / "data" / "councils-2008.csv"
EXPECTED_COUNCILS = 150

#: The programme's phases and their deadline history, seeded by ``registry init``.
PHASE_SEED: tuple[tuple[str, int, str, tuple[tuple[dt.date | None, str], ...]], ...] = (
    (
        "1A",
        1,
        "Phase 1A: the baseline ICS record",
        ((dt.date(2007, 1, 1), "Phase 1A: ICS live in every council by 1 January 2007"),),
    ),
    (
        "1B",
        2,
        "Phase 1B: comprehensive search, case-note notifications, no assessment completed unseen",
        (
            (dt.date(2008, 3, 31), "Phase 1B live by 31 March 2008"),
            (
                dt.date(2008, 9, 30),
                "moved to 30 September 2008 after 95 of 150 councils missed 31 March; unused grant may be recovered",
            ),
        ),
    ),
    (
        "1C",
        3,
        "Phase 1C: transfer between councils, audit, chronology (draft, specified with suppliers)",
        ((None, "Phase 1C specified with suppliers; no deadline set yet"),),
    ),
)

META_GENERATION = "generation"
META_VIEW_DATE = "view_date"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def fold(text: str) -> str:
    """The matching key of a name: whitespace collapsed, case-folded."""
    return " ".join(text.split()).casefold()


def load_councils_csv(path: Path = COUNCILS_CSV) -> list[dict[str, Any]]:
    """The 150 councils of 2008 shipped with the package (code, name, type, region)."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = [
            {
                "code": int(r["code"]),
                "name": r["name"].strip(),
                "type": r["type"].strip(),
                "region": r["region"].strip(),
            }
            for r in csv.DictReader(handle)
        ]
    if len(rows) != EXPECTED_COUNCILS or len({r["code"] for r in rows}) != EXPECTED_COUNCILS:
        raise UsageError(f"{path}: expected {EXPECTED_COUNCILS} councils with distinct codes, found {len(rows)}")
    return rows


@dataclass(frozen=True)
class SubmitOutcome:
    certificate_id: str
    created: bool
    phase: str
    verdict: str
    assurance: str
    supplier: str
    product: str
    version: str
    signer: str
    key_id: str

    @property
    def short(self) -> str:
        return self.certificate_id[:12]

    def to_json(self) -> dict[str, Any]:
        return {
            "certificate": self.certificate_id,
            "created": self.created,
            "phase": self.phase,
            "verdict": self.verdict,
            "assurance": self.assurance,
            "target": {"supplier": self.supplier, "product": self.product, "version": self.version},
            "signer": {"party": self.signer, "key_id": self.key_id},
        }


@dataclass(frozen=True)
class ReverifyOutcome:
    certificate_id: str
    ok: bool
    problem: str | None
    was_ok: bool


def _insert(connection: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT (it knows ON CONFLICT on both backends)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


class Registry:
    """One registry database."""

    def __init__(self, database: str | sa.URL) -> None:
        self.url = database if isinstance(database, sa.URL) else db.normalise_url(database)

    @cached_property
    def engine(self) -> Engine:
        return db.engine_for(self.url)

    @property
    def display_url(self) -> str:
        return db.display_url(self.url)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ schema

    def init(self) -> dict[str, Any]:
        """Create or upgrade the schema and seed councils and phases (idempotent)."""
        try:
            before, after = migrate.upgrade(self.engine)
        except sa.exc.OperationalError as exc:
            raise UsageError(f"registry {self.display_url}: cannot open the database ({exc.orig})") from None
        councils = load_councils_csv()
        added_councils = added_phases = 0
        with db.write(self.engine) as c:
            known = set(c.execute(sa.select(t.councils.c.code)).scalars())
            fresh = [row for row in councils if row["code"] not in known]
            if fresh:
                c.execute(t.councils.insert(), fresh)
                added_councils = len(fresh)
            phases_known = set(c.execute(sa.select(t.phases.c.code)).scalars())
            now = utcnow()
            for code, ordinal, title, history in PHASE_SEED:
                if code in phases_known:
                    continue
                c.execute(
                    t.phases.insert().values(
                        code=code, ordinal=ordinal, title=title, requires_local_qa=False, min_assurance="self-assessed"
                    )
                )
                for deadline, reason in history:
                    c.execute(
                        t.phase_deadlines.insert().values(
                            phase_code=code, deadline=deadline, reason=reason, recorded_at=now
                        )
                    )
                added_phases += 1
            self._touch(c)
        return {
            "revision_before": before,
            "revision": after,
            "councils_added": added_councils,
            "phases_added": added_phases,
        }

    def require_ready(self) -> None:
        """UsageError unless the database is a registry at the newest schema revision."""
        try:
            with self.engine.connect() as c:
                revision = migrate.current(c)
        except sa.exc.OperationalError as exc:
            raise UsageError(f"registry {self.display_url}: cannot open the database ({exc.orig})") from None
        if revision is None:
            raise UsageError(
                f"registry {self.display_url}: not initialised; run 'ics-conformance registry init --db ...' first"
            )
        if revision != migrate.head():
            raise UsageError(
                f"registry {self.display_url}: schema revision {revision}, this version needs {migrate.head()}; "
                "run 'ics-conformance registry init' to upgrade it"
            )

    def _touch(self, c: Connection) -> None:
        """Mark a change (the dashboard's cache key)."""
        self._set_meta(c, META_GENERATION, uuid.uuid4().hex)

    def _set_meta(self, c: Connection, key: str, value: str | None) -> None:
        c.execute(t.meta.delete().where(t.meta.c.key == key))
        if value is not None:
            c.execute(t.meta.insert().values(key=key, value=value))

    def meta(self, key: str) -> str | None:
        with self.engine.connect() as c:
            return c.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key)).scalar()

    def generation(self) -> str | None:
        return self.meta(META_GENERATION)

    def view_date(self) -> dt.date | None:
        """The date the dashboard shows by default when the registry sets one (a demo does)."""
        value = self.meta(META_VIEW_DATE)
        return dt.date.fromisoformat(value) if value else None

    def set_view_date(self, day: dt.date | None) -> None:
        with db.write(self.engine) as c:
            self._set_meta(c, META_VIEW_DATE, day.isoformat() if day else None)
            self._touch(c)

    # ------------------------------------------------------------------ parties and keys

    def add_key(
        self,
        party: str,
        role: str,
        public_key_pem: str,
        *,
        supplier: str | None = None,
        council: str | None = None,
    ) -> KeyInfo:
        """Register a public key for a party (created if new). Idempotent for the same key and party."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        from conformance.certificate.signing import key_id as key_id_of

        party = " ".join(party.split())
        if not party:
            raise UsageError("a party needs a name")
        if role not in t.ROLES:
            raise UsageError(f"unknown role {role!r} (one of {', '.join(t.ROLES)})")
        if role == "supplier" and not supplier:
            raise UsageError("a supplier's key needs --supplier (the supplier name its certificates carry)")
        if role == "council" and not council:
            raise UsageError("a council's key needs --council (code or name)")
        try:
            public = serialization.load_pem_public_key(public_key_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise UsageError(f"not a PEM public key ({exc})") from None
        if not isinstance(public, Ed25519PublicKey):
            raise UsageError("not an Ed25519 public key")
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        kid = key_id_of(public)
        with db.write(self.engine) as c:
            council_code = self._council(c, council)["code"] if council else None
            supplier_id = self._upsert_named(c, t.suppliers, {}, supplier) if supplier else None
            row = c.execute(sa.select(t.parties).where(t.parties.c.name == party)).mappings().first()
            if row is None:
                party_id = c.execute(
                    t.parties.insert()
                    .values(
                        name=party, role=role, supplier_id=supplier_id, council_code=council_code, created_at=utcnow()
                    )
                    .returning(t.parties.c.id)
                ).scalar_one()
            else:
                if (row["role"], row["supplier_id"], row["council_code"]) != (role, supplier_id, council_code):
                    raise UsageError(f"party {party!r} is already registered with another role or scope")
                party_id = row["id"]
            existing = c.execute(sa.select(t.keys).where(t.keys.c.key_id == kid)).mappings().first()
            if existing is None:
                c.execute(
                    t.keys.insert().values(
                        key_id=kid, party_id=party_id, public_key_pem=pem.decode("ascii"), added_at=utcnow()
                    )
                )
            elif existing["party_id"] != party_id:
                raise UsageError(f"key {kid} is already registered for another party")
            self._touch(c)
        info = self.lookup_key(kid)
        assert info is not None
        return info

    def import_parties(self, path: Path) -> list[KeyInfo]:
        """Register the parties and keys of a parties file (YAML; format in docs/design.md §10)."""
        import yaml

        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UsageError(f"{path}: cannot read the parties file ({exc})") from None
        if not isinstance(document, dict) or not isinstance(document.get("parties"), list):
            raise UsageError(f"{path}: expected a mapping with a 'parties' list")
        added = []
        for index, entry in enumerate(document["parties"]):
            if not isinstance(entry, dict) or not entry.get("name") or not entry.get("role"):
                raise UsageError(f"{path}: parties[{index}] needs name and role")
            for key in entry.get("keys") or []:
                text = str(key)
                pem = text if "BEGIN PUBLIC KEY" in text else self._read_pem(path.parent / text)
                added.append(
                    self.add_key(
                        str(entry["name"]),
                        str(entry["role"]),
                        pem,
                        supplier=entry.get("supplier"),
                        council=str(entry["council"]) if entry.get("council") is not None else None,
                    )
                )
        return added

    @staticmethod
    def _read_pem(path: Path) -> str:
        try:
            return path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the public key ({exc})") from None

    def revoke_key(self, key_id: str, reason: str) -> KeyInfo:
        if not reason.strip():
            raise UsageError("a revocation needs a reason")
        with db.write(self.engine) as c:
            done = c.execute(
                t.keys.update()
                .where(t.keys.c.key_id == key_id, t.keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_reason=reason.strip())
            ).rowcount
            if not done:
                exists = c.execute(sa.select(t.keys.c.key_id).where(t.keys.c.key_id == key_id)).first()
                raise UsageError(f"key {key_id}: {'already revoked' if exists else 'not registered'}")
            self._touch(c)
        info = self.lookup_key(key_id)
        assert info is not None
        return info

    def _key_query(self) -> sa.Select[Any]:
        return (
            sa.select(
                t.keys.c.key_id,
                t.keys.c.public_key_pem,
                t.keys.c.revoked_at,
                t.keys.c.revoked_reason,
                t.parties.c.name.label("party"),
                t.parties.c.role,
                t.parties.c.council_code,
                t.suppliers.c.name.label("supplier"),
                t.councils.c.name.label("council_name"),
            )
            .join(t.parties, t.parties.c.id == t.keys.c.party_id)
            .outerjoin(t.suppliers, t.suppliers.c.id == t.parties.c.supplier_id)
            .outerjoin(t.councils, t.councils.c.code == t.parties.c.council_code)
        )

    @staticmethod
    def _key_info(row: sa.RowMapping) -> KeyInfo:
        return KeyInfo(
            key_id=row["key_id"],
            public_key_pem=row["public_key_pem"],
            party=row["party"],
            role=row["role"],
            supplier=row["supplier"],
            council_code=row["council_code"],
            council_name=row["council_name"],
            revoked_at=row["revoked_at"],
            revoked_reason=row["revoked_reason"],
        )

    def lookup_key(self, key_id: str) -> KeyInfo | None:
        with self.engine.connect() as c:
            row = c.execute(self._key_query().where(t.keys.c.key_id == key_id)).mappings().first()
        return self._key_info(row) if row else None

    def keys(self) -> list[KeyInfo]:
        with self.engine.connect() as c:
            rows = c.execute(self._key_query().order_by(t.parties.c.name, t.keys.c.key_id)).mappings().all()
        return [self._key_info(r) for r in rows]

    # ------------------------------------------------------------------ names

    def _upsert_named(self, c: Connection, table: sa.Table, parent: dict[str, Any], name: str) -> int:
        """The id of the supplier/product/version called ``name`` under ``parent``; created if new."""
        column, key_column = ("version", "version_key") if table is t.versions else ("name", "name_key")
        clean = " ".join(name.split())
        values = {**parent, column: clean, key_column: fold(clean)}
        c.execute(_insert(c, table).values(**values).on_conflict_do_nothing())
        where = [table.c[k] == v for k, v in parent.items()] + [table.c[key_column] == fold(clean)]
        return int(c.execute(sa.select(table.c.id).where(*where)).scalar_one())

    def _version_id(self, c: Connection, supplier: str, product: str, version: str) -> int:
        supplier_id = self._upsert_named(c, t.suppliers, {}, supplier)
        product_id = self._upsert_named(c, t.products, {"supplier_id": supplier_id}, product)
        return self._upsert_named(c, t.versions, {"product_id": product_id}, version)

    def _council(self, c: Connection, text: str | int) -> sa.RowMapping:
        """A council by LA code or name (exact, else a unique partial match)."""
        value = str(text).strip()
        if value.isdigit():
            row = c.execute(sa.select(t.councils).where(t.councils.c.code == int(value))).mappings().first()
            if row is None:
                raise UsageError(f"no council with LA code {value} (see 'ics-conformance registry list councils')")
            return row
        rows = c.execute(sa.select(t.councils)).mappings().all()
        wanted = fold(value)
        exact = [r for r in rows if fold(r["name"]) == wanted]
        if exact:
            return exact[0]
        partial = [r for r in rows if wanted and wanted in fold(r["name"])]
        if len(partial) == 1:
            return partial[0]
        if not partial:
            raise UsageError(f"no council called {value!r} (see 'ics-conformance registry list councils')")
        names = ", ".join(f"{r['name']} ({r['code']})" for r in partial[:8])
        raise UsageError(f"council {value!r} is ambiguous: {names}; give the LA code")

    def council(self, text: str | int) -> dict[str, Any]:
        with self.engine.connect() as c:
            return dict(self._council(c, text))

    def councils(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(sa.select(t.councils).order_by(t.councils.c.code)).mappings()]

    # ------------------------------------------------------------------ submit

    def submit(self, path: Path) -> SubmitOutcome:
        """Verify the bundle at ``path`` and store it with its certificate; :class:`Refused` if it does not verify.

        Idempotent: a bundle whose manifest is already stored is not stored again.
        """
        content, filename = intake.bundle_bytes(Path(path))
        scratch = intake.scratch_file(content)
        try:
            facts = intake.verify_and_extract(scratch, self.lookup_key, filename=filename, keys=self.keys)
        finally:
            scratch.unlink(missing_ok=True)
        return self.store(facts)

    def store(self, facts: Facts) -> SubmitOutcome:
        """Store verified ``facts`` in one transaction (bundle, certificate, waivers)."""
        outcome = SubmitOutcome(
            certificate_id=facts.manifest_sha256,
            created=True,
            phase=facts.phase,
            verdict=facts.verdict,
            assurance=facts.assurance,
            supplier=facts.supplier,
            product=facts.product,
            version=facts.version,
            signer=facts.signer.party,
            key_id=facts.signer.key_id,
        )
        now = utcnow()
        with db.write(self.engine) as c:
            if c.execute(sa.select(t.phases.c.code).where(t.phases.c.code == facts.phase)).first() is None:
                raise Refused(f"phase {facts.phase!r} is not a phase of this programme")
            stored = c.execute(
                _insert(c, t.bundles)
                .values(
                    manifest_sha256=facts.manifest_sha256,
                    content=facts.content,
                    content_sha256=facts.content_sha256,
                    size=len(facts.content),
                    filename=facts.filename,
                    stored_at=now,
                )
                .on_conflict_do_nothing(index_elements=["manifest_sha256"])
                .returning(t.bundles.c.manifest_sha256)
            ).first()
            if stored is None:
                return _replace(outcome, created=False)
            version_id = self._version_id(c, facts.supplier, facts.product, facts.version)
            _insert_certificate(c, facts, version_id, now)
            if facts.waivers:
                c.execute(
                    t.waivers.insert(),
                    [
                        {
                            "certificate_id": facts.manifest_sha256,
                            "requirement": w.requirement,
                            "reference": w.reference,
                            "reason": w.reason,
                            "expires": w.expires,
                            "scope": w.scope,
                        }
                        for w in facts.waivers
                    ],
                )
            self._touch(c)
        return outcome

    # ------------------------------------------------------------------ deployments, revocation, phases

    def deploy(
        self,
        council: str,
        product: str,
        version: str,
        from_date: dt.date,
        *,
        supplier: str | None = None,
        recorded_by: str | None = None,
    ) -> dict[str, Any]:
        """Record that ``council`` runs ``product`` ``version`` from ``from_date``."""
        with db.write(self.engine) as c:
            council_row = self._council(c, council)
            query = (
                sa.select(t.products.c.id, t.products.c.name, t.suppliers.c.name.label("supplier"))
                .join(t.suppliers, t.suppliers.c.id == t.products.c.supplier_id)
                .where(t.products.c.name_key == fold(product))
            )
            if supplier:
                query = query.where(t.suppliers.c.name_key == fold(supplier))
            matches = c.execute(query).mappings().all()
            if len(matches) > 1:
                names = ", ".join(sorted(m["supplier"] for m in matches))
                raise UsageError(f"product {product!r} is made by several suppliers ({names}); give --supplier")
            if matches:
                product_id = matches[0]["id"]
                supplier_name = matches[0]["supplier"]
            elif supplier:
                supplier_id = self._upsert_named(c, t.suppliers, {}, supplier)
                product_id = self._upsert_named(c, t.products, {"supplier_id": supplier_id}, product)
                supplier_name = supplier
            else:
                raise UsageError(f"unknown product {product!r}; give --supplier to register it")
            version_id = self._upsert_named(c, t.versions, {"product_id": product_id}, version)
            deployment_id = c.execute(
                t.deployments.insert()
                .values(
                    council_code=council_row["code"],
                    version_id=version_id,
                    from_date=from_date,
                    recorded_at=utcnow(),
                    recorded_by=recorded_by,
                )
                .returning(t.deployments.c.id)
            ).scalar_one()
            self._touch(c)
        return {
            "deployment": deployment_id,
            "council": {"code": council_row["code"], "name": council_row["name"]},
            "supplier": supplier_name,
            "product": product,
            "version": version,
            "from": from_date.isoformat(),
        }

    def certificate_id(self, prefix: str) -> str:
        """The full certificate id for a unique prefix (at least 6 hex digits)."""
        value = prefix.strip().lower()
        if len(value) < 6 or any(ch not in "0123456789abcdef" for ch in value):
            raise UsageError(f"certificate {prefix!r}: give at least 6 hex digits of its id")
        with self.engine.connect() as c:
            ids = (
                c.execute(sa.select(t.certificates.c.id).where(t.certificates.c.id.like(value + "%")).limit(3))
                .scalars()
                .all()
            )
        if not ids:
            raise UsageError(f"no certificate {prefix!r}")
        if len(ids) > 1:
            raise UsageError(f"certificate {prefix!r} is ambiguous; give more digits")
        return str(ids[0])

    def revoke(self, certificate: str, reason: str) -> dict[str, Any]:
        if not reason.strip():
            raise UsageError("a revocation needs a reason (--reason)")
        cert_id = self.certificate_id(certificate)
        with db.write(self.engine) as c:
            done = c.execute(
                t.certificates.update()
                .where(t.certificates.c.id == cert_id, t.certificates.c.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_reason=reason.strip())
            ).rowcount
            if not done:
                raise UsageError(f"certificate {cert_id[:12]} is already revoked")
            self._touch(c)
        return {"certificate": cert_id, "revoked": True, "reason": reason.strip()}

    def set_deadline(self, phase: str, deadline: dt.date | None, reason: str) -> None:
        if not reason.strip():
            raise UsageError("a deadline change needs a reason (--reason)")
        with db.write(self.engine) as c:
            self._phase(c, phase)
            c.execute(
                t.phase_deadlines.insert().values(
                    phase_code=phase, deadline=deadline, reason=reason.strip(), recorded_at=utcnow()
                )
            )
            self._touch(c)

    def set_phase_rules(
        self, phase: str, *, requires_local_qa: bool | None = None, min_assurance: str | None = None
    ) -> None:
        values: dict[str, Any] = {}
        if requires_local_qa is not None:
            values["requires_local_qa"] = requires_local_qa
        if min_assurance is not None:
            if min_assurance not in ("self-assessed", "witnessed"):
                raise UsageError("--min-assurance: self-assessed or witnessed")
            values["min_assurance"] = min_assurance
        if not values:
            return
        with db.write(self.engine) as c:
            self._phase(c, phase)
            c.execute(t.phases.update().where(t.phases.c.code == phase).values(**values))
            self._touch(c)

    def _phase(self, c: Connection, phase: str) -> None:
        if c.execute(sa.select(t.phases.c.code).where(t.phases.c.code == phase)).first() is None:
            raise UsageError(f"unknown phase {phase!r}")

    # ------------------------------------------------------------------ reverify

    def reverify(self) -> list[ReverifyOutcome]:
        """Re-check every stored bundle (content hash, signature, files, signer key) and record the outcome."""
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(t.certificates.c.id, t.certificates.c.verified_ok).order_by(t.certificates.c.submitted_at)
            ).all()
        outcomes = []
        for cert_id, was_ok in rows:
            problem = self._recheck(cert_id)
            with db.write(self.engine) as c:
                c.execute(
                    t.certificates.update()
                    .where(t.certificates.c.id == cert_id)
                    .values(verified_at=utcnow(), verified_ok=problem is None, verify_problem=problem)
                )
                self._touch(c)
            outcomes.append(ReverifyOutcome(cert_id, problem is None, problem, bool(was_ok)))
        return outcomes

    def _recheck(self, cert_id: str) -> str | None:
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(t.bundles.c.content, t.bundles.c.content_sha256).where(t.bundles.c.manifest_sha256 == cert_id)
            ).first()
        if row is None:
            return "the stored bundle is missing"
        content, expected = bytes(row[0]), row[1]
        actual = hashlib.sha256(content).hexdigest()
        if actual != expected:
            return f"the stored bundle changed since it was submitted (sha256 {actual[:16]}…, stored {expected[:16]}…)"
        scratch = intake.scratch_file(content)
        try:
            facts = intake.verify_and_extract(scratch, self.lookup_key, keys=self.keys)
        except Refused as refused:
            return refused.reason
        except UsageError as exc:
            return str(exc)
        finally:
            scratch.unlink(missing_ok=True)
        if facts.manifest_sha256 != cert_id:
            return "the stored bundle's manifest is not the one registered"
        return None

    # ------------------------------------------------------------------ reading

    def bundle(self, cert_id: str) -> tuple[bytes, str]:
        """The stored bundle zip and its file name."""
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(t.bundles.c.content, t.bundles.c.filename).where(t.bundles.c.manifest_sha256 == cert_id)
            ).first()
        if row is None:
            raise UsageError(f"no stored bundle for certificate {cert_id[:12]}")
        return bytes(row[0]), str(row[1])

    def bundle_member(self, cert_id: str, rel: str, limit: int = 64 * 1024 * 1024) -> bytes:
        """One file of a stored bundle (e.g. ``report.html``), read through the safe archive reader."""
        from conformance.certificate.archive import Bad, open_source

        content, _ = self.bundle(cert_id)
        scratch = intake.scratch_file(content)
        try:
            source = open_source(scratch)
            try:
                if rel not in source.names():
                    raise UsageError(f"certificate {cert_id[:12]}: no {rel} in its bundle")
                return source.read(rel, limit)
            finally:
                source.close()
        except Bad as bad:
            raise UsageError(f"certificate {cert_id[:12]}: stored bundle unreadable ({bad})") from None
        finally:
            scratch.unlink(missing_ok=True)

    def programme(self, council_code: int | None = None) -> Programme:
        """Load the rows the rules need: everything, or what one council's status needs."""
        with db.read(self.engine) as c:
            return load_programme(c, council_code)

    def status(self, council: str, phase: str, on: dt.date) -> tuple[Status, dict[str, Any]]:
        """Is ``council`` compliant for ``phase`` on ``on``? (status, council row)"""
        council_row = self.council(council)
        programme = self.programme(council_row["code"])
        if phase not in programme.phases:
            raise UsageError(f"unknown phase {phase!r} (one of {', '.join(programme.phases)})")
        return programme.status(council_row["code"], phase, on), council_row

    def certificate_rows(
        self, *, ids: Sequence[str] | None = None, phase: str | None = None, supplier: str | None = None
    ) -> list[dict[str, Any]]:
        """Certificates with their target and signer, newest run first."""
        query = certificate_query()
        if ids is not None:
            query = query.where(t.certificates.c.id.in_(list(ids)))
        if phase:
            query = query.where(t.certificates.c.phase == phase)
        if supplier:
            query = query.where(t.suppliers.c.name_key == fold(supplier))
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(query.order_by(t.certificates.c.finished_at.desc())).mappings()]

    def waivers_of(self, cert_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        ids = list(cert_ids)
        if not ids:
            return out
        with self.engine.connect() as c:
            for row in c.execute(
                sa.select(t.waivers).where(t.waivers.c.certificate_id.in_(ids)).order_by(t.waivers.c.expires)
            ).mappings():
                out.setdefault(row["certificate_id"], []).append(dict(row))
        return out

    def deployments_rows(self, council_code: int | None = None) -> list[dict[str, Any]]:
        query = (
            sa.select(
                t.deployments.c.id,
                t.deployments.c.council_code,
                t.councils.c.name.label("council"),
                t.deployments.c.from_date,
                t.deployments.c.recorded_at,
                t.deployments.c.recorded_by,
                t.deployments.c.version_id,
                t.versions.c.version,
                t.products.c.name.label("product"),
                t.suppliers.c.name.label("supplier"),
            )
            .join(t.councils, t.councils.c.code == t.deployments.c.council_code)
            .join(t.versions, t.versions.c.id == t.deployments.c.version_id)
            .join(t.products, t.products.c.id == t.versions.c.product_id)
            .join(t.suppliers, t.suppliers.c.id == t.products.c.supplier_id)
            .order_by(t.deployments.c.council_code, t.deployments.c.from_date, t.deployments.c.id)
        )
        if council_code is not None:
            query = query.where(t.deployments.c.council_code == council_code)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(query).mappings()]

    def phase_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            phases = load_phases(c)
        return [
            {
                "code": rule.code,
                "title": rule.title,
                "deadline": rule.deadline,
                "requires_local_qa": rule.requires_local_qa,
                "min_assurance": rule.min_assurance,
                "history": [{"deadline": d, "reason": r, "recorded_at": at} for d, r, at in rule.history],
            }
            for rule in phases.values()
        ]


def _replace(outcome: SubmitOutcome, **changes: Any) -> SubmitOutcome:
    from dataclasses import replace

    return replace(outcome, **changes)


def _insert_certificate(c: Connection, facts: Facts, version_id: int, now: dt.datetime) -> None:
    c.execute(
        t.certificates.insert().values(
            id=facts.manifest_sha256,
            run_id=facts.run_id,
            phase=facts.phase,
            verdict=facts.verdict,
            assurance=facts.assurance,
            signer_key_id=facts.signer.key_id,
            version_id=version_id,
            council_code=facts.council_code,
            target_url=facts.target_url,
            builtin_reference=facts.builtin_reference,
            faults=facts.faults,
            spec_version=facts.spec_version,
            spec_sha256=facts.spec_sha256,
            harness_version=facts.harness_version,
            started_at=facts.started_at,
            finished_at=facts.finished_at,
            finished_on=facts.finished_at.date(),
            counts=facts.counts,
            submitted_at=now,
            verified_at=now,
            verified_ok=True,
        )
    )


def certificate_query() -> sa.Select[Any]:
    """Certificates joined with their version, product, supplier, signer and council."""
    return (
        sa.select(
            t.certificates,
            t.versions.c.version,
            t.products.c.name.label("product"),
            t.suppliers.c.name.label("supplier"),
            t.parties.c.name.label("signer"),
            t.parties.c.role.label("signer_role"),
            t.councils.c.name.label("council"),
        )
        .join(t.versions, t.versions.c.id == t.certificates.c.version_id)
        .join(t.products, t.products.c.id == t.versions.c.product_id)
        .join(t.suppliers, t.suppliers.c.id == t.products.c.supplier_id)
        .join(t.keys, t.keys.c.key_id == t.certificates.c.signer_key_id)
        .join(t.parties, t.parties.c.id == t.keys.c.party_id)
        .outerjoin(t.councils, t.councils.c.code == t.certificates.c.council_code)
    )


def load_phases(c: Connection) -> dict[str, PhaseRule]:
    history: dict[str, list[tuple[dt.date | None, str, dt.datetime]]] = {}
    for row in c.execute(sa.select(t.phase_deadlines).order_by(t.phase_deadlines.c.id)).mappings():
        history.setdefault(row["phase_code"], []).append((row["deadline"], row["reason"], row["recorded_at"]))
    phases = {}
    for row in c.execute(sa.select(t.phases).order_by(t.phases.c.ordinal)).mappings():
        steps = tuple(history.get(row["code"], ()))
        phases[row["code"]] = PhaseRule(
            code=row["code"],
            ordinal=row["ordinal"],
            title=row["title"],
            requires_local_qa=bool(row["requires_local_qa"]),
            min_assurance=row["min_assurance"],
            deadline=steps[-1][0] if steps else None,
            history=steps,
        )
    return phases


def load_programme(c: Connection, council_code: int | None = None) -> Programme:
    """The rows the rules need (``council_code``: only what that council's status needs)."""
    programme = Programme(phases=load_phases(c))
    deployments = sa.select(
        t.deployments.c.id, t.deployments.c.council_code, t.deployments.c.version_id, t.deployments.c.from_date
    )
    if council_code is not None:
        deployments = deployments.where(t.deployments.c.council_code == council_code)
    for drow in c.execute(deployments):
        programme.add_deployment(Deployment(*drow))
    versions = sa.select(t.versions.c.id, t.suppliers.c.name, t.products.c.name, t.versions.c.version).join_from(
        t.versions, t.products, t.products.c.id == t.versions.c.product_id
    )
    versions = versions.join(t.suppliers, t.suppliers.c.id == t.products.c.supplier_id)
    if council_code is not None:
        deployed = {d.version_id for ds in programme.deployments.values() for d in ds}
        products = sa.select(t.versions.c.product_id).where(t.versions.c.id.in_(deployed or {-1}))
        versions = versions.where(t.versions.c.product_id.in_(products))
    for vrow in c.execute(versions):
        programme.versions[vrow[0]] = Version(*vrow)
    certs = (
        sa.select(
            t.certificates.c.id,
            t.certificates.c.version_id,
            t.certificates.c.phase,
            t.certificates.c.verdict,
            t.certificates.c.assurance,
            t.certificates.c.finished_on,
            t.parties.c.role,
            t.certificates.c.council_code,
            t.certificates.c.revoked_at,
            t.certificates.c.revoked_reason,
            t.certificates.c.verified_ok,
            t.certificates.c.verify_problem,
            t.certificates.c.signer_key_id,
            t.parties.c.name,
        )
        .join(t.keys, t.keys.c.key_id == t.certificates.c.signer_key_id)
        .join(t.parties, t.parties.c.id == t.keys.c.party_id)
    )
    waivers = sa.select(t.waivers.c.certificate_id, t.waivers.c.requirement, t.waivers.c.expires)
    if council_code is not None:
        wanted = list(programme.versions) or [-1]
        certs = certs.where(t.certificates.c.version_id.in_(wanted))
        waivers = waivers.join(t.certificates, t.certificates.c.id == t.waivers.c.certificate_id).where(
            t.certificates.c.version_id.in_(wanted)
        )
    waived: dict[str, list[tuple[str, dt.date]]] = {}
    for cert_id, requirement, expires in c.execute(waivers):
        waived.setdefault(cert_id, []).append((requirement_phase(requirement), expires))
    by_version = programme.certificates
    for cid, vid, phase, verdict, level, day, role, council, revoked, why, ok, problem, kid, signer in c.execute(
        certs
    ).all():
        by_version[vid].append(
            Cert(
                cid,
                vid,
                phase,
                verdict,
                level,
                day,
                role,
                council,
                revoked is not None,
                why,
                bool(ok),
                problem,
                tuple(waived.get(cid, ())),
                kid,
                signer,
            )  # fmt: skip
        )
    return programme
