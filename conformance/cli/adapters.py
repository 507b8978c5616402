"""``ics-conformance adapters``: the installed supplier adapters (entry-point group ``ics_conformance.adapters``)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "adapters",
        help="list the installed supplier adapters (certify --adapter NAME)",
        description=(
            "List the supplier adapters installed in the entry-point group ics_conformance.adapters, with the "
            "version and sha256 a certificate would record for each (docs/design.md, supplier adapters)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from conformance.adapters.registry import describe_installed
    from conformance.results.text import printable

    adapters = describe_installed()
    if args.json:
        print(json.dumps(adapters, indent=2))
        return 0
    if not adapters:
        print("no adapters installed (an adapter registers itself in the entry-point group ics_conformance.adapters)")
        return 0
    for item in adapters:
        if "error" in item:
            print(f"{printable(item['name'])}: cannot be used: {printable(item['error'])}")
            continue
        print(
            f"{printable(item['name'])}  version {printable(item['version'])}  phases {', '.join(item['phases'])}  "
            f"({printable(item['entry_point'])})"
        )
        print(f"    sha256 {item['sha256']}")
        if item.get("description"):
            print(f"    {printable(item['description'])}")
    return 0
