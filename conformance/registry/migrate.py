"""Schema migrations: :func:`upgrade` brings a database to the newest revision (Alembic).

The migration scripts live in ``conformance/registry/migrations/versions``; they run on a
connection this module opens, inside one transaction (DDL is transactional on both SQLite
and PostgreSQL), so a failed upgrade leaves the previous schema in place.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from conformance.registry import db

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision the installed code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    """The revision the database is at (None: not a registry, or never initialised)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the database to :func:`head`; return ``(revision before, revision after)``."""
    with db.write(engine) as connection:
        before = current(connection)
        command.upgrade(_config(connection), "head")
        return before, head()
