"""Strings from the target never act on the operator's terminal or in the HTML report: control
characters (``ESC[2J`` clears the screen, ``ESC]0;...BEL`` retitles it) and bidi overrides
(U+202E reverses what follows) are shown escaped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from robust_support import about_server

from conformance.certificate.report import render_html
from conformance.results.text import printable

HOSTILE_KEY = "\x1b[2J\x1b]0;pwned\x07"
RAW = ("\x1b", "\x07", "\u202e", "\u2066", "\u200f")
ABOUT = {"supplier": "Evil", "product": "ICS", "version": "1", "spec_versions": ["2008.1"]}


def _raw_controls(text: str) -> list[str]:
    return [repr(ch) for ch in RAW if ch in text]


def test_printable_escapes_controls_and_bidi_but_not_ordinary_text() -> None:
    assert printable("Climbié O’Brien Zoë") == "Climbié O’Brien Zoë"
    assert printable(HOSTILE_KEY) == "\\x1b[2J\\x1b]0;pwned\\x07"
    assert printable("invoice\u202etxt.exe") == "invoice\\u202etxt.exe"
    assert printable("a\nb", keep_newlines=True) == "a\nb" and printable("a\nb") == "a\\x0ab"


def test_a_hostile_capability_key_is_escaped_on_the_terminal(tmp_path: Path) -> None:
    with about_server({**ABOUT, "capabilities": {HOSTILE_KEY: True}}) as url:
        done = subprocess.run(
            [sys.executable, "-m", "conformance", "certify", "--target", url, "--output", "out", "-n", "0"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "ICS_ADMIN_TOKEN": "t0ken-x"},
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert "\\x1b[2J" in done.stderr and _raw_controls(done.stdout + done.stderr) == [], done.stderr
        via_pytest = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--ics-target", url, "-n", "0", "-q"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "ICS_ADMIN_TOKEN": "t0ken-x"},
        )
    assert via_pytest.returncode == 4 and "\\x1b[2J" in via_pytest.stdout + via_pytest.stderr
    assert _raw_controls(via_pytest.stdout + via_pytest.stderr) == []


def test_bidi_and_controls_from_the_target_are_escaped_in_the_report(tmp_path: Path) -> None:
    product = "Case\u202eexe.TXT"
    about = {**ABOUT, "product": product, "supplier": "Evil\x1b[31m Ltd", "capabilities": {}}
    with about_server(about) as url:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "conformance",
                "certify",
                "--target",
                url,
                "--output",
                "out",
                "-n",
                "0",
                "-k",
                "test_about_without_authentication",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "ICS_ADMIN_TOKEN": "t0ken-x"},
        )
    assert done.returncode in (0, 1, 3), done.stdout + done.stderr
    assert _raw_controls(done.stdout + done.stderr) == []
    reports = list((tmp_path / "out").rglob("report.html"))
    assert reports, done.stdout + done.stderr
    html = reports[0].read_text(encoding="utf-8")
    assert _raw_controls(html) == [] and "Case\\u202eexe.TXT" in html


def test_render_html_escapes_every_target_string() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))
    from bundle_samples import make_result

    result = make_result()
    result["target"]["about"]["product"] = "P\u202eroduct"
    check = next(c for r in result["requirements"] for c in r["checks"])
    check["verdict"], check["message"] = "FAIL", "name was \u2066\u202eSmith\u2069 and \x1b[2J"
    result["errors"] = ["the target said \x1b[2J"]
    check["evidence"] = [{"kind": "http", "request": {"method": "GET", "url": "/x\u200f"}, "response": {"status": 200}}]
    html = render_html(result, evidence=[{"kind": "note", "text": "\x07bell"}])
    assert _raw_controls(html) == [] and "\\u202e" in html and "\\x1b[2J" in html
