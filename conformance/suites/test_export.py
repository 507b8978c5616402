"""Export-channel checks inside an API or export run (ICS-1A-EXP-001..009).

The export judged is the one given with ``--ics-export PATH``, or else the target's own
bulk export (``GET /export``), taken after this module has created a small, known case
history through the API so that reconciliation (EXP-009) has records to look for.
The export is validated once per session by :func:`conformance.export.validate_export`;
each requirement is then one check whose verdict is that requirement's findings.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance.checking.checks import RequirementFailure, check, describe, not_applicable, prerequisite_missing
from conformance.checking.client import Client
from conformance.checking.world import Practitioner, RunContext, World
from conformance.errors import ConformanceError

EXP_PRESENT = "ICS-1A-EXP-001"
EXP_RECONCILE = "ICS-1A-EXP-009"
REC_LOCAL_ID = "ICS-1A-REC-008"
_JUDGED = tuple(f"ICS-1A-EXP-00{n}" for n in range(1, 9))

pytestmark = pytest.mark.xdist_group("ics-export")


@dataclass
class ExportRun:
    """The export of this session and what the harness expects to find in it."""

    source: str  # "file" or "api"
    path: Path | None = None
    report: Any = None  # conformance.export.ExportReport
    expected: Any = None  # conformance.export.ExpectedRecords
    unavailable: str | None = None  # why the target gave no export (an EXP-001 failure)
    seeding_failure: RequirementFailure | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # why the export could not be read at all (every check ERROR)


def _letters(token: str) -> str:
    """A run-unique, letters-only suffix for a name (names may not hold digits)."""
    return "".join("abcdefghijklmnop"[int(c, 16)] for c in token.encode().hex()[-8:]).capitalize()


def _seed(world: World) -> Any:
    """Create a small case history through the API and return it as ExpectedRecords."""
    from conformance.domain.identifiers import nhs_check_digit, upn_check_letter
    from conformance.export import ExpectedRecords

    worker = world.practitioner("practitioner")
    colleague: Practitioner = world.practitioner("practitioner", fresh=True)
    rng = secrets.SystemRandom()
    upn = "Z"  # sample identifiers avoid the edge classes REC-002/003 judge (search_oracle.EDGE_*)
    while upn.startswith("Z"):
        body = f"801{rng.randrange(10**9):09d}"  # 801: a real LA number, as python-stdnum requires
        upn = upn_check_letter(body) + body
    nhs = None
    while nhs is None or nhs.endswith("0"):
        candidate = f"{rng.randrange(4 * 10**8, 5 * 10**8):09d}"
        try:
            nhs = candidate + nhs_check_digit(candidate)
        except ValueError:
            continue
    children = [
        world.child(
            worker,
            given_name="Zoë",
            family_name=f"Exportson-{_letters(world.unique('f'))}",
            upn=upn,
            nhs_number=nhs,
            date_of_birth="2003-02-11",
            gender="female",
        ),
        world.child(worker, given_name="Seán", family_name="O\u2019Export", date_of_birth="2005-09-30", gender="male"),
    ]
    aliases = [world.alias(children[0]["id"], "Zoe", "Smith-Export", "previous", actor=worker)]
    allocations = [world.allocate(children[0]["id"], colleague)]
    referral = world.referral(children[0]["id"], "2008-01-07", actor=worker)
    assessment = world.assessment(
        children[0]["id"], "2008-01-08", kind="initial", referral_id=referral["id"], actor=worker
    )
    seen = world.visit(assessment["id"], "2008-01-10", child_seen=True, actor=worker)
    from conformance.checking.checks import expect_status

    visit = expect_status(seen, 201, world.requirements, "record a seen visit")
    done = expect_status(
        world.complete(assessment["id"], "2008-01-14", actor=worker), 200, world.requirements, "complete the assessment"
    )
    return ExpectedRecords(
        children=children, aliases=aliases, allocations=allocations, assessments=[done], seen_visits=[visit]
    )


@pytest.fixture(scope="session")
def export_run(
    request: pytest.FixtureRequest, ics_context: RunContext, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExportRun]:
    """The session's export; a bulk export taken from the target is deleted when the session ends."""
    holder: list[Path] = []
    try:
        yield _export_run(request, ics_context, tmp_path_factory, holder)
    finally:
        for directory in holder:  # the target's whole export (every child on it) never outlives the run
            shutil.rmtree(directory, ignore_errors=True)


