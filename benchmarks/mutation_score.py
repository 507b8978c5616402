"""Mutation score of the conformance checks (not a test): mutate the reference's rule code, run certify per mutant.

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python benchmarks/mutation_score.py [--sample N] [--sample-seed 1] [--area NAME ...]
                                                  [--timeout 120] [--workdir DIR] [--resume] [--report]
                                                  [--list] [--survivors FILE]

The tool is cosmic-ray (https://cosmic-ray.readthedocs.io): ``cosmic-ray init`` enumerates
the mutants of the files listed in :data:`SCOPE`, this script marks the ones it does not
want as skipped in cosmic-ray's session database (out of scope, inside fault-injection
code, not drawn into the sample), and ``cosmic-ray exec`` applies each remaining mutant to
a copy of the source and runs ``run-mutant`` (below) as its test command.

Where the mutated code runs. The domain modules (``conformance/domain``) are shared by the
reference service and the checks (the oracle): a mutant there, loaded by both, would move
the oracle with the system under test. So the mutated copy is loaded by the reference
process alone: each mutant starts ``ics-conformance serve-reference`` with
``PYTHONPATH=<mutated copy>`` and runs ``ics-conformance certify --target <that URL>
--phase 1B --profile quick --seed 1`` with ``PYTHONPATH=<this checkout>`` (unmutated).
The same is done for every file, so no mutant ever reaches the harness side. The UPN and
NHS number algorithms are python-stdnum's (``conformance/domain/identifiers.py`` delegates to
it), so a copy of that package goes into the tree too and its two modules are mutated there.

Outcomes per mutant: certify exit 0 -> survived; 1 -> killed (the FAILed requirements are
recorded); anything else (3 INCONCLUSIVE, 2, 4, a reference that does not start, the
per-mutant timeout) -> error. Survivors are matched against
``benchmarks/mutation-classification.yaml``: equivalent (with the reason), a gap in the
checks (the requirement and the missed case) or unspecified (behaviour the catalogue leaves
open). The score is killed / (killed + survivors that are not equivalent); errors are
reported, not counted.

Everything the tool writes goes under ``--workdir`` (default ``benchmarks/out/mutation``,
ignored by git): the source copy it mutates (``tree/``, recreated on every start), the
cosmic-ray configuration and session, a progress log and one certify output directory per
mutant while it runs. The checkout itself is only read.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLASSIFICATION = ROOT / "benchmarks" / "mutation-classification.yaml"
RESULT_MARK = "MUTATION-RESULT "
AREAS = ("search", "notifications", "gating", "timescales", "identifiers", "access", "export", "records", "allocations")

#: file -> {top-level function or Class.method (or "<module>"): area}. What is not listed is
#: not mutated: plumbing (bodies, paging, JSON), and helpers that exist only to carry an
#: injected fault (rules.clean_name_search, _faulty_normalise, _holidays_2007_shifted,
#: wrong_check_letter, _letter_fits, _holidays_bent; export._perturb, _uk_date; ChildRoutes._gender_skip,
#: ChildRoutes._view_unaudited; Service._rights_bent), and domain
#: functions the reference never calls (names.name_matches: the oracle's; identifiers.
#: upn_check_letter, nhs_check_digit: the checks' generators): the mutated copy is loaded by
#: the reference alone, so their mutants could only survive.
SCOPE: dict[str, dict[str, str]] = {
    "conformance/reference/rules.py": {
        "valid_name": "records",
        "canonical_postcode": "records",
        "stored_name_keys": "search",
        "postcode_key": "search",
        "search_identifier": "search",
        "like_prefix": "search",
        "name_matcher": "search",
        "check_upn": "identifiers",
        "check_nhs_number": "identifiers",
        "due_date": "timescales",
    },
    "conformance/reference/service.py": {
        "Service._authenticate": "access",
        "Service._require": "access",
        "Service._endpoint": "access",
        "Service._allocated": "access",
        "Service._audit": "access",
    },
    "conformance/reference/export.py": {
        "_records": "export",
        "write_export": "export",
    },
    "conformance/reference/resources/children.py": {
        "ChildRoutes._child_out": "records",
        "ChildRoutes._check_child": "records",
        "ChildRoutes._child_body": "records",
        "ChildRoutes.create_child": "records",
        "ChildRoutes.update_child": "records",
        "ChildRoutes.get_child": "access",
        "ChildRoutes.search_children": "search",
        "ChildRoutes._filters": "search",
        "ChildRoutes._search_rows": "search",
        "ChildRoutes._prefilter_names": "search",
        "ChildRoutes._match_names": "search",
    },
    "conformance/reference/resources/aliases.py": {
        "AliasRoutes._alias_out": "records",
        "AliasRoutes.add_alias": "records",
        "AliasRoutes.list_aliases": "records",
    },
    "conformance/reference/resources/referrals.py": {
        "ReferralRoutes._referral_out": "records",
        "ReferralRoutes.create_referral": "records",
        "ReferralRoutes.get_referral": "records",
        "ReferralRoutes.list_referrals": "records",
    },
    "conformance/reference/resources/allocations.py": {
        "AllocationRoutes._allocation_out": "allocations",
        "AllocationRoutes.allocate": "allocations",
        "AllocationRoutes.list_allocations": "allocations",
        "AllocationRoutes.end_allocation": "allocations",
    },
    "conformance/reference/resources/notes.py": {
        "NoteRoutes._note_out": "access",
        "NoteRoutes.add_case_note": "records",
        "NoteRoutes.list_case_notes": "records",
        "NoteRoutes._recipients": "notifications",
        "NoteRoutes._notify": "notifications",
        "NoteRoutes._notification_out": "notifications",
        "NoteRoutes.list_notifications": "notifications",
        "NoteRoutes.acknowledge": "notifications",
    },
    "conformance/reference/resources/assessments.py": {
        "AssessmentRoutes._visit_out": "gating",
        "AssessmentRoutes._assessment_row": "gating",
        "AssessmentRoutes.start_assessment": "gating",
        "AssessmentRoutes.list_assessments": "gating",
        "AssessmentRoutes.get_assessment": "gating",
        "AssessmentRoutes.record_visit": "gating",
        "AssessmentRoutes._horizon": "gating",
        "AssessmentRoutes._earliest_visit": "gating",
        "AssessmentRoutes._child_seen": "gating",
        "AssessmentRoutes.complete_assessment": "gating",
        "AssessmentRoutes._assessment_out": "timescales",
    },
    "conformance/reference/resources/audit.py": {
        "AuditRoutes.list_audit": "access",
        "AuditRoutes.export": "export",
    },
    "conformance/domain/names.py": {
        "normalise": "search",
        "name_keys": "search",
        "normalise_postcode": "search",
    },
    "conformance/domain/identifiers.py": {
        "compact_upn": "identifiers",
        "is_valid_upn": "identifiers",
        "compact_nhs_number": "identifiers",
        "is_valid_nhs_number": "identifiers",
    },
    # The check-digit algorithms themselves are python-stdnum's (identifiers.py only delegates):
    # the package is copied into the mutated tree, so only the reference loads the mutant.
    # Module-level data (the table of LA numbers) and stdnum's formatting are not mutated.
    "stdnum/gb/upn.py": {
        "compact": "identifiers",
        "calc_check_digit": "identifiers",
        "validate": "identifiers",
        "is_valid": "identifiers",
    },
    "stdnum/gb/nhs.py": {
        "compact": "identifiers",
        "checksum": "identifiers",
        "validate": "identifiers",
        "is_valid": "identifiers",
    },
    "conformance/domain/workingdays.py": {
        "<module>": "timescales",
        "_bank_holidays": "timescales",
        "is_bank_holiday": "timescales",
        "is_working_day": "timescales",
        "add_working_days": "timescales",
        "due_date": "timescales",
    },
}

Pos = tuple[int, int]  # (1-based line, 0-based character column), as cosmic-ray (parso) reports them
Span = tuple[Pos, Pos]


# --------------------------------------------------------------------------- scoping


def definitions(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, first line, last line) of each top-level function and method."""
    found = []
    for node in ast.parse(source).body:
        members = node.body if isinstance(node, ast.ClassDef) else [node]
        prefix = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
        for member in members:
            if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([member.lineno, *(d.lineno for d in member.decorator_list)])
                found.append((prefix + member.name, first, member.end_lineno or member.lineno))
    return found


