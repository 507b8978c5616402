"""The certifier's side: a registry of verified bundles, councils' deployments and the programme.

- :mod:`~conformance.registry.store` — :class:`Registry`: init, submit, deploy, revoke, reverify, status
- :mod:`~conformance.registry.intake` — the seam to bundle verification (facts of a verified bundle)
- :mod:`~conformance.registry.rules` — when a council is compliant (docs/design.md §10)
- :mod:`~conformance.registry.national` — the national view the dashboard and ``export`` show
- :mod:`~conformance.registry.schema`, :mod:`~conformance.registry.migrate` — tables and Alembic migrations
- :mod:`~conformance.registry.demo` — a synthetic programme built from real certify runs
"""
