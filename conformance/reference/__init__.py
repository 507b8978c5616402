"""The reference ICS service: a complete implementation of the canonical API with injectable faults.

Public surface:

* :func:`create_app` — the Starlette application (SQLite in memory, or a file);
* :func:`serve` — a context manager running it on a free port in a background thread;
* :data:`FAULTS` — the fault registry: name -> :class:`Fault` (area, description, targets).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.reference.faults import FAULTS, Fault, resolve_faults

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from conformance.reference.server import RunningService

__all__ = ["FAULTS", "Fault", "create_app", "serve"]


def create_app(
    *,
    faults: Iterable[str] = (),
    admin_token: str,
    db_path: str | Path | None = None,
    today: Callable[[], date] | None = None,
    council: str | None = None,
) -> Starlette:
    """Build the reference service's ASGI app.

    ``faults`` are fault names from :data:`FAULTS` (unknown -> ``UsageError``);
    ``admin_token`` is the bearer token of the built-in admin (stored only as a sha256);
    ``db_path`` a SQLite file (default: in memory); ``today`` overrides the Europe/London date;
    ``council`` names the council the service serves (``/about``, transfer packages).
    """
    from conformance.reference.app import build_app

    chosen = resolve_faults(faults)
    if not admin_token:
        raise ValueError("admin_token must be a non-empty string")
    from conformance.reference.service import DEFAULT_COUNCIL

    return build_app(
        faults=chosen,
        admin_token=admin_token,
        db_path=str(db_path) if db_path else None,
        today=today,
        council=council or DEFAULT_COUNCIL,
    )


@contextmanager
def serve(
    *,
    faults: Iterable[str] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    admin_token: str | None = None,
    db_path: str | Path | None = None,
    today: Callable[[], date] | None = None,
    council: str | None = None,
) -> Iterator[RunningService]:
    """Run the reference service on ``host:port`` (0: a free port) in a background thread.

    Yields an object with ``.url``, ``.admin_token`` (generated when not given) and
    ``.faults``; waits until ``GET /about`` answers and shuts down cleanly on exit.
    """
    from conformance.reference.server import run_in_thread

    names = tuple(dict.fromkeys(faults))
    token = admin_token or secrets.token_urlsafe(24)
    app = create_app(faults=names, admin_token=token, db_path=db_path, today=today, council=council)
    with run_in_thread(app, host=host, port=port, admin_token=token, faults=names) as service:
        yield service