def qualname_at(defs: list[tuple[str, int, int]], line: int) -> str:
    for name, first, last in defs:
        if first <= line <= last:
            return name
    return "<module>"


def fault_spans(source: str) -> list[Span]:
    """Source spans that are fault-injection code, not rule code.

    A fault predicate is ``self.has("name")``, ``"name" in faults`` / ``in self.faults`` (or
    ``not in``), or a local name assigned from an expression that is true (or false) only
    when a fault is active. Fault code is: each predicate (with a ``not`` around it); the
    test and body of an ``if`` (or a conditional expression) whose test is true only under
    a fault, and the ``else`` of one whose test is false only under a fault; an assignment
    of such an expression; in an ``and``, the operands from one true only under a fault on.
    A mutant lying wholly inside one of these spans changes only what an injected fault does
    (or switches a fault on), so it is not a mutant of the rules.
    """
    lines = source.split("\n")

    def pos(line: int, byte_col: int) -> Pos:
        return line, len(lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8"))

    def start(node: ast.AST) -> Pos:
        return pos(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(node: ast.AST) -> Pos:
        return pos(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]

    spans: list[Span] = []

    def scan_function(func: ast.AST) -> None:
        fault_names: set[str] = set()  # bound to an expression true only under a fault
        clean_names: set[str] = set()  # bound to one false only under a fault (``"x" not in faults``)

        def membership(e: ast.AST, op: type) -> bool:  # "name" in / not in faults (or self.faults)
            if isinstance(e, ast.Compare) and len(e.ops) == 1 and isinstance(e.ops[0], op):
                right = e.comparators[0]
                named = (isinstance(right, ast.Name) and right.id == "faults") or (
                    isinstance(right, ast.Attribute) and right.attr == "faults"
                )
                return named and isinstance(e.left, ast.Constant) and isinstance(e.left.value, str)
            return False

        def is_predicate(e: ast.AST) -> bool:
            if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr == "has":
                return isinstance(e.func.value, ast.Name) and e.func.value.id == "self"
            if membership(e, ast.In) or membership(e, ast.NotIn):
                return True
            return isinstance(e, ast.Name) and e.id in fault_names | clean_names

        def only_under_fault(e: ast.AST) -> bool:  # true => some fault is active
            if membership(e, ast.In) or (isinstance(e, ast.Name) and e.id in fault_names):
                return True
            if isinstance(e, ast.Call) and is_predicate(e):
                return True
            if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
                return false_only_under_fault(e.operand)
            if isinstance(e, ast.BoolOp):
                test = any if isinstance(e.op, ast.And) else all
                return test(only_under_fault(v) for v in e.values)
            return False

        def false_only_under_fault(e: ast.AST) -> bool:  # false => some fault is active
            if membership(e, ast.NotIn) or (isinstance(e, ast.Name) and e.id in clean_names):
                return True
            if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
                return only_under_fault(e.operand)
            if isinstance(e, ast.BoolOp):
                test = all if isinstance(e.op, ast.And) else any
                return test(false_only_under_fault(v) for v in e.values)
            return False

        def visit(node: ast.AST) -> None:
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and is_predicate(node.operand):
                spans.append((start(node), end(node)))
                return
            if is_predicate(node):
                spans.append((start(node), end(node)))
                return
            if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
                # ``a and <fault> and b``: from the fault operand on, evaluated only under the fault
                first = next((i for i, v in enumerate(node.values) if only_under_fault(v)), None)
                if first is not None:
                    spans.append((start(node.values[first]), end(node.values[-1])))
                    for child in node.values[:first]:
                        visit(child)
                    return
            if isinstance(node, ast.If):
                if only_under_fault(node.test):
                    spans.append((start(node.test), end(node.body[-1])))
                    for child in node.orelse:
                        visit(child)
                    return
                if node.orelse and false_only_under_fault(node.test):
                    spans.append((start(node.orelse[0]), end(node.orelse[-1])))
                    visit(node.test)
                    for child in node.body:
                        visit(child)
                    return
            if isinstance(node, ast.IfExp):
                if only_under_fault(node.test):
                    spans.append((start(node.body), end(node.test)))
                    visit(node.orelse)
                    return
                if false_only_under_fault(node.test):
                    spans.append((start(node.test), end(node.orelse)))
                    visit(node.body)
                    return
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and only_under_fault(node.value)
            ):
                fault_names.add(node.targets[0].id)
                spans.append((start(node), end(node)))
                return
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and false_only_under_fault(node.value)
            ):
                clean_names.add(node.targets[0].id)
                spans.append((start(node), end(node)))
                return
            for child in ast.iter_child_nodes(node):
                visit(child)

        visit(func)

    for node in ast.parse(source).body:
        scan_function(node)
    return spans


