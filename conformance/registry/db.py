"""Opening the registry database: a SQLite file by default, PostgreSQL by URL (psycopg 3).

:func:`engine_for` accepts what a user types after ``--db``: a file path
(``registry.sqlite``), a ``sqlite:///`` URL, or ``postgresql://user@host/db`` (the psycopg 3
driver is chosen for it). SQLite connections get foreign keys, write-ahead logging (readers
are not blocked by a writer) and a busy timeout; a write transaction there starts with
``BEGIN IMMEDIATE`` so two writers queue instead of failing half-way (:func:`write`).
PostgreSQL runs at its default READ COMMITTED; writers that could collide use
``INSERT ... ON CONFLICT DO NOTHING`` and the unique keys of the schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from conformance.errors import UsageError
from conformance.registry.location import DEFAULT_DB, ENV_DB, default_db

__all__ = ["DEFAULT_DB", "ENV_DB", "default_db", "display_url", "engine_for", "normalise_url", "read", "write"]

SQLITE_BUSY_SECONDS = 60.0


def normalise_url(db: str) -> sa.URL:
    """The SQLAlchemy URL for a ``--db`` value (a path or a URL)."""
    text = str(db).strip()
    if not text:
        raise UsageError("--db: empty; give a SQLite file path or a postgresql:// URL")
    if "://" not in text:
        return sa.URL.create("sqlite", database=str(Path(text).expanduser().resolve()))
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError as exc:
        raise UsageError(f"--db: not a database URL ({exc})") from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        return url
    raise UsageError(f"--db: unsupported database {url.drivername!r} (use a SQLite file or a postgresql:// URL)")


def display_url(db: str | sa.URL) -> str:
    """The URL with any password hidden, for messages."""
    url = db if isinstance(db, sa.URL) else normalise_url(db)
    return url.render_as_string(hide_password=True)


def engine_for(db: str | sa.URL) -> Engine:
    """An engine for ``db``, configured as the module docstring says."""
    url = db if isinstance(db, sa.URL) else normalise_url(db)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            parent = Path(url.database).parent
            if not parent.is_dir():
                raise UsageError(f"--db {url.database}: directory {parent} does not exist")
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, decide when a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_SECONDS * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("ics_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction: committed when the block ends, rolled back if it raises."""
    with engine.connect().execution_options(ics_write=True) as connection, connection.begin():
        yield connection


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees one snapshot throughout (REPEATABLE READ on PostgreSQL;
    a SQLite read transaction in WAL mode is a snapshot already)."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection
