"""``registry demo``: the full command with real certify runs (slow), and its guard against a used registry."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from registry_support import synthetic_runs

from conformance.cli import main
from conformance.errors import UsageError
from conformance.registry.demo import build_programme
from conformance.registry.national import Snapshot, overview_view
from conformance.registry.store import Registry


def test_demo_fills_only_a_new_registry(registry: Registry, real_run: dict[str, Any], tmp_path: Path) -> None:
    registry.deploy("Leeds", "Some Product", "1", dt.date(2008, 1, 1), supplier="Someone")
    with pytest.raises(UsageError, match="fills a new registry"):
        build_programme(registry, tmp_path, synthetic_runs(real_run["result"]))


@pytest.mark.slow
def test_registry_demo_command_with_real_certify_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_cluster: Any
) -> None:
    work = tmp_path / "work"
    sqlite = str(tmp_path / "demo.sqlite")
    assert main(["registry", "demo", "--db", sqlite, "--work", str(work)]) == 0
    out = capsys.readouterr().out
    assert "1B-search-fault: NOT_CERTIFIED" in out and "1B-clean: CERTIFIED" in out
    assert len(list((work / "runs").glob("*/*/result.json"))) == 5
    # The real, untouched bundles are in the registry too, next to the re-issued programme.
    with Registry(sqlite) as registry:
        snapshot = Snapshot.load(registry)
        rows = registry.certificate_rows()
        real = [c for c in rows if c["supplier"] == "ics-conformance"]
        assert len(real) == 5 and {c["assurance"] for c in real} == {"witnessed"}
        faults = {tuple(c["faults"]) for c in rows}
        assert ("search-accent-sensitive",) in faults and ("gating-off",) in faults
        b = next(p for p in overview_view(snapshot)["phases"] if p["code"] == "1B")
        assert [(d["date"], d["compliant"]) for d in b["deadlines"]] == [
            (dt.date(2008, 3, 31), 55),
            (dt.date(2008, 9, 30), 128),
        ]
    assert main(["registry", "status", "--db", sqlite, "--council", "383", "--phase", "1B", "--on", "2008-09-30"]) in (
        0,
        1,
    )
    capsys.readouterr()
    # A second demo reuses the cached runs: on PostgreSQL this time.
    database = pg_cluster.create_database()
    try:
        assert main(["registry", "demo", "--db", pg_cluster.url(database), "--work", str(work), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["deployments"] > 300 and summary["view_date"] == "2008-10-15"
    finally:
        pg_cluster.drop_database(database)
