"""Measure how headless Chromium lays out a report: page height and where each element starts.

The report forbids scripts (Content-Security-Policy), so a copy is measured: the policy
removed and a script added that writes the layout into the title, read back with
``--dump-dom``. Nothing else of the page changes, so its layout is the report's.
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

from conformance.certificate.report import run_headless

_SCRIPT = """<script>
addEventListener("load", () => {
  const top = (e) => Math.round(e.getBoundingClientRect().top + scrollY);
  const ids = {};
  for (const e of document.querySelectorAll("[id]")) ids[e.id] = top(e);
  const firstScreen = [];
  for (const e of document.querySelectorAll("#what-failed li, #not-judged tr")) {
    if (top(e) < innerHeight) firstScreen.push(e.id || e.textContent.trim().slice(0, 40));
  }
  document.title = "LAYOUT " + JSON.stringify({
    height: document.documentElement.scrollHeight, viewport: innerHeight, ids, firstScreen
  });
});
</script>"""


def measure(report: Path, workdir: Path, *, width: int = 1280, height: int = 900) -> dict[str, Any]:
    """``{"height", "viewport", "ids": {id: top px}, "firstScreen": [...]}`` of ``report`` in Chromium."""
    html = report.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html, count=1)
    html = html.replace("</body>", _SCRIPT + "</body>", 1)
    copy = workdir / f"measured-{report.stem}.html"
    copy.write_text(html, encoding="utf-8")
    dumped = run_headless(
        copy, "--dump-dom", f"--window-size={width},{height}", "--hide-scrollbars", "--virtual-time-budget=5000"
    ).stdout
    match = re.search(r"<title>LAYOUT (.*?)</title>", dumped, re.S)
    assert match, "the measuring script did not run"
    return dict(json.loads(unescape(match.group(1))))
