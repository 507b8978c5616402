"""The registry benchmark's steps run at a tiny size against real bundles (figures not asserted).

The benchmark is not run by CI; this keeps it from rotting when intake rules change (it once
re-issued bundles that the trust model then refused)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.registry.store import Registry

ROOT = Path(__file__).resolve().parents[2]


def _benchmark() -> Any:
    spec = importlib.util.spec_from_file_location("registry_benchmark", ROOT / "benchmarks" / "registry_benchmark.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("registry_benchmark", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_benchmark_steps_run(
    db_url: str, tmp_path: Path, real_run: dict[str, Any], keys: dict[str, tuple[Path, Path]]
) -> None:
    bench = _benchmark()
    private, public = keys["lab"]
    registry = Registry(db_url)
    registry.init()
    try:
        bench.fill(registry, 40, public.read_text())
        times = bench.bench_submit(registry, real_run["result"], private, tmp_path, n=2)  # asserts each is stored
        assert len(times) == 2
        assert len(bench.bench_status(registry)) == len(registry.councils())
    finally:
        registry.close()