def _export_run(
    request: pytest.FixtureRequest,
    ics_context: RunContext,
    tmp_path_factory: pytest.TempPathFactory,
    holder: list[Path],
) -> ExportRun:
    from conformance.export import validate_export
    from conformance.plugin.options import option as _option

    given = _option(request.config, "ics_export")
    if given:
        path = Path(given)
        # a file judged alone gets both cores; beside API checks, one (the others run in parallel)
        workers = 2 if ics_context.export_only else 1
        try:
            mapping = _option(request.config, "ics_export_format")
            if mapping:
                from conformance.export.mapping import load_format
                from conformance.export.native import validate_native

                report = validate_native(path, load_format(str(mapping)), phase=ics_context.phase, workers=workers)
            else:
                report = validate_export(path, phase=ics_context.phase, workers=workers)
            return ExportRun(source="file", path=path, report=report)
        except ConformanceError as exc:  # unreadable archive and the like: could not be judged
            return ExportRun(source="file", path=path, error=str(exc))
    ics_client: Client = request.getfixturevalue("ics_client")
    if not ics_context.has("bulk_export"):
        return ExportRun(source="api", unavailable=None, notes=["bulk_export not declared"])
    run = ExportRun(source="api")
    world = World(ics_context, ics_client, requirements=(EXP_RECONCILE,))
    try:
        run.expected = _seed(world)
    except RequirementFailure as failure:
        run.seeding_failure = failure
    manager = world.practitioner("manager")
    response = ics_client.get("/export", token=manager.token)
    if response.status_code != 200 or not response.content.startswith(b"PK"):
        run.unavailable = f"GET /export did not return a zip: {describe(response)}"
        return run
    directory = tmp_path_factory.mktemp("export")
    holder.append(directory)
    directory.chmod(0o700)
    path = directory / "export.zip"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(response.content)
    run.path = path
    run.report = validate_export(path, phase=ics_context.phase, workers=1)
    return run


def _judge(run: ExportRun, ics_context: RunContext, requirement: str) -> None:
    from conformance.results.verdicts import Verdict

    if run.error is not None:
        pytest.fail(f"the export could not be judged: {run.error}", pytrace=False)  # ERROR, never a supplier FAIL
    if run.report is None and run.unavailable is None:
        not_applicable("the target does not declare the bulk_export capability")
    if run.unavailable is not None:
        if requirement == EXP_PRESENT:
            raise RequirementFailure(requirement, run.unavailable)
        prerequisite_missing(f"no export to judge ({EXP_PRESENT} failed)")
    report = run.report
    verdict = report.verdict(requirement)
    if verdict is Verdict.ERROR:
        raise RuntimeError(f"{requirement}: export rule could not run: {report.error(requirement)}")
    if verdict is Verdict.SKIPPED:  # a file the rule needs is missing: not judged, never PASS
        prerequisite_missing(f"{requirement}: {report.unjudged[requirement]} ({EXP_PRESENT} fails)")
    if verdict is Verdict.FAIL:
        examples = "; ".join(str(f) for f in report.examples(requirement)[:5])
        raise RequirementFailure(
            requirement, f"{report.count(requirement)} finding(s) in the {run.source} export: {examples}"
        )


def _make_check(requirement: str) -> tuple[str, Callable[..., None]]:
    @check(requirement, kind="export")
    def test(export_run: ExportRun, ics_context: RunContext) -> None:
        _judge(export_run, ics_context, requirement)

    name = f"test_export_{requirement.rsplit('-', 1)[1]}"
    test.__name__ = test.__qualname__ = name
    test.__doc__ = f"{requirement}: judged on the export's findings for this requirement."
    return name, test


@check(REC_LOCAL_ID, kind="export")
def test_export_local_ids_unique(export_run: ExportRun, ics_context: RunContext) -> None:
    """ICS-1A-REC-008 in the export channel: no two children of the export share a local ID."""
    _judge(export_run, ics_context, REC_LOCAL_ID)


for _rid in _JUDGED:
    _name, _fn = _make_check(_rid)
    globals()[_name] = _fn
del _rid, _name, _fn


@check(EXP_RECONCILE, kind="export")
def test_export_reconciles_with_api(export_run: ExportRun) -> None:
    """ICS-1A-EXP-009: records created through the API appear in the export unchanged."""
    from conformance.export import reconcile

    if export_run.source == "file":
        not_applicable("export supplied as a file: it predates the records this run created")
    if export_run.report is None and export_run.unavailable is None:
        not_applicable("the target does not declare the bulk_export capability")
    if export_run.seeding_failure is not None:
        raise export_run.seeding_failure
    if export_run.unavailable is not None:
        prerequisite_missing(f"no export to reconcile ({EXP_PRESENT} failed)")
    findings = reconcile(export_run.report, export_run.expected)
    if findings:
        shown = "; ".join(str(f) for f in findings[:5])
        raise RequirementFailure(EXP_RECONCILE, f"{len(findings)} record(s) differ or are missing: {shown}")


def warm_up() -> None:
    """Import the export validator before checks start on several threads (``conformance.plugin.lanes``)."""
    import conformance.export  # noqa: F401  (numpy, the validator)
