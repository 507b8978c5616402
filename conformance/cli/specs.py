"""``ics-conformance specs``: list, show, check and hash the requirement catalogue; validate a local profile."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.spec.catalogue import Catalogue, Requirement

_PHASE_CHOICES = ("1A", "1B", "1C")


def _out(*parts: object, end: str = "\n") -> None:
    """print() to stdout that ends quietly when the reader has gone (``specs list | head``)."""
    try:
        sys.stdout.write(" ".join(str(p) for p in parts) + end)
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


def _finish() -> int:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return 0


def register(subparsers: Any) -> None:
    """Add the ``specs`` command group."""
    parser = subparsers.add_parser(
        "specs",
        help="list, show and check the requirement catalogue",
        description="The versioned requirement catalogue (phases 1A, 1B, 1C draft) shipped with the harness.",
    )
    parser.set_defaults(func=lambda _args: _usage(parser))
    sub = parser.add_subparsers(dest="specs_command", metavar="SUBCOMMAND")

    p_list = sub.add_parser(
        "list",
        help="phases with requirement counts per level and area (or the requirements as JSON)",
        description="Without --json: per phase its status and requirement counts per level and area. "
        "With --phase: only the requirements in scope for that phase (cumulative: 1B = 1A + 1B).",
    )
    p_list.add_argument("--phase", choices=_PHASE_CHOICES, help="only requirements in scope for PHASE (cumulative)")
    p_list.add_argument("--json", action="store_true", help="print a JSON array of requirement objects")
    p_list.add_argument("--catalogue", type=Path, metavar="DIR", help="catalogue directory (default: the shipped one)")
    p_list.set_defaults(func=_list)

    p_show = sub.add_parser("show", help="every field of one requirement", description="Show one requirement.")
    p_show.add_argument("id", metavar="ID", help="requirement ID, e.g. ICS-1B-SRCH-001")
    p_show.add_argument("--json", action="store_true", help="print the requirement as a JSON object")
    p_show.add_argument("--catalogue", type=Path, metavar="DIR", help="catalogue directory (default: the shipped one)")
    p_show.set_defaults(func=_show)

    p_check = sub.add_parser(
        "check",
        help="validate a catalogue directory",
        description="Validate the phase files of a catalogue directory (default: the shipped catalogue) against "
        "the catalogue schema and the cross-file rules. Exit 0 when valid, 2 listing every problem.",
    )
    p_check.add_argument("directory", nargs="?", type=Path, metavar="DIR", help="catalogue (or specs) directory")
    p_check.set_defaults(func=_check)

    p_profile = sub.add_parser(
        "profile",
        help="validate a council local profile and list its deviations from the national catalogue",
        description="Validate a council local profile (specs/schemas/local-profile.schema.json) without running "
        "anything: exit 0 printing its council, sha256 and every deviation from the national catalogue, 2 naming "
        "each problem (file, path, what is wrong).",
    )
    p_profile.add_argument("file", type=Path, metavar="FILE", help="the local profile (YAML or JSON)")
    p_profile.set_defaults(func=_profile)

    p_hash = sub.add_parser(
        "hash", help="spec version and sha256 of the spec data", description="Print the spec version and digest."
    )
    p_hash.add_argument("--json", action="store_true", help="print {version, sha256} as JSON")
    p_hash.set_defaults(func=_hash)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _catalogue(directory: Path | None) -> Catalogue:
    from conformance.spec.catalogue import load_catalogue

    return load_catalogue(directory)


def _list(args: argparse.Namespace) -> int:
    catalogue = _catalogue(args.catalogue)
    requirements = catalogue.in_scope(args.phase) if args.phase else catalogue.requirements
    if args.json:
        _out(json.dumps([r.to_dict() for r in requirements], indent=2, ensure_ascii=False))
        return _finish()
    _print_summary(catalogue, requirements, args.phase)
    return _finish()


def _print_summary(catalogue: Catalogue, requirements: tuple[Requirement, ...], phase: str | None) -> None:
    from collections import Counter

    from conformance.spec.catalogue import LEVELS, PHASES

    scope = f" (in scope for {phase}, cumulative)" if phase else ""
    _out(f"ICS requirement catalogue, spec version {catalogue.spec_version}{scope}")
    _out()
    areas = sorted({r.area for r in requirements})
    header = ["phase", "status", *LEVELS, "total"]
    rows = []
    for p in PHASES:
        reqs = [r for r in requirements if r.phase == p]
        if phase and not reqs:
            continue
        info = catalogue.phases.get(p)
        levels = Counter(r.level for r in reqs)
        rows.append([p, info.status if info else "-", *(str(levels[lv]) for lv in LEVELS), str(len(reqs))])
    total_levels = Counter(r.level for r in requirements)
    rows.append(["total", "", *(str(total_levels[lv]) for lv in LEVELS), str(len(requirements))])
    _table(header, rows)
    _out()
    header = ["area", *(p for p in PHASES if any(r.phase == p for r in requirements)), "total"]
    shown_phases = header[1:-1]
    rows = []
    for area in areas:
        counts = Counter(r.phase for r in requirements if r.area == area)
        rows.append([area, *(str(counts[p]) for p in shown_phases), str(sum(counts.values()))])
    per_phase = Counter(r.phase for r in requirements)
    rows.append(["total", *(str(per_phase[p]) for p in shown_phases), str(len(requirements))])
    _table(header, rows)
    for p in PHASES:
        info = catalogue.phases.get(p)
        if info is not None and (not phase or any(r.phase == p for r in requirements)):
            _out(f"\n{p} ({info.status}): {info.title}", end="")
    _out()


def _table(header: list[str], rows: list[list[str]]) -> None:
    """Plain fixed-width table: clean when piped, readable on a terminal."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [
                first.ljust(widths[0]),
                *(c.rjust(w) if c.isdigit() or not c else c.ljust(w) for c, w in zip(rest, widths[1:])),
            ]
        ).rstrip()

    _out(line(header))
    _out("  ".join("-" * w for w in widths))
    for row in rows:
        _out(line(row))


