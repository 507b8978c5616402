"""The machine-readable error codes a refusal may carry.

One list, read from the ``Error.code`` enumeration of ``specs/openapi.yaml`` (design.md
section 4 states the same codes in prose), so that the contract checks (ICS-1A-API-003) and
evidence redaction cannot drift apart.
"""

from __future__ import annotations

from functools import cache

from conformance.spec.resources import openapi_document, spec_path


@cache
def error_codes() -> frozenset[str]:
    """Return every error code the OpenAPI document allows in an error body."""
    document = openapi_document()
    try:
        codes = document["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{spec_path('openapi.yaml')}: components.schemas.Error.properties.code.enum missing") from exc
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        raise ValueError(f"{spec_path('openapi.yaml')}: Error.code enum must be a list of strings")
    return frozenset(codes)