def annotation_spans(source: str) -> list[Span]:
    """Spans of type annotations: never evaluated (every scoped module has ``from __future__ import annotations``)."""
    lines = source.split("\n")

    def pos(line: int, byte_col: int) -> Pos:
        return line, len(lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8"))

    found: list[ast.AST] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.arg) and node.annotation is not None:
            found.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return [
        (pos(n.lineno, n.col_offset), pos(n.end_lineno, n.end_col_offset))  # type: ignore[attr-defined,arg-type]
        for n in found
    ]


def inside(span: Span, spans: list[Span]) -> bool:
    return any(s[0] <= span[0] and span[1] <= s[1] for s in spans)


@dataclass
class Mutant:
    job_id: str
    path: str
    line: int
    span: Span
    operator: str
    occurrence: int
    qualname: str
    area: str | None  # None: out of scope
    fault_code: bool
    annotation: bool
    result: dict[str, Any] | None = None
    diff: str = ""
    verdict: str = ""  # killed | survived | error | pending | skipped
    classification: dict[str, Any] | None = field(default=None)

    @property
    def sort_key(self) -> tuple[Any, ...]:
        return (self.path, self.span, self.operator, self.occurrence)

    @property
    def eligible(self) -> bool:
        return self.area is not None and not self.fault_code and not self.annotation

    def change(self) -> tuple[str, str]:
        """(original line, mutated line), stripped, from cosmic-ray's diff."""
        old = [ln[1:].strip() for ln in self.diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
        new = [ln[1:].strip() for ln in self.diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
        return " / ".join(old), " / ".join(new)


def load_mutants(session: Path) -> list[Mutant]:
    from cosmic_ray.work_db import WorkDB, use_db

    sources: dict[str, tuple[list[tuple[str, int, int]], list[Span], list[Span]]] = {}
    for path in SCOPE:
        text = source_of(path).read_text(encoding="utf-8")  # == the tree's original (source.sha256)
        sources[path] = (definitions(text), fault_spans(text), annotation_spans(text))
    results = {}
    mutants = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for job_id, result in db.results:
            results[job_id] = result
        for item in db.work_items:
            (spec,) = item.mutations
            path = Path(spec.module_path).as_posix()
            defs, faults, annotations = sources[path]
            qualname = qualname_at(defs, spec.start_pos[0])
            span = (tuple(spec.start_pos), tuple(spec.end_pos))
            mutant = Mutant(
                job_id=item.job_id,
                path=path,
                line=spec.start_pos[0],
                span=span,  # type: ignore[arg-type]
                operator=spec.operator_name,
                occurrence=spec.occurrence,
                qualname=qualname,
                area=SCOPE[path].get(qualname),
                fault_code=inside(span, faults),  # type: ignore[arg-type]
                annotation=inside(span, annotations),  # type: ignore[arg-type]
            )
            result = results.get(item.job_id)
            if result is None:
                mutant.verdict = "pending"
            elif result.worker_outcome.value == "skipped":
                mutant.verdict = "skipped"
            else:
                mutant.diff = result.diff or ""
                mutant.result = _parse_output(result.output or "")
                if mutant.result is None:
                    detail = (result.output or "").strip().splitlines()[-1:] or ["no output"]
                    mutant.result = {"outcome": "error", "detail": f"cosmic-ray: {detail[0][:200]}"}
                mutant.verdict = mutant.result["outcome"]
            mutants.append(mutant)
    mutants.sort(key=lambda m: m.sort_key)
    return mutants


def _parse_output(output: str) -> dict[str, Any] | None:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    if output.strip() == "timeout":  # cosmic-ray's own (backstop) timeout
        return {"outcome": "error", "detail": "timeout (cosmic-ray)"}
    return None


def choose(mutants: list[Mutant], areas: list[str] | None, sample: int | None, seed: int) -> list[Mutant]:
    """The eligible mutants of ``areas``; with ``sample``, a stratified random sample (fixed seed).

    Each area gets at least ``sample // (2 * number of areas)`` (or all it has), the rest is
    shared in proportion to what the areas have left (largest remainder).
    """
    pool: dict[str, list[Mutant]] = defaultdict(list)
    for m in mutants:
        if m.eligible and (not areas or m.area in areas):
            pool[m.area].append(m)  # type: ignore[index]
    if sample is None or sample >= sum(len(v) for v in pool.values()):
        return [m for group in pool.values() for m in group]
    rng = random.Random(seed)
    names = sorted(pool)
    floor = sample // (2 * len(names))
    take = {a: min(len(pool[a]), floor) for a in names}
    left = sample - sum(take.values())
    spare = {a: len(pool[a]) - take[a] for a in names}
    total_spare = sum(spare.values())
    shares = {a: left * spare[a] / total_spare for a in names}
    for a in names:
        take[a] += int(shares[a])
    for a in sorted(names, key=lambda a: shares[a] - int(shares[a]), reverse=True)[: sample - sum(take.values())]:
        take[a] += 1
    chosen = []
    for a in names:
        chosen += rng.sample(pool[a], take[a])
    return chosen


# --------------------------------------------------------------------------- session


def _stdnum_dir() -> Path:
    import stdnum

    return Path(stdnum.__file__).resolve().parent


def source_of(path: str) -> Path:
    """The unmutated file behind a scoped path (this checkout, or the installed python-stdnum)."""
    if path.startswith("stdnum/"):
        return _stdnum_dir().parent / path
    return ROOT / path


def _digest() -> str:
    h = hashlib.sha256()
    for path in sorted(SCOPE):
        h.update(path.encode() + b"\0" + source_of(path).read_bytes())
    return h.hexdigest()


def fresh_tree(workdir: Path) -> Path:
    """A new copy of ``conformance/`` and ``specs/`` to mutate (any earlier copy is discarded)."""
    tree = workdir / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "conformance", tree / "conformance", ignore=ignore)
    shutil.copytree(ROOT / "specs", tree / "specs", ignore=ignore)
    shutil.copytree(_stdnum_dir(), tree / "stdnum", ignore=ignore)
    return tree


def _cosmic_ray() -> str:
    exe = Path(sys.executable).with_name("cosmic-ray")
    found = str(exe) if exe.exists() else shutil.which("cosmic-ray")
    if not found:
        sys.exit("cosmic-ray is not installed: pip install -e '.[mutation]'")
    return found


def write_config(workdir: Path, timeout: float) -> Path:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "run-mutant",
        "--tree",
        str((workdir / "tree").resolve()),
        "--timeout",
        str(timeout),
        "--log",
        str((workdir / "progress.log").resolve()),
    ]
    config = workdir / "cosmic-ray.toml"
    lines = [
        "[cosmic-ray]",
        f"module-path = {json.dumps(sorted(SCOPE))}",
        f"timeout = {timeout + 60:.1f}",  # a backstop: run-mutant enforces --timeout itself
        "excluded-modules = []",
        f"test-command = {json.dumps(shlex.join(command))}",
        "",
        "[cosmic-ray.distributor]",
        'name = "local"',
        "",
    ]
    config.write_text("\n".join(lines), encoding="utf-8")
    return config


