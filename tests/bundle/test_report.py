"""report.html: content, escaping of hostile target strings (in headless Chromium), screenshot, PDF."""

from __future__ import annotations

import re
import struct
import zlib
from html.parser import HTMLParser
from itertools import accumulate
from pathlib import Path
from typing import Any

import pytest
from bundle_samples import make_result, requirement
from markupsafe import escape

from conformance.certificate.bundle import write_bundle
from conformance.certificate.report import ChromiumError, render_html, run_headless, write_pdf

SCRIPT = "<script>document.title='pwned'</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"


class _Dom(HTMLParser):
    """Collects the elements of a dumped DOM."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._in_title = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.text.append(data)


def _dom(html: str) -> _Dom:
    parser = _Dom()
    parser.feed(html)
    return parser


def hostile_result() -> dict[str, Any]:
    about = {"supplier": SCRIPT, "product": IMG, "version": JS_URL, "spec_versions": ["2008.1"], "homepage": JS_URL}
    result = make_result(about=about, builtin=True)
    result["target"]["url"] = JS_URL
    check = requirement(result, "ICS-1B-SRCH-001")["checks"][0]
    check["message"] = f"child {SCRIPT} not found; see {JS_URL} {IMG}"
    check["reproduce"] = f"ics-conformance certify --target '{JS_URL}' # {SCRIPT}"
    check["example"] = {"given_name": SCRIPT, "family_name": IMG}
    entry = check["evidence"][0]
    entry["request"]["url"] = f"{JS_URL}?q={IMG}"
    entry["response"]["json"]["items"][0]["given_name"] = SCRIPT
    entry["response"]["json"]["items"][0]["family_name"] = IMG
    entry["response"]["headers"]["location"] = JS_URL
    result["errors"] = [f"target said {SCRIPT}"]
    result["findings"] = [
        {"requirement": "ICS-1A-EXP-001", "file": IMG, "line": 3, "pointer": "/given_name", "message": SCRIPT}
    ]
    return result


def test_report_structure_and_escaping_static() -> None:
    html = render_html(hostile_result())
    assert SCRIPT not in html and "<img" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    # the only links lead within the page (to an element's id): none to anything the target named
    links = re.findall(r"href=\"([^\"]*)\"", html)
    assert links and all(re.fullmatch(r"#[A-Za-z0-9_-]+", link) for link in links), links
    ids = set(re.findall(r' id="([^"]+)"', html))
    assert {link[1:] for link in links} <= ids  # and every one of them leads somewhere
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "http://" not in html.split("<body>")[0] and "https://" not in html  # no external fetches
    order = [
        html.index(marker)
        for marker in ('id="phase-verdict"', 'id="what-failed"', 'id="failures"', 'id="tested"', 'id="matrix"')
    ]
    assert order == sorted(order)


def test_report_has_failure_details(sample_result: dict[str, Any]) -> None:
    html = render_html(sample_result)
    assert "NOT CERTIFIED" in html and "Acme Care Systems" in html and "2008.2" in html
    statement = requirement(sample_result, "ICS-1B-SRCH-001")["statement"]
    assert str(escape(statement)) in html  # requirement statement
    assert "Minimal failing example" in html and "Climbie" in html
    assert "ics-conformance certify --phase 1B --target http://127.0.0.1:8765 --seed 1234" in html
    assert "GET http://127.0.0.1:8765/children?given_name=Victoria" in html  # evidence
    for rid in ("ICS-1A-REC-001", "ICS-1B-SRCH-003", "ICS-1A-API-001"):
        assert f'id="req-{rid}"' in html


@pytest.mark.browser
def test_hostile_strings_do_not_execute_in_chromium(tmp_path: Path, chromium: str) -> None:
    bundle = write_bundle(hostile_result(), tmp_path)
    dumped = run_headless(
        bundle.directory / "report.html", "--dump-dom", "--virtual-time-budget=2000", chromium=chromium
    ).stdout
    dom = _dom(dumped)
    assert dom.elements, "Chromium dumped no DOM"
    assert dom.title.startswith("ICS conformance report: phase 1B") and "pwned" not in dom.title
    tags = [tag for tag, _ in dom.elements]
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
    assert not [(t, a) for t, a in dom.elements if any(name.startswith("on") for name in a)]
    assert not [(t, a) for t, a in dom.elements if any("javascript:" in (v or "") for v in a.values())]
    assert all(a["href"].startswith("#") for t, a in dom.elements if t == "a" and a.get("href"))
    text = "".join(dom.text)
    assert SCRIPT in text and IMG in text and JS_URL in text  # shown as text, verbatim


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) into rows of pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        filt, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if filt == 1:  # Sub: a running sum per channel
            for k in range(bpp):
                line[k::bpp] = bytes(accumulate(line[k::bpp], lambda x, y: (x + y) & 0xFF))
        elif filt == 2:  # Up
            line = bytearray((x + y) & 0xFF for x, y in zip(line, prev))
        elif filt in (3, 4):
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                if filt == 3:
                    line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


def _count_colour(rows: list[bytes], rgb: tuple[int, int, int], y0: int, y1: int) -> int:
    """Pixels of exactly this colour (flat CSS fills are painted exactly) in rows y0..y1."""
    return b"".join(rows[y0:y1]).count(bytes(rgb))


@pytest.mark.browser
def test_screenshot_shows_verdict_and_matrix(tmp_path: Path, chromium: str, sample_result: dict[str, Any]) -> None:
    bundle = write_bundle(sample_result, tmp_path / "out")
    report = bundle.directory / "report.html"
    shot = tmp_path / "report.png"
    run_headless(report, f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars", chromium=chromium)
    assert shot.is_file() and shot.stat().st_size > 20_000, "screenshot missing or trivial"
    width, height, rows = _png_pixels(shot)
    assert (width, height) == (1280, 2000)
    # The verdict banner (#b3261e, NOT CERTIFIED) is painted near the top, in large blocks.
    assert _count_colour(rows, (0xB3, 0x26, 0x1E), 0, 400) > 30_000
    # Below it, on the first screen, the list of what failed: its FAIL badges (the same red), one per line.
    assert _count_colour(rows, (0xB3, 0x26, 0x1E), 400, 900) > 1_000

    dom = _dom(run_headless(report, "--dump-dom", chromium=chromium).stdout)
    ids = {a.get("id"): (t, a) for t, a in dom.elements if a.get("id")}
    for anchor in ("phase-verdict", "tested", "matrix", "req-ICS-1B-SRCH-001", "req-ICS-1A-REC-001"):
        tag, attrs = ids[anchor]
        assert "hidden" not in attrs and "display:none" not in (attrs.get("style") or "").replace(" ", "")
    assert "NOT CERTIFIED" in "".join(dom.text)
    rows_in_matrix = [a for t, a in dom.elements if t == "tr" and (a.get("id") or "").startswith("req-")]
    assert len(rows_in_matrix) == len(sample_result["requirements"])


@pytest.mark.browser
def test_pdf(tmp_path: Path, chromium: str, sample_result: dict[str, Any]) -> None:
    bundle = write_bundle(sample_result, tmp_path, pdf=True)
    pdf = bundle.directory / "report.pdf"
    assert "report.pdf" in bundle.files and pdf.read_bytes().startswith(b"%PDF-") and pdf.stat().st_size > 10_000


def test_pdf_without_chromium_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICS_CHROMIUM", str(tmp_path / "no-such-chromium"))
    html = tmp_path / "r.html"
    html.write_text("<p>x</p>")
    with pytest.raises(ChromiumError, match="apt-get install chromium"):
        write_pdf(html, tmp_path / "r.pdf")


def test_chromium_timeout_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "slow-chromium"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    html = tmp_path / "r.html"
    html.write_text("<p>x</p>")
    with pytest.raises(ChromiumError, match="did not finish within"):
        write_pdf(html, tmp_path / "r.pdf", timeout=0.5, chromium=str(fake))
