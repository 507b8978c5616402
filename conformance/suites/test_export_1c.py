"""Phase 1C content of the bulk export: the audit log (ICS-1C-AUD-002) and the chronology (ICS-1C-CHRON-001, -003).

The export judged is the one given with ``--ics-export PATH``, or else the target's own
(``GET /export``), taken after this module gave a child a history through the API (a
referral, allocations started and ended, an assessment started, seen and completed) and
had a practitioner search for, view and read the notes of it, so that the audit log
holds known entries. The export is judged once per session by
:func:`conformance.export.extensions.validate_extensions`; AUD-002 also reconciles the
audit entries ``GET /audit`` gave a manager for that child, before the export was taken,
with those in the export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance.checking.checks import (
    RequirementFailure,
    check,
    describe,
    expect_status,
    not_applicable,
    prerequisite_missing,
)
from conformance.checking.client import Client
from conformance.checking.search_oracle import child_id, name_token
from conformance.checking.world import RunContext, World
from conformance.errors import ConformanceError

AUD_002 = "ICS-1C-AUD-002"
CHRON_001 = "ICS-1C-CHRON-001"
CHRON_003 = "ICS-1C-CHRON-003"
_AUDIT_KEYS = ("id", "at", "practitioner_id", "child_id", "action")

pytestmark = pytest.mark.xdist_group("ics-export")


@dataclass
class Export1C:
    """The export judged for phase 1C, and what the harness expects in it."""

    source: str  # "file" or "api"
    report: Any = None  # conformance.export.extensions.ExtensionReport
    child: str | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)  # GET /audit of the child before the export
    unavailable: str | None = None
    seeding_failure: RequirementFailure | None = None
    error: str | None = None


def _seed(world: World) -> tuple[str, list[dict[str, Any]]]:
    """A child with a history and a practitioner's accesses to it; its audit entries as the API lists them."""
    worker = world.practitioner("practitioner")
    family = name_token()
    cid = child_id(world.child(worker, family_name=family), AUD_002)
    allocation = world.allocate(cid, worker, start_date="2008-01-02")
    world.end_allocation(str(allocation["id"]), end_date="2008-03-31")
    world.allocate(cid, world.practitioner("practitioner", fresh=True), start_date="2008-04-01")
    referral = world.referral(cid, "2008-01-07", actor=worker)
    assessment = world.assessment(cid, "2008-01-08", referral_id=str(referral["id"]), actor=worker)
    expect_status(world.visit(str(assessment["id"]), "2008-01-09", actor=worker), 201, AUD_002, "record a visit")
    expect_status(world.complete(str(assessment["id"]), "2008-01-10", actor=worker), 200, AUD_002, "complete")
    world.case_note(cid, worker, "Seen at home.")
    reader = world.practitioner("practitioner", fresh=True)
    world.client.get("/children", token=reader.token, params={"family_name": family})
    world.client.get(f"/children/{cid}", token=reader.token)
    world.client.get(f"/children/{cid}/case-notes", token=reader.token)
    manager = world.practitioner("manager")
    entries: list[dict[str, Any]] = []
    if world.context.has("audit"):
        for body in world.pages("/audit", manager, {"child_id": cid}):
            entries.extend(e for e in body["items"] if isinstance(e, dict))
    return cid, entries


@pytest.fixture(scope="session")
def export_1c(
    request: pytest.FixtureRequest, ics_context: RunContext, tmp_path_factory: pytest.TempPathFactory
) -> Export1C:
    from conformance.export.extensions import validate_extensions
    from conformance.plugin.options import option as _option

    given = _option(request.config, "ics_export")
    if given:
        try:
            return Export1C(source="file", report=validate_extensions(Path(given)))
        except ConformanceError as exc:
            return Export1C(source="file", error=str(exc))
    if not ics_context.has("bulk_export"):
        return Export1C(source="api")
    client: Client = request.getfixturevalue("ics_client")
    world = World(ics_context, client, requirements=(AUD_002,))
    run = Export1C(source="api")
    try:
        run.child, run.audit = _seed(world)
    except RequirementFailure as failure:
        run.seeding_failure = failure
    response = client.get("/export", token=world.practitioner("manager").token)
    if response.status_code != 200 or not response.content.startswith(b"PK"):
        run.unavailable = f"GET /export did not return a zip: {describe(response)}"
        return run
    path = tmp_path_factory.mktemp("export-1c") / "export.zip"
    path.write_bytes(response.content)
    run.report = validate_extensions(path, keep_for=[run.child] if run.child else [])
    return run


