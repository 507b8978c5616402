"""Plain helpers of the export tests (importable by name: conftest modules are not)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VALID = ROOT / "fixtures" / "exports" / "valid"
INVALID = ROOT / "fixtures" / "exports" / "invalid"


def run_cli(*argv: str) -> int:
    from conformance.cli import main

    return main(list(argv))
