"""Registry and dashboard benchmark (not a timed test).

    .venv/bin/python benchmarks/registry_benchmark.py [--backend sqlite|postgresql|both] [--certificates 10000]

Fills a registry with 150 councils, 40 products (10 suppliers x 4 products, 8 versions each) and
``--certificates`` certificates, then measures on each backend:

* ``submit`` of a typical bundle (a real ``certify`` bundle of the built-in reference, re-issued
  under new versions so each submit stores a new certificate): verify + store, wall time;
* ``status`` for every council (phase 1B on 30 September 2008), each call loading what it needs;
* every dashboard page over HTTP (uvicorn + httpx): cold (first request after a registry change,
  so the snapshot is reloaded) and warm (the snapshot cached by the registry's generation).

The bulk rows are **synthetic** (inserted directly: placeholder bundle bytes, plausible
certificates, waivers, revocations, deployments); only the submitted bundles are real. Targets:
status <= 50 ms, each page <= 300 ms, submit <= 2 s. PostgreSQL is a throwaway cluster started
here (Debian's ``postgresql`` package; run as the ``postgres`` user when run as root), or
``--pg-url``. The load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "registry"
sys.path.insert(0, str(HERE.parent))

import sqlalchemy as sa  # noqa: E402

from conformance.registry import schema as t  # noqa: E402
from conformance.registry.store import Registry, fold, utcnow  # noqa: E402

PHASES = ("1A", "1B", "1C")
ON = dt.date(2008, 9, 30)


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


# --------------------------------------------------------------------------- PostgreSQL


class Cluster:
    def __init__(self) -> None:
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
        if not bindirs:
            raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql), or pass --pg-url")
        self.bindir = Path(bindirs[0])
        self.root = Path(tempfile.mkdtemp(prefix="ics-registry-bench-pg-"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.root_user = os.geteuid() == 0
        if self.root_user:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.root_user:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.root, timeout=120)

    def __enter__(self) -> str:
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(data), "-l", str(self.root / "log"), "-o", options, "-w", "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __exit__(self, *exc: object) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------- data


def real_run() -> tuple[dict[str, Any], Path, Path]:
    """One real certify run (cached): (result, private key, public key)."""
    from conformance.certificate.signing import generate_keypair

    CACHE.mkdir(parents=True, exist_ok=True)
    private, public = CACHE / "key" / "ed25519-private.pem", CACHE / "key" / "ed25519-public.pem"
    if not private.is_file():
        private, public = generate_keypair(CACHE / "key", force=True)
    results = sorted((CACHE / "run").glob("*/result.json"))
    if not results:
        print("certify: one real run of the built-in reference (cached) ...", flush=True)
        command = [
            sys.executable,
            "-m",
            "conformance",
            "certify",
            "--quiet",
            "--seed",
            "1",
            "--output",
            str(CACHE / "run"),
        ]
        subprocess.run([*command, "--sign-key", str(private)], check=False, timeout=900, cwd=HERE.parent)
        results = sorted((CACHE / "run").glob("*/result.json"))
    return json.loads(results[-1].read_text()), private, public


def fill(registry: Registry, certificates: int, public_pem: str) -> None:
    """Synthetic rows: 10 suppliers x 4 products x 8 versions, ``certificates`` certificates, deployments."""
    rng = random.Random(7)
    now = utcnow()
    lab = registry.add_key("Benchmark lab", "test_lab", public_pem)
    with registry.engine.begin() as c:
        versions = []
        for s in range(10):
            supplier = f"Bench Supplier {s:02d} Ltd"
            sid = c.execute(
                t.suppliers.insert().values(name=supplier, name_key=fold(supplier)).returning(t.suppliers.c.id)
            ).scalar_one()
            for p in range(4):
                product = f"Product {s:02d}-{p}"
                pid = c.execute(
                    t.products.insert()
                    .values(supplier_id=sid, name=product, name_key=fold(product))
                    .returning(t.products.c.id)
                ).scalar_one()
                for v in range(8):
                    vid = c.execute(
                        t.versions.insert()
                        .values(product_id=pid, version=f"{v}.0", version_key=f"{v}.0")
                        .returning(t.versions.c.id)
                    ).scalar_one()
                    versions.append(vid)
        bundles, certs, waivers = [], [], []
        for i in range(certificates):
            cid = hashlib.sha256(f"synthetic-{i}".encode()).hexdigest()
            finished = dt.datetime(2006, 6, 1) + dt.timedelta(days=rng.randint(0, 1200), hours=rng.randint(0, 23))
            bundles.append(
                {"manifest_sha256": cid, "content": b"synthetic", "content_sha256": hashlib.sha256(b"synthetic").hexdigest(),
                 "size": 9, "filename": f"synthetic-{i}.zip", "stored_at": now}
            )  # fmt: skip
            certs.append(
                {
                    "id": cid, "run_id": f"r{i:08x}", "phase": rng.choice(PHASES),
                    "verdict": rng.choices(["CERTIFIED", "NOT_CERTIFIED", "INCONCLUSIVE"], [7, 2, 1])[0],
                    "assurance": rng.choice(["self-assessed", "witnessed"]), "signer_key_id": lab.key_id,
                    "version_id": rng.choice(versions), "council_code": None, "target_url": "https://example.invalid",
                    "builtin_reference": False, "faults": [], "spec_version": "2008.1", "spec_sha256": "0" * 64,
                    "harness_version": "0.1.0", "started_at": finished - dt.timedelta(minutes=2), "finished_at": finished,
                    "finished_on": finished.date(), "counts": {"PASS": 62}, "submitted_at": now, "verified_at": now,
                    "verified_ok": True, "verify_problem": None,
                    "revoked_at": now if rng.random() < 0.02 else None, "revoked_reason": None,
                }
            )  # fmt: skip
            if rng.random() < 0.1:
                waivers.append(
                    {"certificate_id": cid, "requirement": "ICS-1B-SRCH-001", "reference": f"W-{i}", "reason": "synthetic",
                     "expires": finished.date() + dt.timedelta(days=rng.randint(30, 400)), "scope": {}}
                )  # fmt: skip
        for start in range(0, len(certs), 2000):
            c.execute(t.bundles.insert(), bundles[start : start + 2000])
            c.execute(t.certificates.insert(), certs[start : start + 2000])
        if waivers:
            c.execute(t.waivers.insert(), waivers)
        deployments = []
        for code in c.execute(sa.select(t.councils.c.code)).scalars():
            day = dt.date(2006, 9, 1)
            for _ in range(rng.randint(2, 4)):
                day += dt.timedelta(days=rng.randint(60, 400))
                deployments.append(
                    {"council_code": code, "version_id": rng.choice(versions), "from_date": day, "recorded_at": now}
                )
        c.execute(t.deployments.insert(), deployments)
        c.execute(t.meta.delete().where(t.meta.c.key == "generation"))
        c.execute(t.meta.insert().values(key="generation", value="bench"))


# --------------------------------------------------------------------------- measurements


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def bench_submit(registry: Registry, result: dict[str, Any], private: Path, work: Path, n: int = 5) -> list[float]:
    from conformance.registry.demo import Run, reissue
    from conformance.registry.intake import keyring_of

    # The bundle records its signer as the registry knows it (the benchmark lab, a test-lab
    # key: "witnessed"), or intake refuses it as a mislabelled self-assessment.
    keyring = keyring_of(registry.keys())
    times = []
    for i in range(n):
        path = reissue(
            Run("bench", result, None), supplier="Bench Supplier 00 Ltd", product="Product 00-0", version=f"9.{i}",
            finished=dt.datetime(2008, 5, 1, 12), sign_key=private, out_dir=work, keyring=keyring,
        )  # fmt: skip
        began = time.perf_counter()
        outcome = registry.submit(path)
        times.append(time.perf_counter() - began)
        assert outcome.created
    return times


def bench_status(registry: Registry) -> list[float]:
    times = []
    for council in registry.councils():
        began = time.perf_counter()
        registry.status(str(council["code"]), "1B", ON)
        times.append(time.perf_counter() - began)
    return times


def bench_pages(registry: Registry) -> dict[str, tuple[float, float]]:
    import httpx
    import uvicorn

    from conformance.dashboard.app import create_app
    from conformance.registry.national import Snapshot

    some_cert = next(iter(Snapshot.load(registry).certificates))
    paths = [
        "/", "/matrix", "/matrix?phase=1B&state=not-compliant&region=London", "/suppliers", "/waivers",
        "/councils/383", f"/certificates/{some_cert}", "/api/overview", "/api/matrix",
    ]  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(registry, default_on=dt.date(2008, 10, 15)), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    out: dict[str, tuple[float, float]] = {}
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            for _ in range(100):
                try:
                    client.get("/static/dashboard.css")
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            for path in paths:
                registry.set_view_date(None)  # a registry change: the next request reloads the snapshot
                began = time.perf_counter()
                assert client.get(path).status_code == 200, path
                cold = time.perf_counter() - began
                warm = []
                for _ in range(5):
                    began = time.perf_counter()
                    client.get(path)
                    warm.append(time.perf_counter() - began)
                out[path] = (cold, statistics.median(warm))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    return out


def run_backend(
    name: str, url: str, certificates: int, result: dict[str, Any], private: Path, public: Path
) -> dict[str, Any]:
    registry = Registry(url)
    registry.init()
    began = time.perf_counter()
    fill(registry, certificates, public.read_text())
    print(
        f"[{name}] filled: {certificates} certificates in {time.perf_counter() - began:.1f} s (load {loadavg()})",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as work:
        submit = bench_submit(registry, result, private, Path(work))
    status = bench_status(registry)
    pages = bench_pages(registry)
    registry.close()
    report = {
        "backend": name,
        "submit_s": {"median": statistics.median(submit), "max": max(submit)},
        "status_ms": {
            "median": statistics.median(status) * 1000,
            "p95": sorted(status)[int(len(status) * 0.95)] * 1000,
            "max": max(status) * 1000,
        },
        "pages_ms": {path: {"cold": cold * 1000, "warm": warm * 1000} for path, (cold, warm) in pages.items()},
        "loadavg": loadavg(),
    }
    print(f"[{name}] submit of a typical bundle: median {submit[len(submit) // 2]:.2f} s, max {max(submit):.2f} s")
    s = report["status_ms"]
    print(f"[{name}] status (150 councils): median {s['median']:.1f} ms, p95 {s['p95']:.1f} ms, max {s['max']:.1f} ms")
    for path, (cold, warm) in pages.items():
        print(f"[{name}] page {path:<55} cold {ms(cold):>9}  warm {ms(warm):>9}")
    print(f"[{name}] load average: {loadavg()}", flush=True)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--certificates", type=int, default=10_000)
    parser.add_argument("--pg-url", help="an empty PostgreSQL database (default: start a throwaway cluster)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    print(f"load average before: {loadavg()}", flush=True)
    result, private, public = real_run()
    reports = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            reports.append(
                run_backend("sqlite", str(Path(tmp) / "bench.sqlite"), args.certificates, result, private, public)
            )
    if args.backend in ("postgresql", "both"):
        if args.pg_url:
            reports.append(run_backend("postgresql", args.pg_url, args.certificates, result, private, public))
        else:
            with Cluster() as url:
                reports.append(run_backend("postgresql", url, args.certificates, result, private, public))
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
