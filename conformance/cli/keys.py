"""``ics-conformance keys generate``: create an Ed25519 signing key pair."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="manage Ed25519 signing keys",
        description="Manage the Ed25519 keys that sign bundles (suppliers) and waivers (the certifier).",
    )
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    generate = actions.add_parser(
        "generate",
        help="write a new Ed25519 key pair",
        description=(
            "Write ed25519-private.pem (PKCS#8, mode 0600: keep it secret) and ed25519-public.pem "
            "(give it to whoever verifies your bundles) into DIR."
        ),
    )
    generate.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for the key files")
    generate.add_argument("--force", action="store_true", help="replace existing key files")
    generate.set_defaults(func=_generate)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _generate(args: argparse.Namespace) -> int:
    from conformance.certificate.signing import generate_keypair, key_id, load_public_key

    private_path, public_path = generate_keypair(args.out, force=args.force)
    print(f"private key: {private_path} (mode 0600; keep it secret, never commit it)")
    print(f"public key:  {public_path}")
    print(f"key id:      {key_id(load_public_key(public_path))}")
    return 0
