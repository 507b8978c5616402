"""``ics-conformance validate-export PATH``: judge an export directory or zip (ICS-1A-EXP-*)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TITLES = {
    "ICS-1A-EXP-001": "every record file and the manifest present",
    "ICS-1A-EXP-002": "manifest counts and sha256 match; no missing or extra files",
    "ICS-1A-EXP-003": "every record valid against its schema (formats checked)",
    "ICS-1A-EXP-004": "record IDs and local child IDs unique",
    "ICS-1A-EXP-005": "referential integrity",
    "ICS-1A-EXP-006": "date order; nothing after a date of death",
    "ICS-1A-EXP-007": "UPN and NHS number check digits",
    "ICS-1A-EXP-008": "working-day due dates; no completion without the child seen",
    "ICS-1A-REC-008": "local child IDs unique (records area, judged in the export)",
    "ICS-1C-AUD-002": "audit log listed, valid, unique, referencing exported records",
    "ICS-1C-CHRON-001": "chronology complete (every significant event once) and ordered",
    "ICS-1C-CHRON-003": "chronology events linked to their source records",
    "ICS-1C-XFER-001": "a valid transfer package (one child, its records, the export rules)",
}
KINDS = ("bulk", "transfer")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate-export",
        help="validate a bulk export (directory or .zip of JSON Lines + manifest)",
        description=(
            "Stream every record of the export through its JSON Schema and the cross-record rules "
            "(ICS-1A-EXP-001..008; with --phase 1C also the audit log and the chronology, when the "
            "export holds them), print a per-requirement summary with the first findings as "
            "file:line pointer message, and write result.json. With --kind transfer, PATH is one "
            "child's transfer package, judged against ICS-1C-XFER-001 (phase 1C). Exit 0 conformant, "
            "1 findings against a MUST, 2 usage error, 3 could not be judged (e.g. unreadable archive)."
        ),
    )
    parser.add_argument("path", type=Path, metavar="PATH", help="export directory or .zip")
    parser.add_argument(
        "--phase", choices=("1A", "1B", "1C"), help="phase to judge (default 1B; 1C for --kind transfer)"
    )
    parser.add_argument(
        "--kind",
        default="bulk",
        choices=KINDS,
        help="bulk: a bulk export (default); transfer: one child's transfer package (phase 1C)",
    )
    parser.add_argument(
        "--output", type=Path, default=Path("reports"), metavar="DIR", help="where result.json goes (default reports/)"
    )
    parser.add_argument(
        "--max-examples", type=int, default=20, metavar="N", help="examples kept per requirement (default 20)"
    )
    parser.add_argument(
        "--format",
        metavar="NAME|FILE",
        help="the export is not canonical JSON Lines but a format described by a mapping: a published "
        "format's name (e.g. legacy-csv) or a mapping file (YAML, specs/schemas/export-format.schema.json)",
    )
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="worker processes (default 2)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of text")
    parser.set_defaults(func=_run)


def _printable(value: Any) -> str:
    """Target-supplied text for a terminal: control and bidi characters shown escaped."""
    from conformance.results.text import printable

    return printable(value)


def _write_result(
    report: Any, args: argparse.Namespace, started: datetime, capabilities: dict[str, bool]
) -> Path | None:
    from conformance.results.result import CheckResult, build_result, write_result
    from conformance.results.verdicts import Verdict

    # Export-only run: nothing was created through an API, so reconciliation does not apply.
    reconciliation = CheckResult(
        id="export::ICS-1A-EXP-009",
        requirements=("ICS-1A-EXP-009",),
        kind="export",
        verdict=Verdict.NOT_APPLICABLE,
        message="export-only run: no records were created through an API to reconcile (run with a target)",
    )
    result = build_result(
        phase=args.phase,
        channels=["export"],
        checks=[*report.checks(), reconciliation],
        target={"url": None, "builtin_reference": False, "faults": [], "about": None, "export": report.summary()},
        capabilities=capabilities,
        started_at=started,
        finished_at=datetime.now(UTC),
        command="ics-conformance " + " ".join(sys.argv[1:]) if sys.argv[1:] else "ics-conformance validate-export",
        findings=[f.to_json() for f in report.findings],
        errors=report.errors,
    )
    return write_result(result, args.output)


def _run(args: argparse.Namespace) -> int:
    from conformance.errors import UsageError
    from conformance.export import validate_export
    from conformance.results.verdicts import Verdict

    if args.max_examples < 0:
        raise UsageError("--max-examples must be >= 0")
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    from conformance.cli import check_output_dir

    check_output_dir(args.output)
    if args.kind == "transfer" and args.phase not in (None, "1C"):
        raise UsageError("--kind transfer: transfer packages are phase 1C (use --phase 1C or leave --phase out)")
    args.phase = args.phase or ("1C" if args.kind == "transfer" else "1B")
    if args.format is not None and args.kind == "transfer":
        raise UsageError("--format: transfer packages are canonical JSON Lines only")
    if args.kind == "transfer":
        return _run_transfer(args)
    started = datetime.now(UTC)
    if args.format is not None:
        from conformance.export.mapping import load_format
        from conformance.export.native import validate_native

        fmt = load_format(args.format)
        report = validate_native(args.path, fmt, phase=args.phase, max_examples=args.max_examples, workers=args.workers)
    else:
        report = validate_export(args.path, phase=args.phase, max_examples=args.max_examples, workers=args.workers)
    capabilities: dict[str, bool] = {"bulk_export": True}
    if args.phase == "1C":
        from conformance.export.extensions import declared_capabilities, validate_extensions

        capabilities = declared_capabilities(args.path)
        extensions = validate_extensions(args.path, max_examples=args.max_examples)
        judged = [
            rid
            for rid, capability in (
                ("ICS-1C-AUD-002", "audit"),
                ("ICS-1C-CHRON-001", "chronology_export"),
                ("ICS-1C-CHRON-003", "chronology_export"),
            )
            if capabilities.get(capability)
        ]
        report.sink.merge(_judged_only(extensions.sink, judged))
        report.requirements = (*report.requirements, *judged)
    verdicts = {r: report.verdict(r) for r in report.judged}
    if any(v is Verdict.ERROR for v in verdicts.values()):
        code = 3
    elif any(v is Verdict.FAIL for v in verdicts.values()):
        code = 1
    elif any(v is Verdict.SKIPPED for v in verdicts.values()):
        code = 3  # something could not be judged
    else:
        code = 0
    written: Path | None = None
    write_error = None
    try:
        written = _write_result(report, args, started, capabilities)
    except (ImportError, FileNotFoundError, OSError) as exc:  # catalogue not available, unwritable --output
        write_error = f"result.json not written: {type(exc).__name__}: {exc}"
    if args.json:
        summary = report.summary()
        summary["exit_code"] = code
        summary["result"] = str(written) if written else None
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        rate = report.records / report.seconds if report.seconds else 0.0
        print(
            f"export {_printable(args.path)}: {report.records:,} records in {len(report.files)} files, "
            f"{report.bytes / 1e6:.1f} MB, {report.seconds:.2f} s ({rate:,.0f} records/s)"
        )
        if report.format:
            f = report.format
            print(
                f"format {_printable(f['name'])} {_printable(f['version'])} (mapping {_printable(f['source'])}, "
                f"sha256 {f['sha256'][:16]}…): findings name the native file, line and column"
            )
        for rid in report.judged:
            verdict = verdicts[rid]
            count = report.count(rid)
            extra = f"  {count:,} finding{'s' if count != 1 else ''}" if count else ""
            label = "SKIP" if verdict is Verdict.SKIPPED else verdict.value
            print(f"  {label:<5} {rid}  {TITLES.get(rid, '')}{extra}")
            if verdict is Verdict.ERROR:
                print(f"        {_printable(report.sink.errors.get(rid))}")
            if verdict is Verdict.SKIPPED:
                print(f"        {_printable(report.unjudged.get(rid))}")
            for finding in report.examples(rid):
                pointer = f" {finding.pointer}" if finding.pointer else ""
                print(f"        {_printable(finding.location)}{_printable(pointer)} {_printable(finding.message)}")
        label = {
            0: "CONFORMANT",
            1: "NOT CONFORMANT (findings against MUST requirements)",
            3: "INCONCLUSIVE (could not be judged)",
        }[code]
        print(f"verdict: {label}")
        if written:
            print(f"result:  {written}")
    if write_error:
        print(f"ics-conformance: error: {write_error}", file=sys.stderr)
        return 2  # the run's record is missing: never report success
    return code


def _judged_only(sink: Any, judged: list[str]) -> Any:
    """A copy of ``sink`` keeping only the findings and errors of ``judged`` requirements."""
    from conformance.export.findings import FindingSink

    out = FindingSink(sink.max_examples)
    out.counts = {k: v for k, v in sink.counts.items() if k in judged}
    out.examples = {k: v for k, v in sink.examples.items() if k in judged}
    out.errors = {k: v for k, v in sink.errors.items() if k in judged}
    return out


def _run_transfer(args: argparse.Namespace) -> int:
    """``--kind transfer``: judge one child's transfer package (ICS-1C-XFER-001, and the export rules on it)."""
    from conformance.export.transfer import XFER_VALID, validate_transfer
    from conformance.results.result import CheckResult, build_result, write_result
    from conformance.results.verdicts import Verdict

    started = datetime.now(UTC)
    report = validate_transfer(args.path, max_examples=args.max_examples)
    verdict = report.verdict()
    code = {Verdict.PASS: 0, Verdict.FAIL: 1}.get(verdict, 3)
    chronology = report.extensions is not None and "chronology.jsonl" in report.extensions.present
    reproduce = f"ics-conformance validate-export {args.path} --kind transfer"
    checks = [
        c
        for c in report.checks(reproduce)
        if c.requirements[0] not in ("ICS-1C-CHRON-001", "ICS-1C-CHRON-003") or chronology
    ]
    checks.append(
        CheckResult(
            id="export::ICS-1A-EXP-009",
            requirements=("ICS-1A-EXP-009",),
            kind="export",
            verdict=Verdict.NOT_APPLICABLE,
            message="a transfer package judged alone: no records were created through an API to reconcile",
        )
    )
    summary: dict[str, Any] = {
        "path": str(args.path),
        "kind": "transfer",
        "verdict": verdict.value,
        "count": report.count(),
        "findings": [f.to_json() for f in report.findings()],
        "errors": list(report.errors),
    }
    written: Path | None = None
    write_error = None
    try:
        result = build_result(
            phase="1C",
            channels=["export"],
            checks=checks,
            target={"url": None, "builtin_reference": False, "faults": [], "about": None, "export": summary},
            capabilities={"bulk_export": True, "inter_council_transfer": True, "chronology_export": chronology},
            started_at=started,
            finished_at=datetime.now(UTC),
            command="ics-conformance " + " ".join(sys.argv[1:]) if sys.argv[1:] else "ics-conformance validate-export",
            findings=[f.to_json() for f in report.findings()],
            errors=list(report.errors),
        )
        written = write_result(result, args.output)
    except (ImportError, FileNotFoundError, OSError) as exc:
        write_error = f"result.json not written: {type(exc).__name__}: {exc}"
    if args.json:
        summary["exit_code"] = code
        summary["result"] = str(written) if written else None
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(f"transfer package {_printable(args.path)} (phase 1C, DRAFT)")
        print(
            f"  {verdict.value:<5} {XFER_VALID}  {TITLES[XFER_VALID]}"
            + (f"  {report.count():,} findings" if report.count() else "")
        )
        for finding in report.findings():
            pointer = f" {finding.pointer}" if finding.pointer else ""
            print(f"        {_printable(finding.location)}{_printable(pointer)} {_printable(finding.message)}")
        for error in report.errors:
            print(f"        error: {_printable(error)}")
        label = {0: "VALID TRANSFER PACKAGE", 1: "NOT A VALID TRANSFER PACKAGE"}.get(
            code, "INCONCLUSIVE (could not be judged)"
        )
        print(f"verdict: {label}")
        if written:
            print(f"result:  {written}")
    if write_error:
        print(f"ics-conformance: error: {write_error}", file=sys.stderr)
        return 2  # the run's record is missing: never report success
    return code
