"""Where the registry database is when ``--db`` is not given (no database driver imported).

The CLI's ``--help`` names the default, so this stays importable without SQLAlchemy.
"""

from __future__ import annotations

import os

DEFAULT_DB = "registry.sqlite"
ENV_DB = "ICS_REGISTRY_DB"


def default_db() -> str:
    """The ``--db`` default: ``$ICS_REGISTRY_DB`` or ``registry.sqlite`` in the working directory."""
    return os.environ.get(ENV_DB) or DEFAULT_DB