def _judge(run: Export1C, context: RunContext, requirement: str, capability: str) -> None:
    from conformance.results.verdicts import Verdict

    if run.error is not None:
        pytest.fail(f"the export could not be judged: {run.error}", pytrace=False)  # ERROR
    if not context.has(capability):
        not_applicable(f"the target does not declare the {capability} capability")
    if run.report is None and run.unavailable is None:
        not_applicable("the target does not declare the bulk_export capability")
    if run.unavailable is not None:
        prerequisite_missing(f"no export to judge (ICS-1A-EXP-001 fails): {run.unavailable}")
    report = run.report
    verdict = report.verdict(requirement)
    if verdict is Verdict.ERROR:
        raise RuntimeError(f"{requirement}: export rule could not run: {report.error(requirement)}")
    if verdict is Verdict.FAIL:
        examples = "; ".join(str(f) for f in report.examples(requirement)[:5])
        raise RequirementFailure(
            requirement, f"{report.count(requirement)} finding(s) in the {run.source} export: {examples}"
        )


@check(AUD_002, kind="export")
def test_export_audit_log(export_1c: Export1C, ics_context: RunContext) -> None:
    """AUD-002: audit.jsonl listed, schema-valid, unique, referencing exported records; in an API run, the
    entries GET /audit listed for the harness's child before the export are in it unchanged."""
    _judge(export_1c, ics_context, AUD_002, "audit")
    if export_1c.source == "file":
        return
    if export_1c.seeding_failure is not None:
        raise export_1c.seeding_failure
    exported = {e.get("id"): e for e in export_1c.report.audit}
    problems = []
    for entry in export_1c.audit:
        got = exported.get(entry.get("id"))
        if got is None:
            problems.append(f"entry {entry.get('id')!r} ({entry.get('action')}) missing")
        elif any(got.get(k) != entry.get(k) for k in _AUDIT_KEYS):
            problems.append(f"entry {entry.get('id')!r} differs: API {entry}, export {got}")
    if not export_1c.audit:
        problems.append(
            f"GET /audit listed no entry for child {export_1c.child} (created, viewed, read), nothing to find"
        )
    if problems:
        raise RequirementFailure(AUD_002, "the API's audit entries are not in the export:\n" + "\n".join(problems[:10]))


@check(CHRON_001, kind="export")
def test_export_chronology_complete(export_1c: Export1C, ics_context: RunContext) -> None:
    """CHRON-001: chronology.jsonl listed, schema-valid, every significant event exactly once, each child's in order."""
    _judge(export_1c, ics_context, CHRON_001, "chronology_export")
    if (
        export_1c.source == "api"
        and export_1c.child
        and not any(e.get("child_id") == export_1c.child for e in export_1c.report.chronology)
    ):
        raise RequirementFailure(
            CHRON_001, f"no chronology event of the harness's child {export_1c.child} in the export"
        )


@check(CHRON_003, kind="export")
def test_export_chronology_links(export_1c: Export1C, ics_context: RunContext) -> None:
    """CHRON-003: every exported event links to an exported record of its type, of the same child, with its date."""
    _judge(export_1c, ics_context, CHRON_003, "chronology_export")


@check("ICS-1C-XFER-001", kind="export")
def test_export_file_is_no_transfer_package(ics_context: RunContext) -> None:
    """XFER-001 in an export-only run: a bulk export is not a transfer package (judge one with
    ``ics-conformance validate-export PACKAGE --kind transfer``); API runs judge the target's packages
    in ``test_transfer.py``."""
    if ics_context.export_only:
        not_applicable("a bulk export was given, not a transfer package: use validate-export PACKAGE --kind transfer")
    not_applicable("judged on the target's own packages by test_transfer.py::test_transfer_package_valid")


def warm_up() -> None:
    """Import the export validator before checks start on several threads (``conformance.plugin.lanes``)."""
    import conformance.export.extensions  # noqa: F401  (numpy, the validator)
