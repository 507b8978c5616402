"""A target answering nonsense makes the search, records and access checks FAIL, never ERROR.

A crash of a check's own code is ERROR by design, so each check must read the target's
bodies defensively: a missing field, a wrong type or a body that is not JSON is a FAIL of
the requirement under test. A small hostile target provisions practitioners correctly
(so the harness can start) and answers everything else with one kind of nonsense; the
checks run against it in a subprocess and none may crash.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from conformance.reference.server import run_in_thread

SUITES = Path(__file__).resolve().parents[2] / "conformance" / "suites"
MODULES = ("test_search.py", "test_search_stateful.py", "test_records.py", "test_access.py")
CAPABILITIES = {"unborn_children": True, "shielded_records": True, "audit": True}

#: mode -> (status, body) answered to every request but /about and POST /practitioners
MODES: dict[str, tuple[int, object]] = {
    "null": (200, None),
    "list": (200, [1, "two", None]),
    "bare-id": (201, {"id": 7}),
    "page-of-junk": (200, {"items": [{"no": "id"}, 3, None], "total": "many"}),
    "page-of-nothing": (200, {"items": [], "total": -3, "page": "x"}),
    "wrong-types": (201, {"id": {"nested": True}, "items": "abc", "given_name": 5, "local_id": [1], "total": 10**12}),
    "not-json": (200, "<html>hello</html>"),
    "server-error": (500, {"code": "INTERNAL", "message": "boom"}),
}


def hostile_app(mode: str, admin_token: str) -> Starlette:
    status, body = MODES[mode]

    async def about(request: Request) -> Response:
        return JSONResponse(
            {
                "supplier": "hostile",
                "product": "nonsense",
                "version": "0",
                "spec_versions": ["2008.1"],
                "capabilities": CAPABILITIES,
            }
        )

    async def practitioners(request: Request) -> Response:
        data = await request.json()
        return JSONResponse(
            {
                "id": f"p-{secrets.token_hex(4)}",
                "name": data.get("name"),
                "role": data.get("role"),
                "token": secrets.token_hex(8),
            },
            status_code=201,
        )

    async def anything(request: Request) -> Response:
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=status)
        return JSONResponse(body, status_code=status)

    return Starlette(
        routes=[
            Route("/about", about),
            Route("/practitioners", practitioners, methods=["POST"]),
            Route("/{path:path}", anything, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        ]
    )


@pytest.fixture(params=sorted(MODES))
def hostile_target(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    token = secrets.token_urlsafe(16)
    with run_in_thread(
        hostile_app(request.param, token), host="127.0.0.1", port=0, admin_token=token, faults=()
    ) as service:
        yield service.url, token


def test_nonsense_answers_fail_and_never_crash(hostile_target: tuple[str, str], tmp_path: Path) -> None:
    url, token = hostile_target
    junit = tmp_path / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(str(SUITES / m) for m in MODULES),
        "--ics-phase",
        "1B",
        "--ics-target",
        url,
        "-p",
        "no:cacheprovider",
        "-p",
        "no:faker",
        "-p",
        "no:schemathesis",
        "-p",
        "no:allure_pytest",
        "-p",
        "no:anyio",
        "-q",
        "-rfE",
        "--tb=line",
        f"--junitxml={junit}",
    ]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "ICS_ADMIN_TOKEN": token}
    )
    text = junit.read_text(encoding="utf-8") if junit.exists() else ""
    assert 'errors="0"' in text, f"checks crashed (ERROR) against a nonsense target:\n{done.stdout[-6000:]}"
    assert 'failures="0"' not in text, f"nothing failed against a nonsense target:\n{done.stdout[-3000:]}"
    assert "ICS-" in done.stdout
