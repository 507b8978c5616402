"""The dashboard over a registry holding the demo programme, on both backends: pages, JSON, CSP, escaping, static export."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from registry_support import HOSTILE_PRODUCT, HOSTILE_SUPPLIER, Served

from conformance.dashboard.app import create_app
from conformance.dashboard.pages import CSP
from conformance.registry.national import Snapshot


@pytest.fixture(scope="module")
def client(programme: dict[str, Any]) -> Iterator[httpx.Client]:
    """A real HTTP client on the dashboard served by uvicorn."""
    with Served(create_app(programme["registry"])) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def pages(programme: dict[str, Any]) -> list[str]:
    snapshot = Snapshot.load(programme["registry"])
    some = sorted(snapshot.certificates)[0]
    return [
        "/",
        "/matrix",
        "/matrix?phase=1B&state=not-compliant&region=London",
        "/suppliers",
        "/waivers",
        "/councils/383",
        "/councils/857",
        f"/certificates/{some}",
        f"/certificates/{programme['hostile']}",
    ]


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.hrefs.append(value)


def parse(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def test_every_page_and_its_json(client: httpx.Client, programme: dict[str, Any]) -> None:
    for path in pages(programme):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        dom = parse(response.text)
        assert "script" not in dom.tags and not [n for n, _ in dom.attributes if n.startswith("on")]
        assert not [n for n, _ in dom.attributes if n == "style"], f"{path}: inline style (blocked by the CSP)"
        for href in dom.hrefs:  # every internal link answers
            if href.startswith("/"):
                assert client.get(href).status_code == 200, f"{path} links to {href}"
        api = "/api" + (path if path != "/" else "/overview")
        as_json = client.get(api)
        assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json", api
        negotiated = client.get(path, headers={"Accept": "application/json"})
        assert negotiated.json() == as_json.json()
    assert "unsafe-inline" not in CSP and "script-src" not in CSP and "default-src 'none'" in CSP


def test_overview_tells_the_2008_story(client: httpx.Client) -> None:
    data = client.get("/api/overview").json()
    assert data["on"] == "2008-10-15" and data["councils"] == 150
    b = next(p for p in data["phases"] if p["code"] == "1B")
    assert [(d["date"], d["compliant"], d["current"]) for d in b["deadlines"]] == [
        ("2008-03-31", 55, False),
        ("2008-09-30", 128, True),
    ]
    html = client.get("/").text
    assert "55 of 150 on 31 Mar 2008" in html and "128 of 150 on 30 Sep 2008" in html
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 3
    earlier = client.get("/api/overview?on=2008-03-31").json()
    assert next(p for p in earlier["phases"] if p["code"] == "1B")["compliant_now"] == 55


def test_matrix_filters(client: httpx.Client) -> None:
    everything = client.get("/api/matrix").json()
    assert everything["shown"] == 150 and set(everything["phases"]) == {"1A", "1B", "1C"}
    missing = client.get("/api/matrix?phase=1B&state=not-compliant").json()
    assert missing["shown"] == 150 - everything["totals"]["1B"] > 0
    assert all(not r["phases"]["1B"]["compliant"] for r in missing["rows"])
    london = client.get("/api/matrix?region=London").json()
    assert london["shown"] == 33 and {r["region"] for r in london["rows"]} == {"London"}
    one = client.get("/api/matrix?q=leeds").json()
    assert [r["code"] for r in one["rows"]] == [383]
    supplier = client.get("/api/matrix", params={"supplier": "Delta Demo Records Ltd"}).json()
    assert supplier["shown"] == 30
    html = client.get("/matrix?phase=1B&state=not-compliant").text
    assert 'id="matrix"' in html and "<option selected>1B</option>" in html


def test_council_and_certificate_pages(client: httpx.Client, programme: dict[str, Any]) -> None:
    leeds = client.get("/api/councils/383").json()
    assert leeds["council"]["name"] == "Leeds" and [s["phase"] for s in leeds["status"]] == ["1A", "1B", "1C"]
    assert leeds["deployments"] and leeds["certificates"]
    assert any(m["phase"] == "1C" for m in leeds["missing"])
    cert = leeds["status"][1]["proving"][0]["id"] if leeds["status"][1]["compliant"] else leeds["certificates"][0]["id"]
    page = client.get(f"/certificates/{cert}")
    assert page.status_code == 200 and "The stored report" in page.text
    report = client.get(f"/certificates/{cert}/report.html")
    assert report.status_code == 200 and "ICS conformance report" in report.text
    assert "sandbox" in report.headers["content-security-policy"]
    assert "script-src" not in report.headers["content-security-policy"]
    bundle = client.get(f"/certificates/{cert}/bundle.zip")
    assert bundle.status_code == 200 and bundle.content[:2] == b"PK"
    assert bundle.headers["content-disposition"].startswith("attachment; filename=")


def test_target_supplied_text_is_escaped(client: httpx.Client, programme: dict[str, Any]) -> None:
    cert = programme["hostile"]
    for path in (f"/certificates/{cert}", "/suppliers", "/councils/857", "/matrix"):
        html = client.get(path).text
        assert HOSTILE_SUPPLIER not in html and HOSTILE_PRODUCT not in html, path
        assert "&lt;script&gt;alert(" in html or "&#34;&gt;&lt;img" in html, path
        assert "<script" not in html and "<img" not in html
    data = client.get(f"/api/certificates/{cert}").json()
    assert data["certificate"]["supplier"] == HOSTILE_SUPPLIER  # JSON carries the text as it is


def test_errors_and_read_only(client: httpx.Client) -> None:
    assert client.get("/councils/999").status_code == 404
    assert client.get("/api/councils/999").json() == {"error": "no council with LA code 999"}
    assert client.get("/certificates/" + "0" * 64).status_code == 404
    assert client.get("/certificates/" + "0" * 64 + "/report.html").status_code == 404
    assert client.get("/no/such/page").status_code == 404
    bad = client.get("/matrix?on=31/03/2008")
    assert bad.status_code == 400 and "must be a date" in bad.text
    assert client.post("/").status_code == 405
    assert client.delete("/councils/383").status_code == 405
    assert client.head("/").status_code == 200


def test_the_dashboard_follows_registry_changes(programme: dict[str, Any]) -> None:
    registry = programme["registry"]
    with Served(create_app(registry)) as url, httpx.Client(base_url=url, timeout=60) as client:
        _follows(client, registry)


def _follows(client: httpx.Client, registry: Any) -> None:
    before = client.get("/api/councils/201?on=2009-06-01").json()
    registry.deploy("201", "SafeKeep Demo", "1.0", dt.date(2009, 5, 1))  # back to a version without 1B
    after = client.get("/api/councils/201?on=2009-06-01").json()
    assert len(after["deployments"]) == len(before["deployments"]) + 1
    assert after["status"][1]["compliant"] is False


def test_static_export(programme: dict[str, Any], tmp_path: Path) -> None:
    from conformance.dashboard.static import write_static

    out = tmp_path / "site"
    done = write_static(programme["registry"], out)
    assert done["councils"] == 150
    html_files = sorted(out.rglob("*.html"))
    assert (out / "index.html").is_file() and (out / "api" / "overview.json").is_file()
    assert (out / "councils" / "383.html").is_file() and (out / "static" / "dashboard.css").is_file()
    for page in html_files:
        if page.name == "report.html":
            continue
        text = page.read_text(encoding="utf-8")
        assert "Content-Security-Policy" in text and "<script" not in text
        for href in parse(text).hrefs:
            target = (page.parent / re.sub(r"[?#].*$", "", href)).resolve()
            assert target.is_file(), f"{page.relative_to(out)} links to missing {href}"
