"""Helpers for the registry tests: keys, bundles re-issued from one real certify run, counts."""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from conformance.certificate.signing import generate_keypair
from conformance.registry import schema as t
from conformance.registry.demo import Run, reissue
from conformance.registry.store import Registry
from conformance.results.verdicts import PhaseVerdict, Verdict, phase_verdict

PARTIES = {
    "lab": ("Example Test Lab (fictional)", "test_lab", None, None),
    "acme": ("Acme Demo Ltd", "supplier", "Acme Demo Ltd", None),
    "zenith": ("Zenith Demo plc", "supplier", "Zenith Demo plc", None),
    "leeds": ("Leeds ICS team (demo key)", "council", None, "383"),
    "dcsf": ("DCSF (demo key)", "certifier", None, None),
}


def make_keys(folder: Path) -> dict[str, tuple[Path, Path]]:
    out = {}
    for name in PARTIES:
        private, public = folder / name / "ed25519-private.pem", folder / name / "ed25519-public.pem"
        if not private.is_file():
            private, public = generate_keypair(folder / name, force=True)
        out[name] = (private, public)
    return out


def register_parties(registry: Registry, keys: dict[str, tuple[Path, Path]]) -> None:
    for name, (party, role, supplier, council) in PARTIES.items():
        registry.add_key(party, role, keys[name][1].read_text(), supplier=supplier, council=council)


def variant(result: dict[str, Any], *, phase: str | None = None, fail: tuple[str, ...] = ()) -> dict[str, Any]:
    """A copy of a real result for another phase (requirements of later phases dropped) or with
    some requirements (and their checks) turned FAIL; counts and phase verdict recomputed."""
    out = copy.deepcopy(result)
    if phase is not None:
        order = {"1A": 1, "1B": 2, "1C": 3}
        out["phase"] = phase
        out["requirements"] = [r for r in out["requirements"] if order[r["phase"]] <= order[phase]]
    failing_checks: dict[str, list[str]] = {}
    for requirement in out["requirements"]:
        if requirement["id"] in fail:
            requirement["verdict"] = Verdict.FAIL.value
            for check in requirement.get("checks") or []:
                failing_checks.setdefault(check["id"], []).append(requirement["id"])
    for requirement in out["requirements"]:  # a check is recorded alike under every requirement it names
        for check in requirement.get("checks") or []:
            if check["id"] in failing_checks:
                named = [
                    r["id"] for r in out["requirements"] if any(c["id"] == check["id"] for c in r.get("checks") or [])
                ]
                check["verdict"] = Verdict.FAIL.value
                check["message"] = "synthetic failure for the registry tests"
                check["failed_requirements"] = failing_checks[check["id"]]
                check["passed_requirements"] = [r for r in named if r not in failing_checks[check["id"]]]
    counts = Counter(r["verdict"] for r in out["requirements"])
    areas: dict[str, Counter[str]] = defaultdict(Counter)
    for r in out["requirements"]:
        areas[r["area"]][r["verdict"]] += 1
    verdict = phase_verdict((r["level"], Verdict(r["verdict"])) for r in out["requirements"])
    if out.get("errors") and verdict is PhaseVerdict.CERTIFIED:
        verdict = PhaseVerdict.INCONCLUSIVE
    out["verdict"] = verdict.value
    out["counts"] = dict(sorted(counts.items()))
    out["areas"] = {area: dict(sorted(c.items())) for area, c in sorted(areas.items())}
    return out


def issue(
    result: dict[str, Any],
    out_dir: Path,
    key: Path,
    *,
    supplier: str = "Acme Demo Ltd",
    product: str = "CaseBook Demo",
    version: str = "1.0",
    finished: str = "2008-01-15",
    phase: str | None = None,
    fail: tuple[str, ...] = (),
    waiver_set: Any = None,
    council: str | None = None,
) -> Path:
    """A signed bundle zip of ``result`` re-issued for a product and day (see registry.demo.reissue),
    recording its signer with the test parties' keyring."""
    changed = variant(result, phase=phase, fail=fail) if (phase or fail) else result
    if council is not None:
        changed = dict(changed, council=council)
    return reissue(
        Run("test", changed, None),
        supplier=supplier,
        product=product,
        version=version,
        finished=dt.datetime.combine(dt.date.fromisoformat(finished), dt.time(12, 0)),
        sign_key=key,
        out_dir=out_dir,
        waiver_set=waiver_set,
        council=council,
        keyring=test_keyring(key.parent.parent),
    )


