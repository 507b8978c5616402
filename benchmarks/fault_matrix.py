"""Fault matrix report (not a test): fault -> requirements failed -> seconds to detect.

    .venv/bin/python benchmarks/fault_matrix.py [--seed 1] [--profile quick] [--clean-seeds 20]
                                                [--fault NAME ...] [--markdown FILE]

Runs ``ics-conformance certify`` against the built-in reference once per injectable fault
(one run at a time, so each wall time is that run's alone), in the latest phase among the
fault's targets (1A, 1B, or a phase 1C pair run with a clean built-in peer, as
``tests/proof/test_fault_matrix.py`` does), then the clean reference (phase 1B) on
``--clean-seeds`` seeds. For each fault it reports the requirements that
FAILED, whether that set is the fault's registry targets (plus at most its declared
collateral) with no ERROR, the requirements left unjudged, and
the wall time of the whole certify run (start-up, every check, result.json; no bundle).

The assertions live in ``tests/proof/test_fault_matrix.py`` (``pytest tests/proof -m slow``);
this script produces the figures for a closing note or a release.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def certify(args: list[str], profile: str, workers: str, phase: str = "1B") -> tuple[int, dict | None, float]:
    """One certify run in a fresh directory; (exit code, result.json or None, wall seconds)."""
    env = {k: v for k, v in os.environ.items() if k != "ICS_ADMIN_TOKEN"}
    with tempfile.TemporaryDirectory(prefix="ics-fault-") as tmp:
        began = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "conformance",
                "certify",
                "--phase",
                phase,
                "--profile",
                profile,
                "-n",
                workers,
                "--output",
                tmp,
                "--no-bundle",
                "--quiet",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
            cwd=tmp,
        )
        seconds = time.perf_counter() - began
        results = sorted(Path(tmp).glob("*/result.json"))
        return proc.returncode, (json.loads(results[-1].read_text()) if results else None), seconds


def by_verdict(result: dict | None, *wanted: str) -> list[str]:
    return sorted(r["id"] for r in (result or {}).get("requirements", []) if r["verdict"] in wanted)


def main(argv: list[str] | None = None) -> int:
    from conformance.reference import FAULTS
    from conformance.reference.faults import proving_phase

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1, help="seed of every fault run (default 1)")
    parser.add_argument("--profile", default="quick", choices=("quick", "certification"))
    parser.add_argument("--workers", default="2", help="certify -n (default 2)")
    parser.add_argument("--clean-seeds", type=int, default=20, help="clean-reference runs on seeds 1..N (default 20)")
    parser.add_argument("--fault", action="append", default=[], help="only these faults (repeatable)")
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown to FILE")
    args = parser.parse_args(argv)

    unknown = [f for f in args.fault if f not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(unknown)}")
    faults = args.fault or sorted(FAULTS)
    lines = [
        "| fault | phase | requirements FAILED | targets, no more | not judged (a sibling failed first / prerequisite) "
        "| exit | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    mismatches = 0
    for fault in faults:
        phase = proving_phase(fault)
        code, result, seconds = certify(
            ["--reference-fault", fault, "--seed", str(args.seed)], args.profile, args.workers, phase
        )
        failed = by_verdict(result, "FAIL")
        errors = by_verdict(result, "ERROR")
        unjudged = by_verdict(result, "NOT_RUN", "SKIPPED")
        targets, collateral = set(FAULTS[fault].targets), set(FAULTS[fault].collateral)
        ok = result is not None and targets <= set(failed) <= targets | collateral and not errors
        mismatches += not ok
        short = ", ".join(r.removeprefix("ICS-") for r in failed) or "none"
        extra = sorted(set(failed) & collateral)
        verdict = (
            ("yes" + (f" (+ collateral {', '.join(r.removeprefix('ICS-') for r in extra)})" if extra else ""))
            if ok
            else (
                "NO (targets " + ", ".join(sorted(targets)) + (f"; errors {', '.join(errors)}" if errors else "") + ")"
            )
        )
        unjudged_text = ", ".join(r.removeprefix("ICS-") for r in unjudged) or "-"
        row = f"| {fault} | {phase} | {short} | {verdict} | {unjudged_text} | {code} | {seconds:.1f} |"
        lines.append(row)
        print(row, flush=True)
    clean = ["", "| clean seed | verdict | exit | seconds |", "|---|---|---|---|"]
    certified = 0
    for seed in range(1, args.clean_seeds + 1):
        code, result, seconds = certify(["--seed", str(seed)], args.profile, args.workers)
        verdict = (result or {}).get("verdict", "no result.json")
        certified += verdict == "CERTIFIED" and code == 0
        row = f"| {seed} | {verdict} | {code} | {seconds:.1f} |"
        clean.append(row)
        print(row, flush=True)
    summary = [
        "",
        f"faults: {len(faults)}, failing exactly their targets: {len(faults) - mismatches}; "
        f"clean reference CERTIFIED on {certified} of {args.clean_seeds} seeds (profile {args.profile}, -n {args.workers})",
    ]
    print(summary[-1])
    if args.markdown:
        args.markdown.write_text("\n".join(lines + clean + summary) + "\n", encoding="utf-8")
    return 0 if mismatches == 0 and certified == args.clean_seeds else 1


if __name__ == "__main__":
    sys.exit(main())
