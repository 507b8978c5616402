"""The registry's first schema: parties and keys, suppliers, products, versions, councils,
deployments, phases and their deadline history, bundles, certificates and waivers.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_registry_meta"),
    )
    op.create_table(
        "councils",
        sa.Column("code", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("type", sa.String(60), nullable=False),
        sa.Column("region", sa.String(60), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_councils"),
        sa.UniqueConstraint("name", name="uq_councils_name"),
    )
    op.create_table(
        "suppliers",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_suppliers"),
        sa.UniqueConstraint("name_key", name="uq_suppliers_name_key"),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("supplier_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["supplier_id"], ["suppliers.id"], name="fk_products_supplier_id_suppliers"),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.UniqueConstraint("supplier_id", "name_key", name="uq_products_supplier_id_name_key"),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("product_id", sa.Integer, nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("version_key", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name="fk_versions_product_id_products"),
        sa.PrimaryKeyConstraint("id", name="pk_versions"),
        sa.UniqueConstraint("product_id", "version_key", name="uq_versions_product_id_version_key"),
    )
    op.create_table(
        "parties",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("supplier_id", sa.Integer, nullable=True),
        sa.Column("council_code", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.CheckConstraint("role IN ('certifier', 'test_lab', 'supplier', 'council')", name="ck_parties_role"),
        sa.ForeignKeyConstraint(["council_code"], ["councils.code"], name="fk_parties_council_code_councils"),
        sa.ForeignKeyConstraint(["supplier_id"], ["suppliers.id"], name="fk_parties_supplier_id_suppliers"),
        sa.PrimaryKeyConstraint("id", name="pk_parties"),
        sa.UniqueConstraint("name", name="uq_parties_name"),
    )
    op.create_table(
        "keys",
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("public_key_pem", sa.Text, nullable=False),
        sa.Column("added_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        sa.Column("revoked_reason", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"], name="fk_keys_party_id_parties"),
        sa.PrimaryKeyConstraint("key_id", name="pk_keys"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("council_code", sa.Integer, nullable=False),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("from_date", sa.Date, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(["council_code"], ["councils.code"], name="fk_deployments_council_code_councils"),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name="fk_deployments_version_id_versions"),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
    )
    op.create_index("ix_deployments_council_code_from_date", "deployments", ["council_code", "from_date"])
    op.create_index("ix_deployments_version_id", "deployments", ["version_id"])
    op.create_table(
        "phases",
        sa.Column("code", sa.String(4), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("requires_local_qa", sa.Boolean, nullable=False),
        sa.Column("min_assurance", sa.String(20), nullable=False),
        sa.CheckConstraint("min_assurance IN ('self-assessed', 'witnessed')", name="ck_phases_min_assurance"),
        sa.PrimaryKeyConstraint("code", name="pk_phases"),
        sa.UniqueConstraint("ordinal", name="uq_phases_ordinal"),
    )
    op.create_table(
        "phase_deadlines",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("phase_code", sa.String(4), nullable=False),
        sa.Column("deadline", sa.Date, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.ForeignKeyConstraint(["phase_code"], ["phases.code"], name="fk_phase_deadlines_phase_code_phases"),
        sa.PrimaryKeyConstraint("id", name="pk_phase_deadlines"),
    )
    op.create_index("ix_phase_deadlines_phase_code_id", "phase_deadlines", ["phase_code", "id"])
    op.create_table(
        "bundles",
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("stored_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("manifest_sha256", name="pk_bundles"),
    )
    op.create_table(
        "certificates",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(100), nullable=True),
        sa.Column("phase", sa.String(4), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("assurance", sa.String(20), nullable=False),
        sa.Column("signer_key_id", sa.String(16), nullable=False),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("council_code", sa.Integer, nullable=True),
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
        sa.ForeignKeyConstraint(["id"], ["bundles.manifest_sha256"], name="fk_certificates_id_bundles"),
        sa.ForeignKeyConstraint(["phase"], ["phases.code"], name="fk_certificates_phase_phases"),
        sa.ForeignKeyConstraint(["signer_key_id"], ["keys.key_id"], name="fk_certificates_signer_key_id_keys"),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name="fk_certificates_version_id_versions"),
        sa.ForeignKeyConstraint(["council_code"], ["councils.code"], name="fk_certificates_council_code_councils"),
        sa.PrimaryKeyConstraint("id", name="pk_certificates"),
    )
    op.create_index("ix_certificates_version_id_phase", "certificates", ["version_id", "phase"])
    op.create_index("ix_certificates_finished_on", "certificates", ["finished_on"])
    op.create_index("ix_certificates_signer_key_id", "certificates", ["signer_key_id"])
    op.create_table(
        "waivers",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("certificate_id", sa.String(64), nullable=False),
        sa.Column("requirement", sa.String(40), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("expires", sa.Date, nullable=False),
        sa.Column("scope", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], name="fk_waivers_certificate_id_certificates"),
        sa.PrimaryKeyConstraint("id", name="pk_waivers"),
    )
    op.create_index("ix_waivers_certificate_id", "waivers", ["certificate_id"])
    op.create_index("ix_waivers_expires", "waivers", ["expires"])


def downgrade() -> None:
    for table in (
        "waivers",
        "certificates",
        "bundles",
        "phase_deadlines",
        "phases",
        "deployments",
        "keys",
        "parties",
        "versions",
        "products",
        "suppliers",
        "councils",
        "registry_meta",
    ):
        op.drop_table(table)
