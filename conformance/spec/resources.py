"""Locate the specification data shipped with the package.

In a wheel, ``specs/`` is installed as ``conformance/_specs``; in a source checkout
(editable install, tests) it is the top-level ``specs/`` directory beside the package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # conformance/


@cache
def specs_dir() -> Path:
    """Return the directory holding the catalogue, OpenAPI document and schemas."""
    for candidate in (_PACKAGE_DIR / "_specs", _PACKAGE_DIR.parent / "specs"):
        if (candidate / "catalogue").is_dir():
            return candidate
    raise FileNotFoundError(
        "specification data not found: expected conformance/_specs (installed) or specs/ (checkout)"
    )


def spec_path(*parts: str) -> Path:
    """Return the path of a file inside the specification data directory."""
    return specs_dir().joinpath(*parts)


@cache
def openapi_document() -> dict[str, Any]:
    """``openapi.yaml`` parsed once per process (the C loader when built: the file is large).

    Callers must not change it: it is shared."""
    import yaml

    with open(spec_path("openapi.yaml"), encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(document, dict):
        raise ValueError(f"{spec_path('openapi.yaml')}: not a mapping at the top level")
    return document
