"""Fixtures for the registry and dashboard tests.

Every registry test that takes ``registry`` runs twice: on a SQLite file and on a real
PostgreSQL server that this session starts itself (initdb + pg_ctl from Debian's
``postgresql`` package, a throwaway cluster in a temporary directory, run as the
``postgres`` user when the tests run as root). One real ``certify`` run of the built-in
reference (shared by the xdist workers) supplies the results that tests re-issue as bundles.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry_support import make_keys, register_parties

from conformance.registry.store import Registry


def _require(message: str) -> None:
    """FAIL under CI (it must provide PostgreSQL and Chromium), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must run these tests (.ci/run installs it)", pytrace=False)
    pytest.skip(message)


def _pg_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """A throwaway PostgreSQL cluster: initdb, pg_ctl start, one database per test, pg_ctl stop."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="ics-registry-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql)

    def create_database(self) -> str:
        name = f"reg_{uuid.uuid4().hex[:12]}"
        self._admin(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    bindir = _pg_bindir()
    if bindir is None:
        _require("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
    assert bindir is not None
    try:
        cluster = PostgresCluster(bindir)
    except (LookupError, OSError) as exc:  # e.g. no 'postgres' user to own the cluster
        _require(f"cannot prepare a PostgreSQL cluster directory: {exc}")
    try:
        cluster.start()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        cluster.stop()
        _require(f"cannot start a throwaway PostgreSQL cluster: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield str(tmp_path / "registry.sqlite")
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    """An initialised registry (150 councils, phases) on each backend."""
    with Registry(db_url) as reg:
        reg.init()
        yield reg


def _shared_dir(factory: pytest.TempPathFactory) -> Path:
    root = factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Demo key pairs (test lab, two suppliers, a council, the certifier), shared by the workers."""
    shared = _shared_dir(tmp_path_factory) / "registry-keys"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return make_keys(shared)


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, tuple[Path, Path]]) -> dict[str, Any]:
    """One real ``certify`` run (phase 1B, built-in reference) signed by the test lab key:
    ``{"result": dict, "zip": Path, "dir": Path}``. Made once per test session, shared by xdist workers."""
    shared = _shared_dir(tmp_path_factory) / "registry-real-run"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = sorted(shared.glob("ics-*/result.json"))
        if not results:
            command = [sys.executable, "-m", "conformance", "certify", "--phase", "1B", "--seed", "2008", "--quiet"]
            from registry_support import write_keyring_file

            keyring = write_keyring_file(keys["lab"][0].parent.parent, shared / "keyring.yaml")
            command += ["--output", str(shared), "--sign-key", str(keys["lab"][0]), "--keyring", str(keyring)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"certify failed ({done.returncode}): {done.stderr[-2000:]}"
            results = sorted(shared.glob("*/result.json"))
    run_dir = results[-1].parent
    zips = sorted(run_dir.glob("*.zip"))
    return {
        "result": json.loads(results[-1].read_text(encoding="utf-8")),
        "zip": zips[-1],
        "dir": zips[-1].with_suffix(""),
    }


@pytest.fixture
def parties(registry: Registry, keys: dict[str, tuple[Path, Path]]) -> dict[str, tuple[Path, Path]]:
    """The registry with every test party's key registered; returns the key pairs."""
    register_parties(registry, keys)
    return keys


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def programme(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    keys: dict[str, tuple[Path, Path]],
    real_run: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """A registry holding the demo programme (built from synthetic variants of the real run) and one
    certificate with a hostile target identity, once per backend per module:
    ``{"registry", "url", "hostile", "work"}``."""
    from registry_support import build_test_programme

    work = tmp_path_factory.mktemp(f"programme-{request.param}")
    database = None
    if request.param == "sqlite":
        url = str(work / "registry.sqlite")
    else:
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        database = cluster.create_database()
        url = cluster.url(database)
    with Registry(url) as registry:
        hostile = build_test_programme(registry, work / "demo", real_run["result"], keys["lab"])
        yield {"registry": registry, "url": url, "hostile": hostile, "work": work}
    if database is not None:
        cluster.drop_database(database)
