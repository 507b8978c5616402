"""What a schema-valid request may still be refused for: the rules OpenAPI cannot state.

``x-ics-at-least-one-of`` on an operation lists query parameters of which at least one
must be given (GET /children: a search needs a criterion). No OpenAPI keyword spans
several parameters, so a request without any of them is schema-valid to a generic tool,
yet the document says it is refused. Other rules live in design.md's prose and have
their own error codes (:data:`RULE_CODES`). The harness's contract checks (API-002) and
the Schemathesis CLI hooks (:mod:`conformance.spec.schemathesis_hooks`) both judge a
refusal with :func:`response_explained`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Operation extension: query parameters of which at least one must be given.
AT_LEAST_ONE_OF = "x-ics-at-least-one-of"


def _given(value: Any) -> bool:
    return value not in (None, "", [])


def missing_criteria(operation: Any, query: Mapping[str, Any] | None) -> list[str]:
    """The operation's ``x-ics-at-least-one-of`` parameters when ``query`` gives none of them, else [].

    ``operation`` is the operation's raw OpenAPI definition (a mapping); anything else has no rule.
    """
    wanted = operation.get(AT_LEAST_ONE_OF) if isinstance(operation, Mapping) else None
    if not wanted:
        return []
    query = query if isinstance(query, Mapping) else {}
    return [] if any(_given(query.get(name)) for name in wanted) else [str(name) for name in wanted]


#: Refusal codes of rules the document states only in prose (design.md section 4): check
#: letters, dates against today and each other, known practitioners, state. A schema-valid
#: request refused with one of these is not a departure from the document.
RULE_CODES = frozenset(
    {
        "INVALID_UPN",
        "INVALID_NHS_NUMBER",
        "INVALID_POSTCODE",
        "DATE_IN_FUTURE",
        "DATE_ORDER",
        "UNKNOWN_PRACTITIONER",
        "CHILD_NOT_SEEN",
        "DUPLICATE_LOCAL_ID",
        "ASSESSMENT_ALREADY_OPEN",
        "ASSESSMENT_NOT_OPEN",
        "INVALID_TRANSFER_PACKAGE",  # phase 1C: a body that is not a valid transfer package (ICS-1C-XFER-001)
    }
)


def refusal_explained(operation: Any, query: Mapping[str, Any] | None, status: int, code: Any) -> str | None:
    """Why refusing this schema-valid request (``status``, error ``code``) is not a departure, or None.

    Explained: a request without any ``x-ics-at-least-one-of`` criterion (whatever the
    answer); a 400/422 with one of :data:`RULE_CODES`; a 400/422 ``VALIDATION_ERROR`` of an
    operation with a request body (rules across a body's fields or against stored state,
    e.g. a PATCH giving a child both ``date_of_birth`` and ``expected_date_of_birth``, or a
    referral of another child, are prose). Not explained, so a finding: any other refusal,
    e.g. ``INVALID_NAME`` for a name the ``Name`` pattern admits, or a search with a
    criterion refused with ``VALIDATION_ERROR``.
    """
    missing = missing_criteria(operation, query)
    if missing:
        return f"gives none of {AT_LEAST_ONE_OF} ({', '.join(missing)})"
    if status not in (400, 422):
        return None
    if code in RULE_CODES:
        return f"refused with {code}, a rule the document states in prose (design.md section 4)"
    if code == "VALIDATION_ERROR" and isinstance(operation, Mapping) and "requestBody" in operation:
        return "refused with VALIDATION_ERROR for a request body (a cross-field or state rule, in prose)"
    return None


def response_explained(operation: Any, query: Mapping[str, Any] | None, response: Any) -> str | None:
    """:func:`refusal_explained` of an HTTP ``response`` (``status_code``, and ``json()`` for
    the error ``code`` of a 400/422): the one reading of an answer for both its callers."""
    status = int(getattr(response, "status_code", 0) or 0)
    code = None
    if status in (400, 422):
        try:
            body = response.json()
        except Exception:  # not JSON: no error code to go by
            body = None
        code = body.get("code") if isinstance(body, dict) else None
    return refusal_explained(operation, query, status, code)
