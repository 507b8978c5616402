"""Concurrent submits and a crash mid-submit, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

from registry_support import counts, issue

from conformance.registry import intake
from conformance.registry.store import Registry, SubmitOutcome


def _facts(registry: Registry, bundle: Path) -> intake.Facts:
    content, name = intake.bundle_bytes(bundle)
    scratch = intake.scratch_file(content)
    try:
        return intake.verify_and_extract(scratch, registry.lookup_key, filename=name)
    finally:
        scratch.unlink()


def _store_at_once(registry: Registry, facts: list[intake.Facts]) -> list[SubmitOutcome]:
    """Store each verified bundle from its own thread and connection, released together."""
    barrier = threading.Barrier(len(facts))
    results: list[Any] = [None] * len(facts)

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = registry.store(facts[index])
        except BaseException as exc:  # reported below
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(facts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for outcome in results:
        assert isinstance(outcome, SubmitOutcome), f"a concurrent submit failed: {outcome!r}"
    return results


def test_two_different_bundles_at_once_both_land(
    registry: Registry, parties: Any, real_run: dict[str, Any], tmp_path: Path
) -> None:
    # Same new supplier and product, two versions: both transactions create the supplier and product rows.
    a = issue(real_run["result"], tmp_path, parties["acme"][0], version="4.1")
    b = issue(real_run["result"], tmp_path, parties["acme"][0], version="4.2")
    outcomes = _store_at_once(registry, [_facts(registry, a), _facts(registry, b)])
    assert all(o.created for o in outcomes)
    assert counts(registry) == {"bundles": 2, "certificates": 2, "waivers": 0, "versions": 2}
    rows = registry.certificate_rows()
    assert {r["version"] for r in rows} == {"4.1", "4.2"} and {r["supplier"] for r in rows} == {"Acme Demo Ltd"}


def test_the_same_bundle_twice_at_once_lands_once(registry: Registry, parties: Any, real_run: dict[str, Any]) -> None:
    facts = _facts(registry, real_run["zip"])
    outcomes = _store_at_once(registry, [facts, facts])
    assert sorted(o.created for o in outcomes) == [False, True]
    assert len({o.certificate_id for o in outcomes}) == 1
    assert counts(registry) == {"bundles": 1, "certificates": 1, "waivers": 0, "versions": 1}


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "conformance", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_concurrent_cli_submits_from_two_processes(
    registry: Registry, db_url: str, parties: Any, real_run: dict[str, Any], tmp_path: Path
) -> None:
    a = issue(real_run["result"], tmp_path, parties["zenith"][0], supplier="Zenith Demo plc", version="7.3")
    b = issue(real_run["result"], tmp_path, parties["acme"][0], version="3.5")
    runs = [_cli("registry", "submit", "--db", db_url, str(path)) for path in (a, b, a)]
    done = [p.communicate(timeout=180) for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0], done
    assert sum("STORED" in out and "ALREADY" not in out for out, _ in done) == 2
    assert counts(registry) == {"bundles": 2, "certificates": 2, "waivers": 0, "versions": 2}


CRASH = textwrap.dedent(
    """
    import os, sys
    from conformance.registry import store

    def crash(*args, **kwargs):  # the bundle row is written, the certificate not yet: the process dies
        os._exit(9)

    store._insert_certificate = crash
    store.Registry(sys.argv[1]).submit(sys.argv[2])
    """
)


def test_a_crash_mid_submit_leaves_nothing_half_stored(
    registry: Registry, db_url: str, parties: Any, real_run: dict[str, Any]
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", CRASH, db_url, str(real_run["zip"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 9, done.stderr
    assert counts(registry) == {"bundles": 0, "certificates": 0, "waivers": 0, "versions": 0}
    outcome = registry.submit(real_run["zip"])  # and the registry is usable afterwards
    assert outcome.created and counts(registry)["certificates"] == 1
