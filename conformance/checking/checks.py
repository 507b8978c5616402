"""What a check says when it judges the target.

A check fails through :func:`fail` / :func:`require` / :func:`expect_status`, which raise
:class:`RequirementFailure` naming the requirement(s) the observation proves broken.
Any other exception inside a check is a crash of the harness or an unreachable target
and becomes ERROR, never FAIL and never PASS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import httpx
import pytest

NOT_APPLICABLE_PREFIX = "NOT_APPLICABLE: "


class RequirementFailure(AssertionError):
    """The target broke the named requirements (a supplier FAIL)."""

    def __init__(
        self, requirements: str | Iterable[str], message: str, *, passed: Iterable[str] = (), details: Any = None
    ) -> None:
        reqs = (requirements,) if isinstance(requirements, str) else tuple(requirements)
        if not reqs:
            raise ValueError("RequirementFailure needs at least one requirement ID")
        self.requirements: tuple[str, ...] = reqs
        #: other requirements of the check that it judged in full and found met (their
        #: verdict from this check is PASS, not "not judged")
        self.passed: tuple[str, ...] = tuple(r for r in passed if r not in reqs)
        self.message = message
        #: what the target answered, as structured data (redacted like evidence in the result)
        self.details = details
        super().__init__(f"[{', '.join(reqs)}] {message}")


def fail(
    requirements: str | Iterable[str], message: str, *, passed: Iterable[str] = (), details: Any = None
) -> NoReturn:
    """Record that the target broke ``requirements``.

    ``passed`` names the check's other requirements that it nevertheless judged in full
    and found met (a check that collects every violation before failing); without it
    they count as not judged by this check. ``details``: what the target answered, as
    structured data (e.g. :func:`answer`); it is redacted like evidence.
    """
    raise RequirementFailure(requirements, message, passed=passed, details=details)


def require(condition: object, requirements: str | Iterable[str], message: str) -> None:
    """Fail ``requirements`` with ``message`` unless ``condition`` holds."""
    if not condition:
        fail(requirements, message)


def answer(response: httpx.Response) -> dict[str, Any]:
    """A response as structured failure details: request line, status, content type and body."""
    try:
        body: Any = response.json()
    except ValueError:
        body = {"_text": response.text[:4096]} if response.content else None
    return {
        "request": f"{response.request.method} {response.request.url.path}",
        "status": response.status_code,
        "content_type": response.headers.get("content-type"),
        "body": body,
    }


def describe(response: httpx.Response, limit: int = 300) -> str:
    """One line naming a response: method, path, status and the start of its (redacted) body.

    The body is redacted by the run's redactor before it is cut short, so a failure
    message never carries more of the target's data than its evidence does.
    """
    from conformance.certificate.redaction import active

    redactor = active()
    try:
        text = json.dumps(redactor.body(response.json()), ensure_ascii=False)
    except ValueError:
        text = redactor.text(response.text[: limit * 4])
    body = text[:limit].replace("\n", " ")
    path = redactor.text(response.request.url.path)
    return f"{response.request.method} {path} -> {response.status_code} {body}"


def error_code(response: httpx.Response) -> str | None:
    """The machine-readable ``code`` of an error body, or None."""
    try:
        data = response.json()
    except ValueError:
        return None
    return data.get("code") if isinstance(data, dict) else None


def expect_status(
    response: httpx.Response,
    expected: int | Iterable[int],
    requirements: str | Iterable[str],
    what: str,
    *,
    code: str | None = None,
) -> Any:
    """Fail ``requirements`` unless the status (and error ``code``) is as expected.

    Returns the decoded JSON body (or None) so a check can go on using it.
    """
    allowed = {expected} if isinstance(expected, int) else set(expected)
    if response.status_code not in allowed:
        fail(
            requirements,
            f"{what}: expected HTTP {sorted(allowed)}, got {describe(response)}",
            details=answer(response),
        )
    if code is not None and error_code(response) != code:
        fail(requirements, f"{what}: expected error code {code!r}, got {describe(response)}", details=answer(response))
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        fail(requirements, f"{what}: response is not JSON: {describe(response)}", details=answer(response))


def not_applicable(reason: str) -> NoReturn:
    """Skip the check as NOT_APPLICABLE (the target does not declare the capability)."""
    pytest.skip(NOT_APPLICABLE_PREFIX + reason)


def prerequisite_missing(reason: str) -> NoReturn:
    """Skip the check as SKIPPED (a prerequisite of the check is missing)."""
    pytest.skip(reason)


KINDS = ("scenario", "property", "contract", "export")


def check(*requirements: str, kind: str = "scenario") -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a test function as a conformance check of ``requirements``.

    The suite's ``pytest_generate_tests`` puts the requirement IDs into the test ID
    (``test_x[ICS-1B-SRCH-001]``), so ``-k ICS-1B-SRCH`` and JUnit names carry them.
    """
    if not requirements:
        raise ValueError("a check must name at least one requirement")
    if kind not in KINDS:
        raise ValueError(f"unknown check kind {kind!r}; expected one of {KINDS}")
    return pytest.mark.ics(requirements=tuple(requirements), kind=kind)
