"""Schemathesis CLI hooks: the rules ``openapi.yaml`` states in ``x-ics-*`` extensions.

For a supplier or council running the Schemathesis CLI on the document themselves::

    SCHEMATHESIS_HOOKS=conformance.spec.schemathesis_hooks st run specs/openapi.yaml --url URL ...

Without it, Schemathesis sends ``GET /children`` with no search criterion as schema-valid
data and reports ST202 ("schema-valid request rejected") when the API refuses it, as the
document's ``x-ics-at-least-one-of`` says it must; likewise for a refusal under a rule
design.md states in prose, with that rule's own error code (a UPN's check letter, a
date in the future, an unknown practitioner). The hook drops exactly those ST202s, as
the harness's API-002 check does (:func:`conformance.spec.openapi_rules.response_explained`).
Every other failure, and every other ST202, stays. It also sends
a transfer package (``application/zip``, phase 1C) as raw bytes, as the harness does;
Schemathesis has no serializer for that media type otherwise. The harness's own
contract checks apply the same rule (:mod:`conformance.spec.openapi_rules`) and do not
need this module; importing it registers a global Schemathesis hook and serializer.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from conformance.spec.openapi_rules import response_explained

__all__ = ["filter_failure"]

_REJECTED_POSITIVE_DATA = "ST202"

schemathesis.serializer.alias("application/zip", "application/octet-stream")


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure except an ST202 whose refusal the document explains."""
    if getattr(failure, "code", None) != _REJECTED_POSITIVE_DATA:
        return True
    raw = getattr(getattr(case.operation, "definition", None), "raw", None)
    return response_explained(raw, getattr(case, "query", None), response) is None
