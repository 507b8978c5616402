"""Alembic environment: migrations always run on the connection handed over by
:func:`conformance.registry.migrate.upgrade` (never from an ini file or an environment variable)."""

from __future__ import annotations

from alembic import context

from conformance.registry.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
