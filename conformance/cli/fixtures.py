"""``ics-conformance fixtures generate``: deterministic synthetic exports."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fixtures", help="generate synthetic test data", description="Generate synthetic test data."
    )
    sub = parser.add_subparsers(dest="fixtures_command", metavar="ACTION")
    gen = sub.add_parser(
        "generate",
        help="write a deterministic, valid synthetic export",
        description=(
            "Write a valid synthetic export (JSON Lines per record type + manifest.json): Faker en_GB "
            "names with diacritics, valid UPN/NHS numbers, realistic case histories. The same "
            "--children and --seed always give the same bytes."
        ),
    )
    gen.add_argument("--children", type=int, required=True, metavar="N", help="number of children")
    gen.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    gen.add_argument("--output", type=Path, required=True, metavar="DIR", help="directory (or .zip path with --zip)")
    gen.add_argument("--zip", action="store_true", help="write a zip archive instead of a directory")
    gen.set_defaults(func=_generate)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _generate(args: argparse.Namespace) -> int:
    from conformance.errors import UsageError
    from conformance.export import generate_export

    if args.children < 0:
        raise UsageError("--children must be >= 0")
    output = args.output
    if args.zip and output.suffix.lower() != ".zip":
        output = output.with_suffix(".zip") if output.suffix else output / "export.zip"
    if not args.zip and output.exists() and not output.is_dir():
        raise UsageError(f"{output}: exists and is not a directory")
    path = generate_export(output, children=args.children, seed=args.seed, zip=args.zip)
    print(f"wrote synthetic export: {path}")
    return 0
