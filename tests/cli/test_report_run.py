"""A real failing run, as a supplier or a council sees it: ``certify --pdf`` against the reference with the
``gating-off`` fault (assessments completed with no one having seen the child; the export then holds them).

One run, judged from every side: the terminal (the report's path, one line per failure with the first line
of its message, progress counted in requirements), ``report.html`` in headless Chromium (its first screen,
its height) and ``report.pdf`` (A4, numbered pages, a short summary; the evidence only as an appendix).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))
from report_layout import measure

pytestmark = pytest.mark.browser
#: A failing report was 160,000 px tall at 1280 px before the first screen was redone (and 219 US-Letter PDF pages).
MAX_HEIGHT_PX = 20_000
MAX_SUMMARY_PAGES = 6
GATE_ROOTS = ("ICS-1B-GATE-001", "ICS-1B-GATE-002", "ICS-1B-GATE-003", "ICS-1B-GATE-004", "ICS-1B-GATE-005")


@dataclass
class Run:
    stdout: str
    code: int
    bundle: Path
    result: dict[str, Any]


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    from conformance.certificate.report import find_chromium

    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("headless Chromium not found; CI must run the browser tests", pytrace=False)
        pytest.skip("headless Chromium not found (install Debian package 'chromium')")
    root = tmp_path_factory.mktemp("report-run")
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "certify", "--reference-fault", "gating-off", "--seed", "7"]
        + ["--pdf", "--output", str(root / "reports")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    (bundle,) = [p for p in (root / "reports").glob("ics-1B-*/ics-1b-*") if p.is_dir()]
    result = json.loads((bundle.parent / "result.json").read_text(encoding="utf-8"))
    return Run(done.stdout, done.returncode, bundle, result)


def test_terminal_names_the_report_and_each_failure_with_its_first_line(failing_run: Run) -> None:
    out = failing_run.stdout
    report = re.search(r"^report: (.+report\.html)$", out, re.M)
    assert report and Path(report.group(1)).is_file() and Path(report.group(1)).parent == failing_run.bundle
    lines = out.splitlines()
    for rid in (*GATE_ROOTS, "ICS-1A-EXP-008"):
        (index,) = [i for i, line in enumerate(lines) if line.startswith(f"  FAIL: {rid}  ")]
        first = lines[index + 1]
        assert first.startswith("      ") and len(first.strip()) > 10, (rid, first)
        assert "POST /" not in first  # the observation, not the HTTP exchange
    effect = next(line for line in lines if line.startswith("  FAIL: ICS-1A-EXP-008"))
    assert "side effect of ICS-1B-GATE-001" in effect
    assert max(i for i, line in enumerate(lines) if line.startswith("  FAIL: ICS-1B-GATE")) < lines.index(effect)
    # progress lines count requirements, as the summary does: the gating area is 6 requirements
    gating = next(line for line in lines if re.match(r"\s+gating\s+\d+ requirements", line))
    assert re.search(r"\b6 requirements\s+FAIL 5, NOT_RUN 1\b", gating), gating
    assert re.search(r"running \d+ checks of 62 requirements", out)


def test_result_records_the_side_effect_of_the_gating_fault(failing_run: Run) -> None:
    from conformance.results.result import result_problems

    assert not result_problems(failing_run.result)
    assert failing_run.result["side_effects"] == {"ICS-1A-EXP-008": list(GATE_ROOTS)}


def test_first_screen_in_chromium_and_the_report_is_short(failing_run: Run, tmp_path: Path) -> None:
    layout = measure(failing_run.bundle / "report.html", tmp_path, width=1280, height=900)
    assert layout["height"] < MAX_HEIGHT_PX, layout["height"]
    ids = layout["ids"]
    assert ids["phase-verdict"] < 200 and ids["what-failed"] < 900  # the verdict, then what failed, at once
    shown = layout["firstScreen"]
    assert "failed-req-ICS-1B-GATE-001" in shown and "failed-req-ICS-1A-EXP-008" in shown, shown
    # root causes first: the export failure is drawn under the first gating failure, after it
    assert ids["failed-req-ICS-1B-GATE-001"] < ids["failed-req-ICS-1A-EXP-008"] < ids["failed-req-ICS-1B-GATE-002"]
    assert ids["not-judged"] < ids["failures"] < ids["matrix"]
    html = (failing_run.bundle / "report.html").read_text(encoding="utf-8")
    not_judged = html[html.index('<section id="not-judged">') :]
    row = not_judged[not_judged.index("#req-ICS-1B-GATE-006") :]
    assert "stops at the first violation" in row[: row.index("</tr>")]


def test_pdf_is_an_a4_summary_with_page_numbers_and_an_optional_evidence_appendix(
    failing_run: Run, tmp_path: Path
) -> None:
    import pypdf

    from conformance.certificate.bundle import write_bundle

    summary = pypdf.PdfReader(failing_run.bundle / "report.pdf")
    pages = len(summary.pages)
    assert 1 < pages <= MAX_SUMMARY_PAGES, pages
    box = summary.pages[0].mediabox
    assert abs(float(box.width) - 595.3) < 2 and abs(float(box.height) - 841.9) < 2  # A4, in points
    for number, page in enumerate(summary.pages, start=1):
        assert f"page {number} of {pages}" in page.extract_text(), number
    first = summary.pages[0].extract_text()
    assert "NOT CERTIFIED" in first and "ICS-1B-GATE-001" in first
    text = "".join(page.extract_text() for page in summary.pages)
    assert "Channel Verdict" in text and "ChannelVerdict" not in text  # column headers stay apart
    started = time.monotonic()
    appendix = write_bundle(failing_run.result, tmp_path, pdf=True, pdf_evidence=True)
    assert time.monotonic() - started < 300
    full = pypdf.PdfReader(appendix.directory / "report.pdf")
    assert len(full.pages) > pages
    text = "".join(page.extract_text() for page in full.pages[pages - 1 :])
    assert "Appendix: evidence of the failing checks" in text and "REQUEST 1" in text.upper()