def _show(args: argparse.Namespace) -> int:
    catalogue = _catalogue(args.catalogue)
    wanted = args.id.strip()
    if wanted not in catalogue and wanted.upper() in catalogue:
        wanted = wanted.upper()
    if wanted not in catalogue:
        close = catalogue.suggest(wanted)
        hint = f"; did you mean: {', '.join(close)}?" if close else " (see 'ics-conformance specs list --json')"
        print(f"ics-conformance: error: unknown requirement {args.id!r}{hint}", file=sys.stderr)
        return 2
    req = catalogue.get(wanted)
    cases = _cases(req.id, args.catalogue)
    if args.json:
        _out(json.dumps({**req.to_dict(), "cases": [c.to_dict() for c in cases]}, indent=2, ensure_ascii=False))
        return _finish()
    import textwrap

    info = catalogue.phases.get(req.phase)
    status = f" ({info.status})" if info else ""
    _out(f"{req.id}  {req.title}")
    _out()
    fields = [
        ("level", req.level),
        ("phase", f"{req.phase}{status}" + (f", retired in {req.retired}" if req.retired else "")),
        ("area", f"{req.area} ({req.area_code})"),
        ("channel", req.channel),
        ("capability", req.capability or "- (always applies)"),
    ]
    for name, value in fields:
        _out(f"{name + ':':<12}{value}")
    for name, text in (("statement", req.statement), ("rationale", req.rationale), ("source", req.source)):
        _out(f"\n{name}:")
        _out(textwrap.fill(text, width=88, initial_indent="  ", subsequent_indent="  "))
    if cases:
        free = sum(1 for c in cases if c.free)
        _out(
            f"\ncases ({len(cases)}"
            + (f", {free} free: the supplier's choice, judged by no check" if free else "")
            + "):"
        )
        for case in cases:
            _out(
                textwrap.fill(
                    f"{case.id}{' (free)' if case.free else ''}: {case.description}",
                    width=88,
                    initial_indent="  - ",
                    subsequent_indent="    ",
                )
            )
            for label, names in (("checks", case.covered_by), ("faults", case.faults)):
                if names:
                    _out(
                        textwrap.fill(
                            ", ".join(names), width=88, initial_indent=f"    {label}: ", subsequent_indent="      "
                        )
                    )
    return _finish()


def _cases(requirement_id: str, catalogue_dir: Path | None) -> tuple[Any, ...]:
    """The requirement's test-design cases: from the specs directory of ``--catalogue`` when it
    has a ``test-design/`` beside the catalogue, else the shipped ones; none when unreadable."""
    from conformance.errors import SpecError
    from conformance.spec.testdesign import load_test_design

    directory = None
    if catalogue_dir is not None:
        for candidate in (catalogue_dir / "test-design", catalogue_dir.parent / "test-design"):
            if candidate.is_dir():
                directory = candidate
                break
    try:
        return load_test_design(directory).cases(requirement_id)
    except SpecError as exc:
        print(f"ics-conformance: warning: test design not shown: {exc}", file=sys.stderr)
        return ()


def _check(args: argparse.Namespace) -> int:
    from conformance.errors import SpecError
    from conformance.spec.catalogue import load_catalogue

    directory = args.directory
    try:
        catalogue = load_catalogue(directory)
    except SpecError as exc:
        print(f"ics-conformance: error: {exc}", file=sys.stderr)
        return 2
    where = str(catalogue.directory) if directory is not None else "shipped catalogue"
    counts = ", ".join(f"{p} {len([r for r in catalogue if r.phase == p])}" for p in catalogue.phases)
    _out(f"OK: {where}: spec {catalogue.spec_version}, {len(catalogue)} requirements ({counts})")
    return _finish()


def _profile(args: argparse.Namespace) -> int:
    from conformance.profiles import load_profile
    from conformance.profiles.verdict import deviations
    from conformance.results.text import printable

    profile = load_profile(args.file)  # UsageError (exit 2) naming file, path and problem
    code = f" ({profile.code})" if profile.code else ""
    _out(
        f"OK: local profile {printable(profile.source)} of {printable(profile.council)}{code}, sha256 {profile.sha256}"
    )
    _out(
        f"{len(profile.requirements)} local requirement(s), {len(profile.not_needed)} national requirement(s) not "
        f"needed, {len(profile.capabilities)} capability setting(s); deviations from the national catalogue:"
    )
    for deviation in deviations(profile):
        _out(f"  - {printable(str(deviation['text']))}")
    return _finish()


def _hash(args: argparse.Namespace) -> int:
    from conformance.spec.catalogue import load_catalogue, spec_digest

    version = load_catalogue().spec_version
    digest = spec_digest()
    if args.json:
        _out(json.dumps({"version": version, "sha256": digest}))
    else:
        _out(f"spec version {version}")
        _out(f"sha256 {digest}")
    return _finish()
