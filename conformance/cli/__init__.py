"""The ``ics-conformance`` command line.

Each sub-command lives in its own module of this package, which exposes
``register(subparsers)``; the module adds its parser and sets ``func`` to a callable
``(argparse.Namespace) -> int`` returning the exit code. Command modules import their
heavy dependencies inside that callable so that ``--help`` stays fast.

Exit codes: 0 success / CERTIFIED, 1 findings / NOT CERTIFIED, 2 usage or
configuration error, 3 inconclusive (target unreachable, archive unreadable),
4 internal error of the harness (a bug: please report it; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from conformance._version import __version__
from conformance.errors import ConformanceError, UsageError

EXIT_INTERNAL = 4

#: Command modules, in the order ``--help`` lists them.
_COMMAND_MODULES = (
    "certify",
    "validate_export",
    "verify",
    "adapters",
    "specs",
    "serve_reference",
    "fixtures",
    "keys",
    "waivers",
    "registry",
    "dashboard",
)


def check_output_dir(output: Path) -> None:
    """``--output`` must be a directory this user can create files in, or one that can be created there.

    Nothing is created here (a refused command leaves no trace); the run creates it at the end.
    """
    if output.exists():
        if not output.is_dir():
            raise UsageError(f"--output {output}: not a directory")
        try:
            with tempfile.TemporaryFile(dir=output):
                pass
        except OSError as exc:
            raise UsageError(f"--output {output}: cannot write there ({exc.strerror or exc})") from None
        return
    parent = output.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--output {output}: cannot be created ({parent} is not a directory)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--output {output}: cannot be created ({parent} is not writable)")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="ics-conformance",
        description="Conformance testing and certification of Integrated Children's System (ICS) case-record systems.",
        epilog="Exit codes: 0 certified/ok, 1 not certified/findings, 2 usage error, 3 inconclusive, 4 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"ics-conformance {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"conformance.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"conformance.cli.{name}":
                continue  # command not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ics-conformance`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except ConformanceError as exc:
        print(f"ics-conformance: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ics-conformance: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as exc:  # a bug in the harness, never a verdict
        if args.debug:
            raise
        print(
            f"ics-conformance: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in the harness, not a finding about the target; rerun with --debug for details.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
