"""``dashboard --static DIR``: every page of the dashboard written as files, for publication.

The files link to each other relatively (open ``index.html`` from disk or any web server),
carry their CSP as a ``<meta>`` element, and each page has its JSON twin under ``api/``.
Every certificate's stored ``report.html`` and signed ``bundle.zip`` are written beside its page.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

from conformance.dashboard.pages import STATIC, Links, build_page
from conformance.errors import UsageError
from conformance.registry.national import Snapshot
from conformance.registry.store import Registry


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)


def write_static(registry: Registry, out: Path, *, on: dt.date | None = None, bundles: bool = True) -> dict[str, Any]:
    """Write the dashboard under ``out``; return what was written."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--static {out}: cannot create the directory ({exc.strerror})") from None
    snapshot = Snapshot.load(registry)
    pages: list[tuple[str, int, str, dict[str, str]]] = [
        ("index", 0, "overview", {}),
        ("matrix", 0, "matrix", {}),
        ("suppliers", 0, "suppliers", {}),
        ("waivers", 0, "waivers", {}),
    ]
    pages += [(f"councils/{code}", 1, "council", {"code": str(code)}) for code in snapshot.councils]
    pages += [(f"certificates/{cid}", 1, "certificate", {"id": cid}) for cid in snapshot.certificates]
    written = 0
    for stem, depth, name, params in pages:
        page = build_page(snapshot, name, params, default_on=on)
        _write(out / f"{stem}.html", page.html(Links(static_depth=depth), live=False))
        api = "overview" if stem == "index" else stem
        _write(out / "api" / f"{api}.json", json.dumps(page.json(), indent=1, ensure_ascii=False) + "\n")
        written += 2
    if bundles:
        for cid in snapshot.certificates:
            content, _ = registry.bundle(cid)
            _write(out / "certificates" / cid / "bundle.zip", content)
            _write(out / "certificates" / cid / "report.html", registry.bundle_member(cid, "report.html"))
            written += 2
    (out / "static").mkdir(exist_ok=True)
    shutil.copyfile(STATIC / "dashboard.css", out / "static" / "dashboard.css")
    return {
        "directory": str(out),
        "files": written + 1,
        "councils": len(snapshot.councils),
        "certificates": len(snapshot.certificates),
    }
