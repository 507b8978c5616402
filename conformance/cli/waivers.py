"""``ics-conformance waivers sign|check``: the certifier signs waiver files; anyone checks them."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "waivers",
        help="sign or check a waiver file (certifier)",
        description=(
            "Waiver files (YAML or JSON, schema specs/schemas/waivers.schema.json) list requirement waivers "
            "with scope, reason, reference and expiry. The certifier signs them; certify applies them."
        ),
    )
    actions = parser.add_subparsers(dest="waivers_command", metavar="ACTION")
    sign = actions.add_parser(
        "sign",
        help="validate and sign a waiver file",
        description="Validate FILE and write it as JSON with an embedded Ed25519 signature.",
    )
    sign.add_argument("file", type=Path, metavar="FILE", help="waiver file (YAML or JSON)")
    sign.add_argument(
        "--key", required=True, type=Path, metavar="PRIVATE", help="the certifier's Ed25519 private key (PEM)"
    )
    sign.add_argument("--out", type=Path, metavar="FILE", help="output file (default: FILE's stem + .signed.json)")
    sign.set_defaults(func=_sign)
    check = actions.add_parser(
        "check",
        help="verify a signed waiver file and list its entries",
        description="Verify the signature of a signed waiver file and list its entries and their expiry.",
    )
    check.add_argument("file", type=Path, metavar="FILE", help="signed waiver file")
    who = check.add_mutually_exclusive_group(required=True)
    who.add_argument("--key", type=Path, metavar="PUBFILE", help="the certifier's Ed25519 public key (PEM)")
    who.add_argument(
        "--keyring", type=Path, metavar="FILE", help="trusted keys: the file must be signed by a department key in it"
    )
    check.add_argument("--today", type=dt.date.fromisoformat, metavar="YYYY-MM-DD", help="judge expiry as of this date")
    check.set_defaults(func=_check)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _sign(args: argparse.Namespace) -> int:
    from conformance.certificate.signing import load_private_key
    from conformance.certificate.waivers import load_waivers, sign_waivers

    key = load_private_key(args.key)
    out = sign_waivers(args.file, key, args.out)
    signed = load_waivers(out, key.public_key(), today=dt.date.min)  # round-trip check
    print(f"signed {len(signed.waivers)} waiver(s) with key {signed.key_id}: {out}")
    today = dt.date.today()
    for waiver in signed.waivers:
        if waiver.expires < today:
            print(f"warning: {waiver.requirement} ({waiver.reference}) already expired on {waiver.expires.isoformat()}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from conformance.certificate.waivers import load_waivers

    today = args.today or dt.date.today()
    key, signer = args.key, ""
    if args.keyring is not None:
        from conformance.certificate.keyring import CERTIFIER_ROLE, load_keyring
        from conformance.certificate.waivers import signer_key_id
        from conformance.errors import UsageError

        ident = signer_key_id(args.file)
        entry = load_keyring(args.keyring).get(ident)
        if entry is None or entry.role != CERTIFIER_ROLE:
            who = entry.describe() if entry else f"key {ident}, which is not in the keyring"
            raise UsageError(f"waivers {args.file}: signed by {who}; only a {CERTIFIER_ROLE} key signs waivers")
        key, signer = entry.public_key, f" ({entry.party})"
    waivers = load_waivers(args.file, key, today=today)
    print(
        f"valid: {len(waivers.waivers)} waiver(s) issued by {waivers.issued_by} on {waivers.issued_at}, key {waivers.key_id}{signer}"
    )
    for waiver in waivers.waivers:
        scope = ", ".join(f"{k}={v}" for k, v in sorted(waiver.scope.items())) or "everyone"
        state = "EXPIRED" if waiver.expires < today else "valid"
        print(f"  {waiver.requirement}  {waiver.reference}  [{scope}]  expires {waiver.expires.isoformat()} ({state})")
    return 0
