"""``ics-conformance keys generate``: create an Ed25519 signing key pair and its keyring entry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ENTRY_NAME = "keyring-entry.json"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="manage Ed25519 signing keys",
        description="Manage the Ed25519 keys that sign bundles (suppliers, councils, test labs, the department) and waivers (the department).",
    )
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    generate = actions.add_parser(
        "generate",
        help="write a new Ed25519 key pair",
        description=(
            "Write ed25519-private.pem (PKCS#8, mode 0600: keep it secret), ed25519-public.pem (give it to "
            f"whoever verifies your bundles) and {ENTRY_NAME} (the key ID and public key as a keyring entry, "
            "for the department's keyring) into DIR. Files are created new and never written through a "
            "symbolic link."
        ),
    )
    generate.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for the key files")
    generate.add_argument("--force", action="store_true", help="replace existing key files")
    generate.add_argument("--party", metavar="NAME", help="who holds the key (recorded in the keyring entry)")
    generate.add_argument(
        "--role",
        choices=("supplier", "council", "test-lab", "department"),
        help="the key's role (recorded in the keyring entry)",
    )
    generate.add_argument("--supplier", metavar="NAME", help="supplier role: the supplier name its /about gives")
    generate.add_argument(
        "--product",
        action="append",
        default=[],
        metavar="NAME",
        help="supplier role: limit to this product (repeatable)",
    )
    generate.add_argument("--council", metavar="NAME", help="council role: the council")
    generate.set_defaults(func=_generate)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _entry(args: argparse.Namespace, ident: str, public_pem: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"key_id": ident, "public_key": public_pem}
    if args.party:
        entry["party"] = args.party
    if args.role:
        entry["role"] = args.role
    scope: dict[str, Any] = {}
    if args.supplier:
        scope["supplier"] = args.supplier
    if args.product:
        scope["products"] = list(args.product)
    if args.council:
        scope["council"] = args.council
    if scope:
        entry["scope"] = scope
    return entry


def _generate(args: argparse.Namespace) -> int:
    from conformance.certificate.keyring import entry_problem, parse_keyring
    from conformance.certificate.signing import generate_keypair, key_id, load_public_key, write_new_file
    from conformance.errors import UsageError

    if args.party or args.role:
        if not (args.party and args.role):
            raise UsageError("--party and --role go together (they make the keyring entry)")
        problem = entry_problem(_entry(args, "0" * 16, "-----BEGIN PUBLIC KEY-----\n"))
        if problem:
            raise UsageError(f"keyring entry: {problem}")
    elif args.supplier or args.product or args.council:
        raise UsageError("--supplier, --product and --council need --party and --role")
    private_path, public_path = generate_keypair(args.out, force=args.force)
    public_pem = public_path.read_text(encoding="ascii")
    ident = key_id(load_public_key(public_path))
    entry = _entry(args, ident, public_pem)
    if "role" in entry:
        parse_keyring({"keys": [entry]}, str(args.out / ENTRY_NAME))
    entry_path = args.out / ENTRY_NAME
    try:
        write_new_file(
            entry_path, (json.dumps(entry, indent=2, sort_keys=True) + "\n").encode("utf-8"), mode=0o644, replace=True
        )
    except OSError as exc:
        raise UsageError(f"cannot write {entry_path}: {exc.strerror}") from exc
    print(f"private key: {private_path} (mode 0600; keep it secret, never commit it)")
    print(f"public key:  {public_path}")
    print(f"key id:      {ident}")
    print(f"keyring entry: {entry_path} (send it to the department for its keyring)")
    return 0
