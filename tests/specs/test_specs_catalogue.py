"""The shipped catalogue: loads, matches design.md section 3, cumulative phases, digest."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conformance.errors import UsageError
from conformance.spec.catalogue import (
    AREAS,
    PHASES,
    Catalogue,
    Requirement,
    load_catalogue,
    phase_includes,
    spec_digest,
)

REPO = Path(__file__).resolve().parents[2]
_ROW = re.compile(r"^\|\s*(ICS-[0-9A-Z-]+)\s*\|\s*(\w+)\s*\|\s*(\w+)\s*\|\s*([\w_]*)\s*\|")


def _design_rows() -> dict[str, tuple[str, str, str]]:
    """``id -> (level, channel, capability)`` from the table of design.md section 3."""
    rows = {}
    for line in (REPO / "docs" / "design.md").read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            rows[match[1]] = (match[2], match[3], match[4])
    return rows


DESIGN = _design_rows()
CATALOGUE = load_catalogue()


def test_design_table_parsed() -> None:
    assert len(DESIGN) >= 70


def test_catalogue_loads_with_enough_requirements() -> None:
    assert isinstance(CATALOGUE, Catalogue)
    assert CATALOGUE.spec_version == "2008.2"
    assert len(CATALOGUE) >= 40
    assert [r.id for r in CATALOGUE.requirements] == sorted(r.id for r in CATALOGUE)


@pytest.mark.parametrize("rid", sorted(DESIGN))
def test_design_requirement_present(rid: str) -> None:
    level, channel, capability = DESIGN[rid]
    req = CATALOGUE.get(rid)
    assert (req.level, req.channel, req.capability or "") == (level, channel, capability)
    assert req.area == AREAS[rid.split("-")[2]]
    assert req.phase == rid.split("-")[1]


def test_extras_only_in_1c_and_not_must() -> None:
    extras = [r for r in CATALOGUE if r.id not in DESIGN]
    assert all(r.phase == "1C" and r.level in ("SHOULD", "MAY") for r in extras), extras


def test_every_requirement_is_well_formed() -> None:
    for req in CATALOGUE:
        assert req.area_code in AREAS
        assert req.level in req.statement or (req.level == "MUST" and "MUST NOT" in req.statement), req.id
        assert req.rationale and req.source and req.title


def test_phases_header() -> None:
    assert list(CATALOGUE.phases) == list(PHASES)
    assert CATALOGUE.phases["1A"].status == "final"
    assert CATALOGUE.phases["1B"].status == "final"
    assert CATALOGUE.phases["1C"].status == "draft"
    assert all(info.title for info in CATALOGUE.phases.values())


def test_phases_are_cumulative() -> None:
    a, b, c = (CATALOGUE.in_scope(p) for p in PHASES)
    assert set(a) < set(b) < set(c) == set(CATALOGUE)
    assert {r.phase for r in a} == {"1A"}
    assert {r.phase for r in b} == {"1A", "1B"}
    assert phase_includes("1B", "1A") and phase_includes("1B", "1B") and not phase_includes("1A", "1B")


def test_in_scope_by_channel() -> None:
    export_only = CATALOGUE.in_scope("1B", channels=["export"])
    assert export_only and all(r.channel in ("export", "both") for r in export_only)
    assert "ICS-1A-EXP-001" in {r.id for r in export_only}  # channel both
    api = CATALOGUE.in_scope("1B", channels=("api",))
    assert all(r.channel in ("api", "both") for r in api)
    assert set(api) | set(export_only) == set(CATALOGUE.in_scope("1B"))
    with pytest.raises(UsageError, match="unknown channel"):
        CATALOGUE.in_scope("1B", channels=["fax"])


def test_unknown_phase_refused() -> None:
    with pytest.raises(UsageError, match="unknown phase '1D'"):
        CATALOGUE.in_scope("1D")


def test_retired_requirement_leaves_scope() -> None:
    req = Requirement("ICS-1A-REC-099", "t", "It MUST.", "MUST", "1A", "records", "api", "r", "s", retired="1C")
    assert req.in_phase("1A") and req.in_phase("1B") and not req.in_phase("1C")


def test_get_contains_iter() -> None:
    assert "ICS-1B-SRCH-001" in CATALOGUE
    assert "ICS-9Z-NOPE-001" not in CATALOGUE
    assert CATALOGUE.get("ICS-1B-SRCH-001").area_code == "SRCH"
    with pytest.raises(KeyError, match="ICS-1B-SRCH-001"):
        CATALOGUE.get("ICS-1B-SRH-001")
    assert len(list(CATALOGUE)) == len(CATALOGUE)


def test_requirement_is_frozen_and_serialisable() -> None:
    req = CATALOGUE.get("ICS-1A-REC-006")
    with pytest.raises(AttributeError):
        req.level = "MAY"  # type: ignore[misc]
    data = req.to_dict()
    assert {"id", "phase", "level", "area", "channel", "capability", "retired", "area_code"} <= set(data)
    assert data["capability"] == "unborn_children"


def test_default_load_is_cached() -> None:
    assert load_catalogue() is load_catalogue()


def test_spec_digest(tmp_path: Path) -> None:
    from conformance.spec.resources import specs_dir

    digest = spec_digest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    copy = tmp_path / "specs"
    shutil.copytree(specs_dir(), copy)
    assert spec_digest(copy) == digest
    (copy / "catalogue" / "phase-1C.yaml").write_text(
        (copy / "catalogue" / "phase-1C.yaml").read_text(encoding="utf-8") + "\n", encoding="utf-8"
    )
    assert spec_digest(copy) != digest


@pytest.mark.parametrize("phase", ["1A", "1B", "1C"])
def test_sources_cite_public_material_only(phase: str) -> None:
    """A reviewer can look every source up: no internal documents, seed files, issues or code."""
    import re

    import yaml

    from conformance.spec.resources import spec_path

    document = yaml.safe_load(spec_path("catalogue", f"phase-{phase}.yaml").read_text(encoding="utf-8"))
    internal = re.compile(
        r"product brief|seed|design\.md|\.py\b|\.ya?ml\b|specs/|docs/|\bissue \d|python-stdnum|holidays package"
        r"|phase 1c discussions"  # not public: the public trace of them is Computing's report
    )
    for requirement in document["requirements"]:
        source = requirement["source"]
        assert not internal.search(source.lower()), (requirement["id"], source)
        # a source names a publication a reviewer can find: dated, or with its address
        assert re.search(r"\b(19|20)\d\d\b|https://", source), (requirement["id"], source)
