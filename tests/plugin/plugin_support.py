"""Plain helpers of the plugin tests (importable by name: conftest modules are not)."""

from __future__ import annotations

import json
from typing import Any

TOKEN = "stub-admin-token-Zq81"


def checks_by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every check of a result.json, by test function name."""
    out: dict[str, dict[str, Any]] = {}
    for req in result["requirements"]:
        for check in req["checks"]:
            out[check["id"].split("::")[-1].split("[")[0]] = check
    return out


def requirement_verdicts(result: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in result["requirements"]}


def dump(result: dict[str, Any] | None) -> str:
    return json.dumps(result, indent=1)[:4000] if result else "<no result.json>"
