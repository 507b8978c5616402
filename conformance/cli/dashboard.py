"""``ics-conformance dashboard``: the national dashboard over a registry (or written as files)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def register(subparsers: Any) -> None:
    from conformance.registry.location import default_db  # not .db: --help imports no database driver

    parser = subparsers.add_parser(
        "dashboard",
        help="serve the national dashboard of a registry (or write it as files with --static)",
        description=(
            "Server-rendered pages over the registry: programme overview per phase (councils compliant over time "
            "against the deadlines), councils x phases with filters, suppliers and their certified versions, a "
            "page per council and per certificate (with its stored report), waivers expiring soon. Every page is "
            "also JSON (/api/... or Accept: application/json). No script; strict Content-Security-Policy."
        ),
    )
    parser.add_argument(
        "--db", default=None, metavar="DB", help=f"SQLite file or postgresql:// URL (default {default_db()})"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050; 0 picks a free one)")
    parser.add_argument(
        "--on",
        type=_date,
        metavar="DATE",
        help="the day shown by default (default: the registry's view date, else today)",
    )
    parser.add_argument("--static", type=Path, metavar="DIR", help="write the pages as files into DIR and exit")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from conformance.registry.db import default_db
    from conformance.registry.store import Registry

    registry = Registry(args.db or default_db())
    registry.require_ready()
    if args.static:
        from conformance.dashboard.static import write_static

        done = write_static(registry, args.static, on=args.on)
        print(f"wrote {done['files']} files to {done['directory']} (open index.html)")
        registry.close()
        return 0
    import socket

    import uvicorn

    from conformance.dashboard.app import create_app

    app = create_app(registry, default_on=args.on)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        from conformance.errors import UsageError

        raise UsageError(f"cannot listen on {args.host}:{args.port} ({exc.strerror})") from None
    port = sock.getsockname()[1]
    print(f"dashboard: http://{args.host}:{port}/  (registry {registry.display_url}; Ctrl-C stops it)", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        registry.close()
    return 0