def test_keyring(folder: Path) -> Any:
    """The test parties (see PARTIES) as a trust-model keyring."""
    from conformance.registry.intake import KeyInfo, keyring_of

    keys = make_keys(folder)
    infos = [
        KeyInfo(
            key_id="",
            public_key_pem=keys[name][1].read_text(),
            party=party,
            role=role,
            supplier=supplier,
            council_name="Leeds" if council else None,
        )
        for name, (party, role, supplier, council) in PARTIES.items()
    ]
    return keyring_of(infos)


def write_keyring_file(folder: Path, path: Path) -> Path:
    """The test parties as a keyring file (for certify --keyring)."""
    import yaml

    keys = make_keys(folder)
    roles = {"certifier": "department", "test_lab": "test-lab", "supplier": "supplier", "council": "council"}
    entries = []
    for name, (party, role, supplier, council) in PARTIES.items():
        entry: dict[str, Any] = {"party": party, "role": roles[role], "public_key": keys[name][1].read_text()}
        if supplier:
            entry["scope"] = {"supplier": supplier}
        elif council:
            entry["scope"] = {"council": "Leeds"}
        entries.append(entry)
    path.write_text(yaml.safe_dump({"format": "ics-conformance/keyring/1", "keys": entries}), encoding="utf-8")
    return path


def counts(registry: Registry) -> dict[str, int]:
    with registry.engine.connect() as c:
        return {
            name: int(c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            for name, table in (
                ("bundles", t.bundles),
                ("certificates", t.certificates),
                ("waivers", t.waivers),
                ("versions", t.versions),
            )
        }


HOSTILE_SUPPLIER = "<script>alert('pwned')</script> Ltd"
HOSTILE_PRODUCT = '"><img src=x onerror=alert(1)>'


def synthetic_runs(result: dict[str, Any]) -> dict[str, Run]:
    """The demo's run kinds made from one real 1B result (fast, for tests): 1A by dropping the 1B
    requirements, the faulty runs by turning the faulted requirement FAIL (no 1C run: a 1C result
    needs the 1C requirements, which a 1B run does not have)."""
    return {
        "1A-clean": Run("1A-clean", variant(result, phase="1A"), None),
        "1B-clean": Run("1B-clean", result, None),
        "1B-search-fault": Run("1B-search-fault", variant(result, fail=("ICS-1B-SRCH-001",)), None),
        "1B-gating-fault": Run("1B-gating-fault", variant(result, fail=("ICS-1B-GATE-001",)), None),
    }


def build_test_programme(registry: Registry, work: Path, result: dict[str, Any], lab_key: tuple[Path, Path]) -> str:
    """The demo programme from synthetic runs, plus one certificate whose target identity is hostile
    markup (signed by a test lab, which may sign for anyone). Returns that certificate's id."""
    from conformance.registry.demo import build_programme

    build_programme(registry, work, synthetic_runs(result))
    registry.add_key(PARTIES["lab"][0], "test_lab", lab_key[1].read_text())
    bundle = issue(
        result, work / "hostile", lab_key[0], supplier=HOSTILE_SUPPLIER, product=HOSTILE_PRODUCT, version="6.6"
    )
    outcome = registry.submit(bundle)
    registry.deploy("Rutland", HOSTILE_PRODUCT, "6.6", dt.date(2008, 5, 1), supplier=HOSTILE_SUPPLIER)
    return outcome.certificate_id


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) into rows of RGB pixels."""
    import struct
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 3
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
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if filt == 1:
                line[i] = (line[i] + a) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + b) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


def count_colour(rows: list[bytes], rgb: tuple[int, int, int], y0: int = 0, y1: int | None = None) -> int:
    """Pixels of exactly this colour (flat fills are painted exactly) in rows y0..y1.

    Counts whole pixels only (a colour's bytes starting at a pixel boundary)."""
    target = bytes(rgb)
    total = 0
    for row in rows[y0:y1]:
        start = row.find(target)
        while start >= 0:
            if start % 3 == 0:
                total += 1
            start = row.find(target, start + 1)
    return total


class Served:
    """An ASGI app served by uvicorn from a thread on a free loopback port (``with Served(app) as url:``)."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread: Any = None

    def __enter__(self) -> str:
        import threading
        import time

        import httpx

        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/static/dashboard.css", timeout=2)
                return self.url
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the dashboard did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.sock.close()
