"""SQLite store of the reference service: one connection, one lock, plain SQL.

Rows come back as dicts. Name search keys (:func:`conformance.domain.names.name_keys`, joined by
``KEY_SEP``) are stored with each child and alias, so search scans small strings.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS practitioners (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, name TEXT NOT NULL,
  role TEXT NOT NULL, token_sha256 TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS children (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, local_id TEXT,
  given_name TEXT NOT NULL, family_name TEXT NOT NULL, given_keys TEXT NOT NULL, family_keys TEXT NOT NULL,
  date_of_birth TEXT, expected_date_of_birth TEXT,
  gender TEXT NOT NULL, date_of_death TEXT, upn TEXT, nhs_number TEXT, postcode TEXT, postcode_key TEXT,
  shielded INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS children_local_id ON children(local_id);
CREATE TABLE IF NOT EXISTS aliases (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, child_id TEXT NOT NULL,
  given_name TEXT NOT NULL, family_name TEXT NOT NULL, given_keys TEXT NOT NULL, family_keys TEXT NOT NULL,
  type TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aliases_child ON aliases(child_id);
CREATE TABLE IF NOT EXISTS allocations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, child_id TEXT NOT NULL,
  practitioner_id TEXT NOT NULL, start_date TEXT NOT NULL, end_date TEXT);
CREATE INDEX IF NOT EXISTS allocations_child ON allocations(child_id);
CREATE TABLE IF NOT EXISTS case_notes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, child_id TEXT NOT NULL,
  author_id TEXT NOT NULL, text TEXT NOT NULL, restricted INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS case_notes_child ON case_notes(child_id);
CREATE TABLE IF NOT EXISTS notifications (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, practitioner_id TEXT NOT NULL,
  child_id TEXT NOT NULL, case_note_id TEXT NOT NULL, created_at TEXT NOT NULL,
  acknowledged_at TEXT, preview TEXT, visible_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS notifications_practitioner ON notifications(practitioner_id);
CREATE TABLE IF NOT EXISTS referrals (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, child_id TEXT NOT NULL,
  received_on TEXT NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS referrals_child ON referrals(child_id);
CREATE TABLE IF NOT EXISTS assessments (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, child_id TEXT NOT NULL,
  referral_id TEXT, type TEXT NOT NULL, start_date TEXT NOT NULL, due_date TEXT NOT NULL,
  status TEXT NOT NULL, completed_on TEXT, authorised_by TEXT);
CREATE INDEX IF NOT EXISTS assessments_child ON assessments(child_id);
CREATE TABLE IF NOT EXISTS visits (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, assessment_id TEXT NOT NULL,
  visit_date TEXT NOT NULL, child_seen INTEGER NOT NULL, seen_alone INTEGER, recorded_by TEXT NOT NULL,
  not_seen_alone_reason TEXT);
CREATE INDEX IF NOT EXISTS visits_assessment ON visits(assessment_id);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, at TEXT NOT NULL,
  practitioner_id TEXT NOT NULL, child_id TEXT, action TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_child ON audit(child_id);
CREATE INDEX IF NOT EXISTS audit_practitioner ON audit(practitioner_id);
CREATE TABLE IF NOT EXISTS transfers (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, child_id TEXT NOT NULL,
  imported_at TEXT NOT NULL, imported_by TEXT NOT NULL, source TEXT NOT NULL, records TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS external_practitioners (
  council TEXT NOT NULL, source_id TEXT NOT NULL, practitioner_id TEXT NOT NULL,
  PRIMARY KEY (council, source_id));
"""


KEY_SEP = "\x1f"


def new_id(prefix: str) -> str:
    """A fresh opaque record ID, e.g. ``c-1f3a9c2e7b6d4e01``."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class Store:
    """The reference service's data: SQLite (in memory unless a file path is given)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._conn = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        self._conn.executescript(_SCHEMA)
        self._migrate()
        self.lock = threading.RLock()

    def _migrate(self) -> None:
        """Bring a database file written by an earlier version up to this schema (columns added since)."""
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(visits)")}
        if "not_seen_alone_reason" not in columns:
            self._conn.execute("ALTER TABLE visits ADD COLUMN not_seen_alone_reason TEXT")
        not_null = {r[1]: r[3] for r in self._conn.execute("PRAGMA table_info(audit)")}
        if not_null.get("child_id"):  # before phase 1C every entry named a child; a search names none
            self._conn.executescript(
                "ALTER TABLE audit RENAME TO audit_before_1c; DROP INDEX IF EXISTS audit_child;"
                + _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS audit") :]
                + "INSERT INTO audit SELECT * FROM audit_before_1c; DROP TABLE audit_before_1c;"
            )

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run a group of statements atomically under the store's lock."""
        with self.lock:
            self._conn.execute("BEGIN")
            try:
                yield self
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Insert ``row`` (column -> value; names come from code, never from requests) and return it."""
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.lock:
            self._conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(row.values()))
        return row

    def update(self, table: str, record_id: str, changes: dict[str, Any]) -> None:
        """Set ``changes`` on the row whose ``id`` is ``record_id``."""
        if not changes:
            return
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self.lock:
            self._conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*changes.values(), record_id))

    def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one statement; return the number of rows changed."""
        with self.lock:
            return self._conn.execute(sql, tuple(params)).rowcount

    def one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        """The first row of a query, or None."""
        with self.lock:
            row = self._conn.execute(sql, tuple(params)).fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Every row of a query."""
        with self.lock:
            return [dict(r) for r in self._conn.execute(sql, tuple(params)).fetchall()]

    def get(self, table: str, record_id: str) -> dict[str, Any] | None:
        """The row of ``table`` with this ``id``, or None."""
        return self.one(f"SELECT * FROM {table} WHERE id = ?", (record_id,))

    def close(self) -> None:
        with self.lock:
            self._conn.close()
