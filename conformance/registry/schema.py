"""The registry's tables (SQLAlchemy Core), the one description of the schema the code uses.

The database itself is created and upgraded by the Alembic migrations in
``conformance/registry/migrations/``; a test compares the migrated database with these
tables on SQLite and PostgreSQL, so the two cannot drift apart.

Times are stored as naive UTC datetimes, dates as dates. Names of suppliers, products and
versions keep the spelling of the first certificate or deployment that named them, and are
matched on a ``*_key`` (trimmed, case-folded) so "Acme Ltd" and "ACME LTD " are one supplier.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Roles a party can have; see docs/design.md §9 (who may sign what, and the assurance it gives).
ROLES = ("certifier", "test_lab", "supplier", "council")
ASSURANCE_LEVELS = ("self-assessed", "witnessed", "unknown")

meta = sa.Table(
    "registry_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

councils = sa.Table(
    "councils",
    metadata,
    sa.Column("code", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(120), nullable=False, unique=True),
    sa.Column("type", sa.String(60), nullable=False),
    sa.Column("region", sa.String(60), nullable=False),
)

suppliers = sa.Table(
    "suppliers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("name_key", sa.String(200), nullable=False, unique=True),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("supplier_id", sa.Integer, sa.ForeignKey("suppliers.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("name_key", sa.String(200), nullable=False),
    sa.UniqueConstraint("supplier_id", "name_key"),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("version_key", sa.String(100), nullable=False),
    sa.UniqueConstraint("product_id", "version_key"),
)

parties = sa.Table(
    "parties",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("supplier_id", sa.Integer, sa.ForeignKey("suppliers.id"), nullable=True),
    sa.Column("council_code", sa.Integer, sa.ForeignKey("councils.code"), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.CheckConstraint("role IN ('certifier', 'test_lab', 'supplier', 'council')", name="role"),
)

keys = sa.Table(
    "keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("party_id", sa.Integer, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("public_key_pem", sa.Text, nullable=False),
    sa.Column("added_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
    sa.Column("revoked_reason", sa.Text, nullable=True),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("council_code", sa.Integer, sa.ForeignKey("councils.code"), nullable=False),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
    sa.Column("from_date", sa.Date, nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("recorded_by", sa.String(200), nullable=True),
    sa.Index(None, "council_code", "from_date"),
    sa.Index(None, "version_id"),
)

phases = sa.Table(
    "phases",
    metadata,
    sa.Column("code", sa.String(4), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("ordinal", sa.Integer, nullable=False, unique=True),
    sa.Column("requires_local_qa", sa.Boolean, nullable=False),
    sa.Column("min_assurance", sa.String(20), nullable=False),
    sa.CheckConstraint("min_assurance IN ('self-assessed', 'witnessed')", name="min_assurance"),
)

phase_deadlines = sa.Table(
    "phase_deadlines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("phase_code", sa.String(4), sa.ForeignKey("phases.code"), nullable=False),
    sa.Column("deadline", sa.Date, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Index(None, "phase_code", "id"),
)

bundles = sa.Table(
    "bundles",
    metadata,
    sa.Column("manifest_sha256", sa.String(64), primary_key=True),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("filename", sa.String(300), nullable=False),
    sa.Column("stored_at", sa.DateTime, nullable=False),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("id", sa.String(64), sa.ForeignKey("bundles.manifest_sha256"), primary_key=True),
    sa.Column("run_id", sa.String(100), nullable=True),
    sa.Column("phase", sa.String(4), sa.ForeignKey("phases.code"), nullable=False),
    sa.Column("verdict", sa.String(20), nullable=False),
    sa.Column("assurance", sa.String(20), nullable=False),
    sa.Column("signer_key_id", sa.String(16), sa.ForeignKey("keys.key_id"), nullable=False),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
    sa.Column("council_code", sa.Integer, sa.ForeignKey("councils.code"), nullable=True),
    sa.Column("target_url", sa.Text, nullable=True),
    sa.Column("builtin_reference", sa.Boolean, nullable=False),
    sa.Column("faults", sa.JSON, nullable=False),
    sa.Column("spec_version", sa.String(40), nullable=True),
    sa.Column("spec_sha256", sa.String(64), nullable=True),
    sa.Column("harness_version", sa.String(40), nullable=True),
    sa.Column("started_at", sa.DateTime, nullable=True),
    sa.Column("finished_at", sa.DateTime, nullable=False),
    sa.Column("finished_on", sa.Date, nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("submitted_at", sa.DateTime, nullable=False),
    sa.Column("verified_at", sa.DateTime, nullable=False),
    sa.Column("verified_ok", sa.Boolean, nullable=False),
    sa.Column("verify_problem", sa.Text, nullable=True),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
    sa.Column("revoked_reason", sa.Text, nullable=True),
    sa.Index(None, "version_id", "phase"),
    sa.Index(None, "finished_on"),
    sa.Index(None, "signer_key_id"),
)

waivers = sa.Table(
    "waivers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("certificate_id", sa.String(64), sa.ForeignKey("certificates.id"), nullable=False),
    sa.Column("requirement", sa.String(40), nullable=False),
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("expires", sa.Date, nullable=False),
    sa.Column("scope", sa.JSON, nullable=False),
    sa.Index(None, "certificate_id"),
    sa.Index(None, "expires"),
)
