"""``ics-conformance verify BUNDLE --key PUBFILE``: check a bundle offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify a certification bundle offline",
        description=(
            "Check a bundle (directory or .zip): the Ed25519 signature over manifest.json, the sha256 and "
            "size of every file, that no file is missing or extra, and that the spec hash is a known spec "
            "version. Exit 0 when intact (the verdict is printed), 1 naming the first bad file, 2 when the "
            "bundle or key cannot be read."
        ),
    )
    parser.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory or .zip")
    parser.add_argument(
        "--key", required=True, type=Path, metavar="PUBFILE", help="Ed25519 public key (PEM) of the signer"
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.set_defaults(func=_verify)


def _printable(value: Any) -> str:
    """Target-supplied text for a terminal: control characters shown escaped."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _verify(args: argparse.Namespace) -> int:
    from conformance.certificate.verify import verify_bundle

    outcome = verify_bundle(args.bundle, args.key)
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2, sort_keys=True))
        return 0 if outcome.ok else 1
    if not outcome.ok:
        print(f"NOT VERIFIED: {_printable(outcome.bad_file)}: {_printable(outcome.problem)}")
        return 1
    target = outcome.target
    who = " ".join(_printable(target.get(k)) for k in ("supplier", "product", "version") if target.get(k))
    print(f"VERIFIED: {_printable(outcome.bundle)} ({outcome.files_checked} files, signed by key {outcome.key_id})")
    print(f"verdict:  {_printable(outcome.verdict)}")
    print(f"phase:    {_printable(outcome.phase)}")
    url = f" <{_printable(target['url'])}>" if target.get("url") else ""
    print(f"target:   {who or 'unknown'}{url}")
    print(f"harness:  ics-conformance {_printable(outcome.harness_version)}")
    print(f"spec:     {_printable(outcome.spec_version)} (sha256 {_printable(outcome.spec_sha256)})")
    if outcome.waivers_applied:
        print(f"waivers:  {outcome.waivers_applied} applied (see certificate.json / report.html)")
    sys.stdout.flush()
    return 0
