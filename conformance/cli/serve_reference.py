"""``ics-conformance serve-reference``: run the built-in reference ICS service."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from conformance.errors import UsageError

DEFAULT_TOKEN_FILE = "ics-reference-admin-token"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve-reference",
        help="run the built-in reference ICS service (optionally with injected faults)",
        description="Run the reference implementation of the canonical ICS API on a real HTTP port.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME", help="inject a named fault (repeatable); see --list-faults")
    parser.add_argument("--db", metavar="FILE", help="SQLite file to keep data in (default: in memory)")
    parser.add_argument("--admin-token-file", metavar="FILE", help=f"file holding the admin bearer token (default: $ICS_ADMIN_TOKEN, else a new token written to ./{DEFAULT_TOKEN_FILE})")
    parser.add_argument("--list-faults", action="store_true", help="list the injectable faults and exit")
    parser.set_defaults(func=run)


def _list_faults() -> int:
    from conformance.reference import FAULTS

    width = max(len(n) for n in FAULTS)
    area = ""
    for fault in sorted(FAULTS.values(), key=lambda f: (f.area, f.name)):
        if fault.area != area:
            area = fault.area
            print(f"\n{area}:")
        print(f"  {fault.name:<{width}}  {fault.description}  [targets: {', '.join(fault.targets)}]")
    return 0


def _admin_token(args: argparse.Namespace) -> str:
    if args.admin_token_file:
        path = Path(args.admin_token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--admin-token-file {path}: cannot read ({exc.strerror})") from None
        if not token:
            raise UsageError(f"--admin-token-file {path}: the file is empty")
        return token
    if os.environ.get("ICS_ADMIN_TOKEN"):
        return os.environ["ICS_ADMIN_TOKEN"]
    token = secrets.token_urlsafe(24)
    path = Path(DEFAULT_TOKEN_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    print(f"admin token written to {path.resolve()} (mode 0600)")
    return token


def run(args: argparse.Namespace) -> int:
    if args.list_faults:
        return _list_faults()
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: must be between 1 and 65535")
    import socket

    from conformance.reference import create_app, resolve_faults

    resolve_faults(args.fault)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    token = _admin_token(args)
    import uvicorn

    app = create_app(faults=args.fault, admin_token=token, db_path=args.db)
    faults = f" with faults: {', '.join(args.fault)}" if args.fault else ""
    print(f"ICS reference service on http://{args.host}:{args.port}{faults} (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
