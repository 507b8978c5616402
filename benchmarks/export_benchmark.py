"""Export validation benchmark (not a timed test).

    .venv/bin/python benchmarks/export_benchmark.py [--records 1000000] [--workers 2]

Generates (and caches under ``benchmarks/.cache``) a synthetic export of about
``--records`` records, then reports side by side, in the same run:

* parse-only: orjson over every line of the same files, one process (the ceiling);
* ``validate_export`` with 1 worker and with ``--workers`` workers (each in a fresh
  child process so its peak RSS, and that of its worker processes, is measured);
* plain ``jsonschema`` Draft 2020-12 with format checking on a sample of records.

Target: validation throughput >= 60% of parse-only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDS_PER_CHILD = 11.85  # what the generator produces on average
RECORD_TYPES = ("children", "aliases", "practitioners", "allocations", "referrals", "case_notes", "assessments", "visits")

_CHILD = r"""
import json, resource, sys, time
from conformance.export import validate_export
began = time.perf_counter()
report = validate_export(sys.argv[1], workers=int(sys.argv[2]))
elapsed = time.perf_counter() - began
print(json.dumps({
    "seconds": elapsed, "records": report.records, "bytes": report.bytes,
    "conformant": report.conformant,
    "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "workers_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}))
"""


def ensure_export(records: int, seed: int = 1, cache: Path = HERE / ".cache") -> Path:
    """Return the cached export directory of about ``records`` records (generated once)."""
    children = max(1, round(records / RECORDS_PER_CHILD))
    path = cache / f"export-{children}-seed{seed}"
    if not (path / "manifest.json").exists():
        from conformance.export import generate_export

        print(f"generating {children:,} children (~{records:,} records) into {path} ...", file=sys.stderr)
        began = time.perf_counter()
        tmp = path.with_name(path.name + ".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        generate_export(tmp, children=children, seed=seed)
        tmp.rename(path)
        print(f"  generated in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return path


def parse_only(path: Path) -> dict:
    """orjson over every line, block-read like the validator, one process."""
    import orjson

    began = time.perf_counter()
    records = size = 0
    loads = orjson.loads
    for t in RECORD_TYPES:
        with open(path / f"{t}.jsonl", "rb", buffering=0) as fh:
            pending = b""
            while block := fh.read(4 << 20):
                size += len(block)
                lines = (pending + block).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    loads(line)
                records += len(lines)
    return {"seconds": time.perf_counter() - began, "records": records, "bytes": size}


def validate(path: Path, workers: int) -> dict:
    """Run validate_export in a fresh child process and return its figures."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(workers)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def plain_jsonschema(path: Path, sample: int) -> dict:
    """jsonschema Draft 2020-12 with formats on the first lines of each file (``sample`` in all)."""
    import jsonschema
    import orjson

    from conformance.export.records import load_schema

    total_bytes = sum((path / f"{t}.jsonl").stat().st_size for t in RECORD_TYPES)
    seconds = records = size = 0.0
    for t in RECORD_TYPES:
        share = max(1, int(sample * (path / f"{t}.jsonl").stat().st_size / total_bytes))
        validator = jsonschema.Draft202012Validator(load_schema(t), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        with open(path / f"{t}.jsonl", "rb") as fh:
            lines = [fh.readline() for _ in range(share)]
        lines = [line for line in lines if line]
        began = time.perf_counter()
        for line in lines:
            validator.is_valid(orjson.loads(line))
        seconds += time.perf_counter() - began
        records += len(lines)
        size += sum(map(len, lines))
    return {"seconds": seconds, "records": int(records), "bytes": int(size)}


def _row(name: str, figures: dict, base: dict | None) -> str:
    rps = figures["records"] / figures["seconds"]
    mbs = figures["bytes"] / 1e6 / figures["seconds"]
    ratio = f"{rps / (base['records'] / base['seconds']):6.1%}" if base else "     -"
    rss = figures.get("rss_mib")
    rss_text = f"{rss:7.0f}" if rss is not None else "      -"
    return f"{name:<34} {figures['records']:>10,} {figures['seconds']:>8.2f} {rps:>12,.0f} {mbs:>8.1f} {rss_text} {ratio}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="approximate records in the export (default 1,000,000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the parallel run (default 2)")
    parser.add_argument("--sample", type=int, default=20_000, help="records validated by plain jsonschema (default 20,000)")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache", help="where generated exports are kept")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    path = ensure_export(args.records, cache=args.cache)
    parse = parse_only(path)
    parse["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runs = {}
    for workers in sorted({1, args.workers}):
        figures = validate(path, workers)
        figures["rss_mib"] = (figures["self_maxrss_kib"] + (figures["workers_maxrss_kib"] if workers > 1 else 0)) / 1024
        runs[workers] = figures
    plain = plain_jsonschema(path, args.sample)
    results = {"export": str(path), "parse_only": parse, "validate": runs, "plain_jsonschema_sample": plain}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"export: {path} ({parse['records']:,} records, {parse['bytes'] / 1e6:.0f} MB)")
        print(f"{'run':<34} {'records':>10} {'seconds':>8} {'records/s':>12} {'MB/s':>8} {'RSS MiB':>7} vs-parse")
        print(_row("parse-only (orjson, 1 process)", parse, None))
        for workers, figures in runs.items():
            print(_row(f"validate_export workers={workers}", figures, parse))
            if not figures["conformant"]:
                print("  (export NOT conformant: the generator or the rules have a bug)")
        print(_row(f"plain jsonschema (sample)", plain, parse))
        best = max(r["records"] / r["seconds"] for r in runs.values())
        print(f"validate / plain jsonschema: {best / (plain['records'] / plain['seconds']):.0f}x")
        print("RSS: parse-only is this process; validate = coordinator + largest worker (upper bound of the tree's peak)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
