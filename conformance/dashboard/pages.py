"""The dashboard's pages: which view each shows, its template, and the links between pages.

Used by the live server (:mod:`conformance.dashboard.app`) and by the static export
(:mod:`conformance.dashboard.static`); only :class:`Links` differs between the two (absolute
routes with ``?on=`` kept, or relative ``.html`` files).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from conformance.dashboard.charts import bar_svg, timeline_svg
from conformance.registry.national import (
    Snapshot,
    certificate_view,
    council_view,
    jsonable,
    matrix_view,
    overview_view,
    suppliers_view,
    waivers_view,
)
from conformance.registry.store import Registry

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"

#: The dashboard's Content-Security-Policy: nothing but its own stylesheet; no script, no frames.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
#: For a stored bundle's report.html (self-contained, inline styles): no script, sandboxed.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; sandbox"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class Links:
    """URLs of the pages: live routes (``static_depth`` None) or relative files of a static export."""

    def __init__(self, *, static_depth: int | None = None, on: dt.date | None = None) -> None:
        self.static_depth = static_depth
        self.on = on

    @property
    def static(self) -> bool:
        return self.static_depth is not None

    def _page(self, route: str, file: str, **params: Any) -> str:
        if self.static_depth is not None:
            return "../" * self.static_depth + file
        query = {k: v for k, v in params.items() if v not in (None, "")}
        if self.on is not None:
            query.setdefault("on", self.on.isoformat())
        return route + ("?" + urlencode(query) if query else "")

    def overview(self) -> str:
        return self._page("/", "index.html")

    def matrix(self, **filters: Any) -> str:
        return self._page("/matrix", "matrix.html", **filters)

    def suppliers(self) -> str:
        return self._page("/suppliers", "suppliers.html")

    def waivers(self) -> str:
        return self._page("/waivers", "waivers.html")

    def council(self, code: int) -> str:
        return self._page(f"/councils/{int(code)}", f"councils/{int(code)}.html")

    def certificate(self, cert_id: str) -> str:
        return self._page(f"/certificates/{quote(cert_id)}", f"certificates/{quote(cert_id)}.html")

    def report(self, cert_id: str) -> str:
        route = f"/certificates/{quote(cert_id)}/report.html"
        return "../" * self.static_depth + route.lstrip("/") if self.static_depth is not None else route

    def bundle(self, cert_id: str) -> str:
        route = f"/certificates/{quote(cert_id)}/bundle.zip"
        return "../" * self.static_depth + route.lstrip("/") if self.static_depth is not None else route

    def css(self) -> str:
        return (
            "../" * self.static_depth + "static/dashboard.css"
            if self.static_depth is not None
            else "/static/dashboard.css"
        )

    def api(self, page: str) -> str:
        return "../" * self.static_depth + f"api/{page}.json" if self.static_depth is not None else f"/api/{page}"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return f"{value.day} {_MONTHS[value.month - 1]} {value.year} {value:%H:%M}"
    if isinstance(value, dt.date):
        return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"
    return "" if value is None else str(value)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["d"] = _date
    env.filters["verdict"] = lambda v: str(v or "").replace("_", " ")
    env.globals["timeline_svg"] = timeline_svg
    env.globals["bar_svg"] = bar_svg
    return env


@dataclass
class Page:
    """One rendered-or-renderable page: its view data and the template that shows it."""

    name: str
    template: str
    title: str
    data: dict[str, Any]
    status: int = 200

    def json(self) -> Any:
        return jsonable(self.data)

    def html(self, links: Links, *, live: bool = True) -> str:
        return (
            environment()
            .get_template(self.template)
            .render(page=self.name, title=self.title, view=self.data, links=links, live=live)
        )


def _parse_day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'on' must be a date (YYYY-MM-DD), not {value[:40]!r}") from None


def build_page(snapshot: Snapshot, name: str, params: Mapping[str, str], *, default_on: dt.date | None = None) -> Page:
    """The page ``name`` for query ``params`` (``on``, filters); a 404 page when the thing is unknown."""
    on = _parse_day(params.get("on")) or default_on
    if name == "overview":
        view = overview_view(snapshot, on)
        return Page("overview", "overview.html", "ICS programme overview", view)
    if name == "matrix":
        view = matrix_view(
            snapshot,
            on,
            region=params.get("region") or None,
            supplier=params.get("supplier") or None,
            phase=params.get("phase") or None,
            state=params.get("state") or None,
            q=params.get("q") or None,
        )
        return Page("matrix", "matrix.html", "Councils x phases", view)
    if name == "suppliers":
        return Page("suppliers", "suppliers.html", "Suppliers and certified versions", suppliers_view(snapshot, on))
    if name == "waivers":
        try:
            days = max(1, min(int(params.get("days") or 90), 3660))
        except ValueError:
            days = 90
        return Page("waivers", "waivers.html", "Waivers expiring soon", waivers_view(snapshot, on, days))
    if name == "council":
        try:
            code = int(params.get("code", ""))
        except ValueError:
            code = -1
        council = council_view(snapshot, code, on)
        if council is None:
            return not_found(f"no council with LA code {params.get('code')}")
        return Page("council", "council.html", f"{council['council']['name']} ({code})", council)
    if name == "certificate":
        cert_id = str(params.get("id", ""))
        certificate = certificate_view(snapshot, cert_id, on)
        if certificate is None:
            return not_found(f"no certificate {cert_id[:64]}")
        return Page("certificate", "certificate.html", f"Certificate {cert_id[:12]}", certificate)
    return not_found(f"no page {name}")


def not_found(message: str) -> Page:
    return Page("error", "error.html", "Not found", {"message": message, "on": None}, status=404)


class SnapshotCache:
    """The registry's snapshot, reloaded only when the registry changed (its generation)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None

    def get(self) -> Snapshot:
        generation = self.registry.generation()
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                self._snapshot = Snapshot.load(self.registry)
            return self._snapshot
