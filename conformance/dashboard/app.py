"""The national dashboard as a Starlette app: server-rendered pages, each also as JSON.

Routes: ``/`` (programme overview), ``/matrix`` (councils x phases, filters as query
parameters), ``/suppliers``, ``/waivers``, ``/councils/{code}``, ``/certificates/{id}`` (with
``/report.html`` and ``/bundle.zip`` from the stored bundle); every page also under ``/api/...``
and as JSON when the request prefers ``application/json``. Read-only: anything but GET/HEAD is
405. Every response carries a strict Content-Security-Policy (no script at all).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from conformance.dashboard.pages import (
    CSP,
    REPORT_CSP,
    SECURITY_HEADERS,
    STATIC,
    Links,
    Page,
    SnapshotCache,
    build_page,
    not_found,
)
from conformance.errors import UsageError
from conformance.registry.store import Registry

#: Rendered pages kept per registry snapshot (dropped whenever the registry changes).
VIEW_CACHE_ENTRIES = 2048
_PAGES = {"": "overview", "matrix": "matrix", "suppliers": "suppliers", "waivers": "waivers"}


def _headers(csp: str = CSP) -> dict[str, str]:
    return {"Content-Security-Policy": csp, **SECURITY_HEADERS}


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    if "application/json" not in accept:
        return False
    html = accept.find("text/html")
    return html < 0 or accept.find("application/json") < html


def create_app(registry: Registry, *, default_on: dt.date | None = None) -> Starlette:
    """The dashboard over ``registry`` (which must be initialised)."""
    cache = SnapshotCache(registry)

    def respond(request: Request, name: str, params: dict[str, str], *, api: bool = False) -> Response:
        as_json = api or _wants_json(request)
        snapshot = cache.get()
        key = (name, tuple(sorted(params.items())), as_json)
        cached = snapshot.views.get(key)
        if cached is None:
            cached = render(snapshot, name, params, as_json)
            if len(snapshot.views) < VIEW_CACHE_ENTRIES:
                snapshot.views[key] = cached  # pages are pure functions of (snapshot, request)
        status, body, media_type = cached
        return Response(body, status_code=status, media_type=media_type, headers=_headers())

    def render(snapshot: Any, name: str, params: dict[str, str], as_json: bool) -> tuple[int, bytes, str]:
        try:
            page = build_page(snapshot, name, params, default_on=default_on)
        except ValueError as exc:
            page = Page("error", "error.html", "Bad request", {"message": str(exc), "on": None}, status=400)
        if as_json:
            data: Any = page.json() if page.status == 200 else {"error": page.data["message"]}
            return page.status, bytes(JSONResponse(data).body), "application/json"
        html = page.html(Links(on=_explicit_on(params)))
        return page.status, html.encode("utf-8"), "text/html; charset=utf-8"

    def page_route(request: Request) -> Response:
        path = request.url.path.strip("/")
        api = path == "api" or path.startswith("api/")
        key = path.removeprefix("api").strip("/") if api else path
        name = _PAGES.get("" if key == "overview" else key)
        if name is None:
            return respond(request, "missing", {}, api=api)
        return respond(request, name, dict(request.query_params), api=api)

    def council_route(request: Request) -> Response:
        params = dict(request.query_params) | {"code": str(request.path_params["code"])}
        return respond(request, "council", params, api=request.url.path.startswith("/api/"))

    def certificate_route(request: Request) -> Response:
        params = dict(request.query_params) | {"id": str(request.path_params["cert_id"])}
        return respond(request, "certificate", params, api=request.url.path.startswith("/api/"))

    def report_route(request: Request) -> Response:
        cert_id = str(request.path_params["cert_id"])
        if cert_id not in cache.get().certificates:
            return _not_found(request)
        try:
            html = registry.bundle_member(cert_id, "report.html")
        except UsageError as exc:
            return HTMLResponse(f"<p>{_esc(str(exc))}</p>", status_code=404, headers=_headers())
        return Response(html, media_type="text/html; charset=utf-8", headers=_headers(REPORT_CSP))

    def bundle_route(request: Request) -> Response:
        cert_id = str(request.path_params["cert_id"])
        if cert_id not in cache.get().certificates:
            return _not_found(request)
        content, filename = registry.bundle(cert_id)
        safe = "".join(ch for ch in filename if ch.isalnum() or ch in "-_.")[:120] or "bundle.zip"
        headers = _headers() | {"Content-Disposition": f'attachment; filename="{safe}"'}
        return Response(content, media_type="application/zip", headers=headers)

    def css_route(request: Request) -> Response:
        return FileResponse(STATIC / "dashboard.css", media_type="text/css", headers=_headers())

    def _not_found(request: Request) -> Response:
        page = not_found(f"nothing at {request.url.path[:200]}")
        if _wants_json(request) or request.url.path.startswith("/api/"):
            return JSONResponse({"error": page.data["message"]}, status_code=404, headers=_headers())
        return HTMLResponse(page.html(Links()), status_code=404, headers=_headers())

    routes = [
        Route("/", page_route),
        Route("/matrix", page_route),
        Route("/suppliers", page_route),
        Route("/waivers", page_route),
        Route("/api", page_route),
        Route("/api/overview", page_route),
        Route("/api/matrix", page_route),
        Route("/api/suppliers", page_route),
        Route("/api/waivers", page_route),
        Route("/councils/{code}", council_route),
        Route("/api/councils/{code}", council_route),
        Route("/certificates/{cert_id}", certificate_route),
        Route("/api/certificates/{cert_id}", certificate_route),
        Route("/certificates/{cert_id}/report.html", report_route),
        Route("/certificates/{cert_id}/bundle.zip", bundle_route),
        Route("/static/dashboard.css", css_route),
    ]

    async def not_found_handler(request: Request, exc: Exception) -> Response:
        return _not_found(request)

    async def method_handler(request: Request, exc: Exception) -> Response:
        return Response("method not allowed: the dashboard is read-only\n", status_code=405, headers=_headers())

    async def error_handler(request: Request, exc: Exception) -> Response:
        import sys
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
        return Response("internal error of the dashboard (logged)\n", status_code=500, headers=_headers())

    return Starlette(
        routes=routes,
        exception_handlers={404: not_found_handler, 405: method_handler, Exception: error_handler},
    )


def _explicit_on(params: dict[str, str]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(params["on"]) if params.get("on") else None
    except ValueError:
        return None


def _esc(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
