"""Alembic migrations of the registry schema (run by :mod:`conformance.registry.migrate`)."""
