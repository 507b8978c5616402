"""``ics-conformance serve-reference``: run the built-in reference ICS service, optionally with faults.

The admin token comes from ``ICS_ADMIN_TOKEN`` or ``--admin-token-file``; when neither is
given a fresh one is written to ``./ics-reference-admin-token`` (mode 0600). The token is
never printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from conformance.errors import UsageError

DEFAULT_TOKEN_FILE = "ics-reference-admin-token"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve-reference`` sub-command."""
    parser = subparsers.add_parser(
        "serve-reference",
        help="run the built-in reference ICS service (with optional injected faults)",
        description=(
            "Run the reference implementation of the canonical ICS API (SQLite) until interrupted. "
            "The admin bearer token comes from ICS_ADMIN_TOKEN or --admin-token-file; with neither, a fresh "
            f"token is generated and written to ./{DEFAULT_TOKEN_FILE} in the current directory (mode 0600, "
            "overwritten each time; never printed). Delete that file when you are done."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="NAME", help="inject a named fault (repeatable)"
    )
    parser.add_argument("--db", metavar="FILE", help="SQLite database file (default: in memory)")
    parser.add_argument(
        "--council", metavar="NAME", help="the council the service serves, named in its transfer packages (phase 1C)"
    )
    parser.add_argument(
        "--admin-token-file",
        metavar="FILE",
        help=f"file holding the admin bearer token (default: ICS_ADMIN_TOKEN, else a new one written to ./{DEFAULT_TOKEN_FILE})",
    )
    parser.add_argument("--list-faults", action="store_true", help="list the injectable faults and exit")
    parser.set_defaults(func=run)


def _list_faults() -> int:
    from conformance.reference import FAULTS

    for fault in sorted(FAULTS.values(), key=lambda f: (f.area, f.name)):
        also = f"  (may also: {', '.join(fault.collateral)})" if fault.collateral else ""
        print(f"{fault.name}  [{fault.area}]  targets: {', '.join(fault.targets)}{also}")
        print(f"    {fault.description}")
    return 0


def _admin_token(args: argparse.Namespace) -> tuple[str, str]:
    """The admin token and a phrase saying where it came from (never the token itself)."""
    env = os.environ.get("ICS_ADMIN_TOKEN", "").strip()
    if env:
        return env, "from ICS_ADMIN_TOKEN"
    if args.admin_token_file:
        path = Path(args.admin_token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--admin-token-file {path}: {exc.strerror or exc}") from None
        if not token:
            raise UsageError(f"--admin-token-file {path}: the file is empty")
        return token, f"from {path}"
    path = Path.cwd() / DEFAULT_TOKEN_FILE
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    return token, f"generated and written to {path} (mode 0600)"


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; exit 2 on an unknown fault or a port in use."""
    if args.list_faults:
        return _list_faults()
    from conformance.reference import create_app
    from conformance.reference.faults import resolve_faults
    from conformance.reference.server import base_url, bind, uvicorn_server

    faults = sorted(resolve_faults(args.fault))
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: not a TCP port")
    token, origin = _admin_token(args)
    app = create_app(faults=faults, admin_token=token, db_path=args.db, council=args.council)
    sock = bind(args.host, args.port)
    print(f"ICS reference service listening on {base_url(sock)}", flush=True)
    print(f"  admin token {origin}", flush=True)
    print(f"  faults: {', '.join(faults) or 'none'}; database: {args.db or 'in memory'}", flush=True)
    try:
        uvicorn_server(app).run(sockets=[sock])
    finally:
        sock.close()
    print("ICS reference service stopped", file=sys.stderr)
    return 0
