"""The dashboard in headless Chromium: every page loads with no console message (a CSP violation,
a failed load or a script error would log one), screenshots show the chart and the matrix, hostile
target text stays text, and the static export works from disk.

Run over the SQLite registry only: the pages' content is checked on both backends over HTTP
(test_dashboard.py); here it is the browser's rendering that is under test, and each Chromium
start costs seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_support import HOSTILE_SUPPLIER, Served, count_colour, png_pixels
from test_dashboard import Links, pages, parse

from conformance.dashboard import charts
from conformance.dashboard.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("programme", ["sqlite"], indirect=True)]
CONSOLE = re.compile(r"CONSOLE[:(]")


@pytest.fixture(scope="module")
def chromium() -> str:
    from conformance.certificate.report import find_chromium

    found = find_chromium()
    if found is None:
        message = "headless Chromium not found (install Debian package 'chromium' or set ICS_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the browser tests", pytrace=False)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def dashboard(programme: dict[str, Any]) -> Iterator[str]:
    with Served(create_app(programme["registry"])) as url:
        yield url


def browse(chromium: str, url: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``url`` with console messages logged to stderr."""
    with tempfile.TemporaryDirectory(prefix="ics-dashboard-chromium-") as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            *args,
            url,
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env={**os.environ, "HOME": profile}
        )
    assert done.returncode == 0, f"chromium failed on {url}: {done.stderr[-1500:]}"
    return done


def console_messages(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if CONSOLE.search(line)]


def test_every_page_loads_with_no_console_message(chromium: str, dashboard: str, programme: dict[str, Any]) -> None:
    for path in pages(programme):
        done = browse(chromium, dashboard + path, "--dump-dom")
        assert not console_messages(done), f"{path}: {console_messages(done)}"
        dom = parse(done.stdout)
        assert "main" in dom.tags and "nav" in dom.tags, f"{path}: no page rendered"
        assert "script" not in dom.tags
        if path == "/":
            assert dom.tags.count("svg") >= 3 and "polyline" in dom.tags
        if path.startswith("/matrix"):
            assert ("id", "matrix") in dom.attributes and "td" in dom.tags


def test_screenshots_show_the_chart_and_the_matrix(chromium: str, dashboard: str, tmp_path: Path) -> None:
    overview = tmp_path / "overview.png"
    done = browse(chromium, dashboard + "/", f"--screenshot={overview}", "--window-size=1280,1800")
    assert not console_messages(done)
    assert overview.is_file() and overview.stat().st_size > 40_000
    width, height, rows = png_pixels(overview)
    assert (width, height) == (1280, 1800)
    rgb = lambda h: tuple(int(h[i : i + 2], 16) for i in (1, 3, 5))  # noqa: E731
    # The 1B chart (second phase section) is painted: area under the curve, the curve, the deadline line.
    assert count_colour(rows, rgb(charts.AREA)) > 60_000
    assert count_colour(rows, rgb(charts.COMPLIANT)) > 1_500
    assert count_colour(rows, rgb(charts.DEADLINE)) > 300
    assert count_colour(rows, rgb(charts.AREA), 900, 1300) > 20_000, "the 1B chart is not where the layout puts it"

    matrix = tmp_path / "matrix.png"
    done = browse(chromium, dashboard + "/matrix", f"--screenshot={matrix}", "--window-size=1280,1400")
    assert not console_messages(done)
    width, height, rows = png_pixels(matrix)
    assert (width, height) == (1280, 1400)
    assert count_colour(rows, (0x1B, 0x7A, 0x3A), 250, 1400) > 20_000  # compliant cells, painted green
    assert count_colour(rows, (0xF8, 0xDE, 0xDB), 250, 1400) > 5_000  # not-compliant cells (1C at least)
    keep = os.environ.get("ICS_DASHBOARD_SCREENSHOTS")
    if keep:
        import shutil

        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in (overview, matrix):
            shutil.copyfile(shot, Path(keep) / shot.name)


def test_hostile_target_text_stays_text(chromium: str, dashboard: str, programme: dict[str, Any]) -> None:
    done = browse(chromium, f"{dashboard}/certificates/{programme['hostile']}", "--dump-dom")
    assert not console_messages(done)
    dom = parse(done.stdout)
    assert "script" not in dom.tags and "img" not in dom.tags
    assert not [name for name, _ in dom.attributes if name.startswith("on")]
    assert "&lt;script&gt;alert('pwned')&lt;/script&gt; Ltd" in done.stdout or HOSTILE_SUPPLIER in _text(done.stdout)


def _text(html: str) -> str:
    class Text(Links):
        def __init__(self) -> None:
            super().__init__()
            self.chunks: list[str] = []

        def handle_data(self, data: str) -> None:
            self.chunks.append(data)

    parser = Text()
    parser.feed(html)
    return "".join(parser.chunks)


def test_static_export_from_disk(chromium: str, programme: dict[str, Any], tmp_path: Path) -> None:
    from conformance.dashboard.static import write_static

    site = tmp_path / "site"
    write_static(programme["registry"], site, bundles=False)
    for page in ("index.html", "matrix.html", "councils/383.html", "suppliers.html"):
        done = browse(chromium, (site / page).as_uri(), "--dump-dom")
        assert not console_messages(done), f"{page}: {console_messages(done)}"
        assert "nav" in parse(done.stdout).tags
    # The detector is not vacuous: a page breaking the same CSP logs a console message.
    bad = site / "bad.html"
    bad.write_text(
        (site / "index.html").read_text(encoding="utf-8").replace("<main", '<main style="color:red"', 1),
        encoding="utf-8",
    )
    assert console_messages(browse(chromium, bad.as_uri(), "--dump-dom")), "a CSP violation went unnoticed"