def init_session(workdir: Path, timeout: float) -> tuple[Path, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    tree = fresh_tree(workdir)
    config = write_config(workdir, timeout)
    session = workdir / "session.sqlite"
    session.unlink(missing_ok=True)
    subprocess.run([_cosmic_ray(), "init", str(config.resolve()), str(session.resolve())], cwd=tree, check=True)
    (workdir / "source.sha256").write_text(_digest() + "\n", encoding="utf-8")
    return tree, session


def skip_all_but(session: Path, mutants: list[Mutant], chosen: list[Mutant]) -> None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    keep = {m.job_id for m in chosen}
    skip = [m.job_id for m in mutants if m.job_id not in keep and m.verdict == "pending"]
    with use_db(str(session), WorkDB.Mode.open) as db:
        db.set_multiple_results(skip, WorkResult(output="not chosen", worker_outcome=WorkerOutcome.SKIPPED))


def forget_results(session: Path, job_ids: list[str]) -> None:
    """Make these work items pending again (cosmic-ray runs items that have no result)."""
    from cosmic_ray.work_db import WorkDB, WorkResultStorage, use_db

    with use_db(str(session), WorkDB.Mode.open) as db, db._session_maker.begin() as orm:
        orm.query(WorkResultStorage).filter(WorkResultStorage.job_id.in_(job_ids)).delete()


# --------------------------------------------------------------------------- one mutant


def _start_reference(tree: Path, token: str, log: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "ICS_ADMIN_TOKEN": token, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "serve-reference", "--host", "127.0.0.1", "--port", "0"],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "ICS reference service listening on http://..." or EOF when it died
    if "listening on " not in line:
        proc.wait(timeout=10)
        raise RuntimeError("reference did not start: " + " | ".join(log.read_text().strip().splitlines()[-2:]))
    return proc, line.split("listening on ", 1)[1].strip()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_mutant(tree: Path, timeout: float) -> dict[str, Any]:
    """Certify the reference built from ``tree`` with the checks of this checkout; the outcome."""
    token = secrets.token_urlsafe(24)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ics-mutant-") as tmp:
        try:
            server, url = _start_reference(tree, token, Path(tmp) / "reference.log")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            return {"outcome": "error", "detail": str(exc)[:300], "seconds": round(time.monotonic() - began, 1)}
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ICS_ADMIN_TOKEN": token}
        command = [sys.executable, "-m", "conformance", "certify", "--target", url]
        command += ["--phase", "1B", "--profile", "quick", "--seed", "1", "--output", tmp, "--no-bundle", "--quiet"]
        try:
            proc = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
        finally:
            _stop(server)
        seconds = round(time.monotonic() - began, 1)
        failed: list[str] = []
        errored: list[str] = []
        messages: dict[str, str] = {}
        for result_file in Path(tmp).glob("*/result.json"):
            for req in json.loads(result_file.read_text())["requirements"]:
                if req["verdict"] == "FAIL":
                    failed.append(req["id"])
                elif req["verdict"] == "ERROR":
                    errored.append(req["id"])
                    for check in req["checks"]:
                        if check["verdict"] == "ERROR" and check["id"] not in messages:
                            messages[check["id"]] = " ".join(str(check.get("message") or "").split())[:300]
    out: dict[str, Any] = {"exit": code, "seconds": seconds, "failed": failed, "errored": errored}
    if messages:
        out["error messages"] = messages
    if code == 0:
        out["outcome"] = "survived"
    elif code == 1:
        out["outcome"] = "killed"
    else:
        out["outcome"] = "error"
        out["detail"] = f"timeout after {timeout:.0f} s" if code is None else f"certify exit {code}"
    return out


def cmd_run_mutant(args: argparse.Namespace) -> int:
    result = run_mutant(Path(args.tree), args.timeout)
    print(RESULT_MARK + json.dumps(result), flush=True)
    if args.log:
        with open(args.log, "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {json.dumps(result)}\n")
    return {"survived": 0, "killed": 1}.get(result["outcome"], 3)


# --------------------------------------------------------------------------- report


def load_classification() -> list[dict[str, Any]]:
    import yaml

    if not CLASSIFICATION.exists():
        return []
    data = yaml.safe_load(CLASSIFICATION.read_text(encoding="utf-8")) or {}
    entries = []
    for kind in ("equivalent", "gap", "unspecified"):
        for entry in data.get(kind) or []:
            entries.append({**entry, "kind": kind})
    return entries


def load_notes() -> list[str]:
    import yaml

    if not CLASSIFICATION.exists():
        return []
    return list((yaml.safe_load(CLASSIFICATION.read_text(encoding="utf-8")) or {}).get("notes") or [])


def classify(mutants: list[Mutant], entries: list[dict[str, Any]]) -> None:
    """Match survivors to entries by file, operator and changed line; an entry with ``previous``
    (the stripped line above the mutated one) matches only there (one of several identical lines)."""
    index: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        index[(e["file"], e["operator"], e["old"], e["new"])].append(e)
    lines: dict[str, list[str]] = {}
    for m in mutants:
        if m.verdict not in ("killed", "survived"):
            continue
        candidates = index.get((m.path, m.operator, *m.change()), [])
        if m.path not in lines:
            lines[m.path] = source_of(m.path).read_text(encoding="utf-8").split("\n")
        above = lines[m.path][m.line - 2].strip() if m.line >= 2 else ""
        exact = [e for e in candidates if e.get("previous") == above]
        m.classification = (exact or [e for e in candidates if "previous" not in e] or [None])[0]


def report(mutants: list[Mutant], out: Any = sys.stdout) -> dict[str, dict[str, int]]:
    ran = [m for m in mutants if m.verdict in ("killed", "survived", "error") and m.area is not None]
    dropped = sum(1 for m in mutants if m.verdict in ("killed", "survived", "error") and m.area is None)
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for m in ran:
        row = table[m.area or "?"]
        row["mutants"] += 1
        if m.verdict == "survived" and m.classification and m.classification["kind"] == "equivalent":
            row["equivalent"] += 1
        else:
            row[m.verdict] += 1
    total: Counter[str] = Counter()
    for row in table.values():
        total.update(row)
    pending = sum(1 for m in mutants if m.verdict == "pending")
    print(f"{'area':<14}{'mutants':>8}{'killed':>8}{'survived':>9}{'equiv':>7}{'errors':>8}{'score':>8}", file=out)
    for area in [*sorted(table), "total"]:
        row = total if area == "total" else table[area]
        judged = row["killed"] + row["survived"]
        score = f"{100 * row['killed'] / judged:.0f}%" if judged else "-"
        print(
            f"{area:<14}{row['mutants']:>8}{row['killed']:>8}{row['survived']:>9}{row['equivalent']:>7}"
            f"{row['error']:>8}{score:>8}",
            file=out,
        )
    kinds = Counter(
        m.classification["kind"] if m.classification else "unclassified" for m in ran if m.verdict == "survived"
    )
    if kinds:
        print("survivors by classification: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())), file=out)
    if pending:
        print(f"({pending} chosen mutants not run yet)", file=out)
    if dropped:
        print(f"({dropped} judged mutants left out: their code is no longer in SCOPE)", file=out)
    survivors = [m for m in ran if m.verdict == "survived"]
    if survivors:
        print("\nsurvivors:", file=out)
    for m in survivors:
        old, new = m.change()
        kind = m.classification["kind"] if m.classification else "UNCLASSIFIED"
        print(f"  [{m.area}] {m.path}:{m.line} ({m.qualname}) {m.operator} [{kind}]", file=out)
        print(f"      - {old}\n      + {new}", file=out)
    errors = [m for m in ran if m.verdict == "error"]
    if errors:
        print("\nerrors:", file=out)
    for m in errors:
        r = m.result or {}
        old, new = m.change()
        caught = f"; {len(r['failed'])} requirements FAILed before it" if r.get("failed") else ""
        print(f"  [{m.area}] {m.path}:{m.line} {m.operator}: {r.get('detail')}{caught}", file=out)
        print(f"      - {old}\n      + {new}", file=out)
    return {a: dict(r) for a, r in table.items()}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def survivors_markdown(mutants: list[Mutant], run: dict[str, Any]) -> str:
    """The survivors (and errors) as a markdown page, for the test-design work."""
    buffer = io.StringIO()
    report(mutants, buffer)
    table = buffer.getvalue().split("\n\nsurvivors:")[0].split("\n\nerrors:")[0]
    out = [
        "# Mutation score: surviving mutants",
        "",
        "Written by `benchmarks/mutation_score.py --survivors` from the session and",
        "`benchmarks/mutation-classification.yaml` (edit that file, not this one). Each mutant is one",
        "change to the reference service's rule code; `certify --phase 1B --profile quick --seed 1`",
        "ran against a reference built from the mutated copy, with the checks unmutated.",
        "",
        *(f"- {k}: {v}" for k, v in run.items()),
        "",
        "```",
        table.rstrip(),
        "```",
        "",
        "score = killed / (killed + survived); `survived` leaves out the equivalent mutants; errors",
        "(certify exit 3: a check ERRORed or the target failed pre-flight) are not counted.",
        "",
    ]
    notes = load_notes()
    if notes:
        out += ["## Notes", "", *(f"- {' '.join(n.split())}" for n in notes), ""]
    for kind, title in (
        ("gap", "Gaps: requirements the checks do not hold the mutant to"),
        ("unspecified", "Unspecified: behaviour the catalogue leaves open"),
        (None, "Not yet classified"),
        ("equivalent", "Equivalent mutants"),
    ):
        rows = [
            m
            for m in mutants
            if m.verdict == "survived" and m.area is not None and (m.classification or {}).get("kind") == kind
        ]
        if not rows:
            continue
        out += [f"## {title}", ""]
        if kind == "equivalent":
            out += ["| area | where | mutation | why it is equivalent |", "|---|---|---|---|"]
        else:
            out += ["| area | where | mutation | requirement | case missed | check that would kill it |"]
            out += ["|---|---|---|---|---|---|"]
        for m in rows:
            old, new = m.change()
            c = m.classification or {}
            where = f"`{m.path}:{m.line}` ({m.qualname})"
            change = f"{m.operator.removeprefix('core/')}: `{_cell(old)}` → `{_cell(new)}`"
            if kind == "equivalent":
                out.append(f"| {m.area} | {where} | {change} | {_cell(c.get('reason', ''))} |")
            else:
                out.append(
                    f"| {m.area} | {where} | {change} | {_cell(c.get('requirement', ''))} "
                    f"| {_cell(c.get('case', ''))} | {_cell(c.get('fix', ''))} |"
                )
        out.append("")
    errors = [m for m in mutants if m.verdict == "error" and m.area is not None]
    if errors:
        out += ["## Errors (not counted)", "", "| area | where | mutation | outcome |", "|---|---|---|---|"]
        for m in errors:
            old, new = m.change()
            r = m.result or {}
            said = r.get("detail", "")
            if r.get("failed"):
                said += f"; FAIL {', '.join(r['failed'])}"
            if r.get("errored"):
                said += f"; ERROR {', '.join(r['errored'])}"
            change = f"{m.operator.removeprefix('core/')}: `{_cell(old)}` → `{_cell(new)}`"
            out.append(f"| {m.area} | `{m.path}:{m.line}` | {change} | {_cell(said)} |")
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "mutation")
    parser.add_argument("--area", action="append", choices=AREAS, help="only these areas (repeatable)")
    parser.add_argument("--sample", type=int, metavar="N", help="a stratified random sample of N mutants")
    parser.add_argument("--sample-seed", type=int, default=1, metavar="S", help="seed of the sample (default 1)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per certify run (default 120)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the whole run (default 10)")
    parser.add_argument("--list", action="store_true", help="count the mutants per area and stop")
    parser.add_argument("--no-baseline", action="store_true", help="skip the certify run of the unmutated tree")
    parser.add_argument("--resume", action="store_true", help="go on with the session in --workdir")
    parser.add_argument("--report", action="store_true", help="only report the session in --workdir")
    parser.add_argument("--force", action="store_true", help="start a new session over one that has run")
    parser.add_argument(
        "--retry-errors", action="store_true", help="with --resume: run the mutants that ended in error again"
    )
    parser.add_argument("--survivors", type=Path, metavar="FILE", help="also write the survivors as a markdown table")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every judged mutant as JSON")
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("run-mutant", help="(cosmic-ray's test command) certify the reference built from --tree")
    one.add_argument("--tree", required=True)
    one.add_argument("--timeout", type=float, default=120.0)
    one.add_argument("--log")
    args = parser.parse_args(argv)
    if args.command == "run-mutant":
        return cmd_run_mutant(args)
    if args.nice:
        os.nice(args.nice)
    workdir: Path = args.workdir
    session = workdir / "session.sqlite"
    if args.report or args.resume:
        if not session.exists():
            sys.exit(f"no session in {workdir}")
        recorded = (workdir / "source.sha256").read_text().strip()
        if recorded != _digest():
            sys.exit("the mutated files changed since the session was made: start a new one (no --resume)")
        tree = workdir / "tree" if args.report else fresh_tree(workdir)
        if args.resume:
            write_config(workdir, args.timeout)
            if args.retry_errors:
                retry = [m.job_id for m in load_mutants(session) if m.verdict == "error"]
                forget_results(session, retry)
                print(f"{len(retry)} mutants in error made pending again")
    else:
        if args.list:
            workdir = Path(tempfile.mkdtemp(prefix="ics-mutation-list-"))
        elif (workdir / "progress.log").exists() and not args.force:
            sys.exit(f"{workdir} holds a session that has run: --resume, --report, another --workdir, or --force")
        (workdir / "progress.log").unlink(missing_ok=True)
        tree, session = init_session(workdir, args.timeout)
    mutants = load_mutants(session)
    if not (args.report or args.resume):
        counts: Counter[str] = Counter()
        for m in mutants:
            if m.area is None:
                counts["out of scope"] += 1
            else:
                counts["fault code" if m.fault_code else "annotation" if m.annotation else m.area] += 1
        print(f"{len(mutants)} mutants generated: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        chosen = choose(mutants, args.area, args.sample, args.sample_seed)
        chosen_areas = Counter(str(m.area) for m in chosen)
        print(f"{len(chosen)} chosen: " + ", ".join(f"{k} {v}" for k, v in sorted(chosen_areas.items())))
        if args.list:
            shutil.rmtree(workdir)
            return 0
        skip_all_but(session, mutants, chosen)
    if not args.report:
        if not args.no_baseline:
            baseline = run_mutant(tree, args.timeout)
            print(f"baseline (unmutated tree): {baseline['outcome']} in {baseline['seconds']} s", flush=True)
            if baseline["outcome"] != "survived":
                sys.exit(f"the unmutated reference is not CERTIFIED ({baseline}); nothing to measure")
        config = workdir / "cosmic-ray.toml"
        began = time.monotonic()
        print(
            f"start {time.strftime('%H:%M:%S')}; load average {Path('/proc/loadavg').read_text().strip()}", flush=True
        )
        subprocess.run([_cosmic_ray(), "exec", str(config.resolve()), str(session.resolve())], cwd=tree, check=True)
        wall = time.monotonic() - began
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"wall time {wall:.0f} s; load average {load}")
        run = json.loads((workdir / "run.json").read_text()) if args.resume and (workdir / "run.json").exists() else {}
        run.setdefault("sample", args.sample if args.sample is not None else "all")
        run.setdefault("sample seed", args.sample_seed)
        run["wall seconds"] = round((run.get("wall seconds", 0) if args.resume else 0) + wall)
        run["wall time"] = f"{run['wall seconds']} s" + (" (all sittings)" if args.resume else "")
        run["load average at the end"] = load
        (workdir / "run.json").write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
        mutants = load_mutants(session)
    classify(mutants, load_classification())
    report(mutants)
    if args.survivors:
        run = json.loads((workdir / "run.json").read_text()) if (workdir / "run.json").exists() else {}
        run.pop("wall seconds", None)
        args.survivors.write_text(survivors_markdown(mutants, run), encoding="utf-8")
    if args.json:
        judged = [
            {
                "area": m.area,
                "file": m.path,
                "line": m.line,
                "function": m.qualname,
                "operator": m.operator,
                "change": m.change(),
                "verdict": m.verdict,
                "result": m.result,
                "classification": m.classification,
            }
            for m in mutants
            if m.verdict in ("killed", "survived", "error")
        ]
        args.json.write_text(json.dumps(judged, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
