"""The test design: per requirement, the cases its statement implies and the checks that judge them.

``specs/test-design/<area>.yaml`` (schema ``specs/schemas/test-design.schema.json``) holds,
for every requirement of that catalogue area, a list of cases: an equivalence class or a
boundary of the statement (a role, a date edge, a length limit, a branch of an identifier
algorithm, a path to a record, a repeated operation, a normalisation), the checks that
cover it and the reference faults that break it. A case marked ``free`` is a choice the
statement leaves to the supplier: no check may depend on it.

:func:`load_test_design` validates each file on its own (schema, area, requirement IDs of
that area, unique case IDs); :meth:`Design.problems` cross-checks the design against the
catalogue, the checks and the fault registry, which live in higher layers and are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from conformance.errors import SpecError
from conformance.spec.catalogue import AREAS, Catalogue, _display, _read_yaml, _schema, _summarise

__all__ = ["Case", "Design", "check_key", "load_test_design"]

_ID_AREA = re.compile(r"^ICS-[0-9][A-Z]-(?P<area>[A-Z]+)-[0-9]{3}$")
_NODE = re.compile(r"^(?:.*/)?(?P<module>test_[A-Za-z0-9_]+\.py)::(?P<function>[A-Za-z0-9_]+)(?:\[.*\])?$")


def check_key(node_id: str) -> str:
    """The test-design form of a check ID: ``<module>.py::<function>``.

    Accepts a pytest node ID (``conformance/suites/test_x.py::test_y[ICS-...]``) or a
    result.json ``checks[].id`` (``test_x.py::test_y[ICS-...]``); returns it unchanged
    when it is neither.
    """
    match = _NODE.match(node_id)
    return f"{match['module']}::{match['function']}" if match else node_id


@dataclass(frozen=True)
class Case:
    """One case of a requirement's test design."""

    requirement: str
    id: str
    description: str
    free: bool
    covered_by: tuple[str, ...]
    faults: tuple[str, ...]
    file: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "description": self.description}
        if self.free:
            out["free"] = True
        else:
            out["covered_by"] = list(self.covered_by)
        if self.faults:
            out["faults"] = list(self.faults)
        return out


@dataclass(frozen=True)
class Design:
    """Every requirement's cases, from every file of a test-design directory."""

    by_requirement: Mapping[str, tuple[Case, ...]]
    files: Mapping[str, str]  # area -> file name
    directory: Path

    def cases(self, requirement_id: str) -> tuple[Case, ...]:
        """The cases of ``requirement_id`` (empty when it has no design)."""
        return self.by_requirement.get(requirement_id, ())

    def __contains__(self, requirement_id: object) -> bool:
        return requirement_id in self.by_requirement

    def __iter__(self) -> Iterator[Case]:
        for cases in self.by_requirement.values():
            yield from cases

    def covering(self, check: str) -> tuple[Case, ...]:
        """The cases a check covers (``check`` in any form :func:`check_key` accepts)."""
        key = check_key(check)
        return tuple(c for c in self if key in c.covered_by)

    def problems(
        self,
        catalogue: Catalogue,
        phases: Iterable[str] = ("1A", "1B"),
        *,
        checks: Mapping[str, Iterable[str]] | None = None,
        faults: Mapping[str, Iterable[str]] | None = None,
    ) -> list[str]:
        """Every disagreement between the design and the catalogue, the checks and the faults.

        * a requirement in scope for any of ``phases`` with no design, or a design naming a
          requirement the catalogue does not hold;
        * with ``checks`` (check key -> requirement IDs it declares): a ``covered_by`` naming
          a check that does not exist or does not declare the case's requirement;
        * with ``faults`` (fault name -> requirement IDs it targets): a case naming a fault
          that does not exist or does not target the case's requirement.

        A non-free case without ``covered_by`` is refused when the files are loaded.
        """
        out: list[str] = []
        in_scope = {r.id for p in phases for r in catalogue.in_scope(p)}
        for rid in sorted(in_scope - self.by_requirement.keys()):
            area = catalogue.get(rid).area
            out.append(f"{rid}: no test design (expected in specs/test-design/{area}.yaml)")
        for rid, cases in self.by_requirement.items():
            where = cases[0].file if cases else "?"
            if rid not in catalogue:
                out.append(f"{where}: {rid}: unknown requirement (not in the catalogue)")
                continue
            declared = {k: set(v) for k, v in (checks or {}).items()}
            targeted = {k: set(v) for k, v in (faults or {}).items()}
            for case in cases:
                label = f"{case.file}: {rid}: case {case.id!r}"
                for check in case.covered_by if checks is not None else ():
                    if check not in declared:
                        out.append(f"{label}: covered_by names {check}, which is not a check")
                    elif rid not in declared[check]:
                        out.append(
                            f"{label}: covered_by names {check}, which does not declare {rid} "
                            f"(it declares {', '.join(sorted(declared[check]))})"
                        )
                for fault in case.faults if faults is not None else ():
                    if fault not in targeted:
                        out.append(f"{label}: faults names {fault!r}, which is not a reference fault")
                    elif rid not in targeted[fault]:
                        out.append(
                            f"{label}: fault {fault!r} does not target {rid} "
                            f"(it targets {', '.join(sorted(targeted[fault]))})"
                        )
        return out


def load_test_design(directory: Path | str | None = None) -> Design:
    """Load and validate ``specs/test-design`` (the shipped one by default).

    ``directory`` may be the test-design directory or a specs directory holding it. Raises
    :class:`SpecError` listing every problem found in the files themselves.
    """
    if directory is None:
        return _load_default()
    return _load(Path(directory))


@cache
def _load_default() -> Design:
    from conformance.spec.resources import spec_path

    return _load(spec_path("test-design"))


def _load(directory: Path) -> Design:
    import jsonschema

    if (directory / "test-design").is_dir():
        directory = directory / "test-design"
    if not directory.is_dir():
        raise SpecError(f"{_display(directory)}: no such test-design directory")
    validator = jsonschema.Draft202012Validator(_schema("test-design.schema.json"))
    errors: list[str] = []
    by_requirement: dict[str, tuple[Case, ...]] = {}
    files: dict[str, str] = {}
    paths = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    if not paths:
        raise SpecError(f"{_display(directory)}: no test-design files (expected <area>.yaml)")
    for path in paths:
        shown = _display(path)
        try:
            data = _read_yaml(path)
        except SpecError as exc:
            errors.append(f"{shown}: {exc}")
            continue
        schema_errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
        if schema_errors:
            errors.extend(f"{shown}: {_where(data, e)}: {_message(e)}" for e in schema_errors)
            continue
        area = data["area"]
        if path.stem != area:
            errors.append(f"{shown}: field 'area': {area!r} but the file is named {path.name} (expected {area}.yaml)")
        if area in files:
            errors.append(f"{shown}: area {area!r} is already designed in {files[area]}")
        files[area] = path.name
        for rid, design in data["requirements"].items():
            code = _ID_AREA.match(rid)
            if code and AREAS.get(code["area"]) != area:
                errors.append(f"{shown}: {rid}: belongs to area {AREAS.get(code['area'])!r}, not {area!r}")
            if rid in by_requirement:
                errors.append(f"{shown}: {rid}: already designed in {by_requirement[rid][0].file}")
                continue
            seen: set[str] = set()
            cases = []
            for raw in design["cases"]:
                if raw["id"] in seen:
                    errors.append(f"{shown}: {rid}: case {raw['id']!r} appears twice")
                seen.add(raw["id"])
                cases.append(
                    Case(
                        rid,
                        raw["id"],
                        " ".join(raw["description"].split()),
                        bool(raw.get("free", False)),
                        tuple(raw.get("covered_by", ())),
                        tuple(raw.get("faults", ())),
                        path.name,
                    )
                )
            by_requirement[rid] = tuple(cases)
    if errors:
        raise SpecError(_summarise(errors))
    return Design(MappingProxyType(by_requirement), MappingProxyType(files), directory)


def _where(data: Any, error: Any) -> str:
    """Where a schema error is: ``REQ: case ID: field 'x'`` as far as the path goes."""
    path = list(error.absolute_path)
    if len(path) < 2 or path[0] != "requirements":
        return f"field {'.'.join(str(p) for p in path)!r}" if path else "(top level)"
    rid, rest = path[1], path[2:]
    if len(rest) >= 2 and rest[0] == "cases" and isinstance(rest[1], int):
        raw = data["requirements"][rid]["cases"][rest[1]]
        case = raw.get("id") if isinstance(raw, dict) else None
        label = f"{rid}: case {case!r}" if isinstance(case, str) else f"{rid}: case #{rest[1] + 1}"
        field = ".".join(str(p) for p in rest[2:])
        return label + (f": field {field!r}" if field else "")
    return str(rid) + (f": field {'.'.join(str(p) for p in rest)!r}" if rest else "")


def _message(error: Any) -> str:
    if error.validator == "required":
        missing = [p for p in error.validator_value if isinstance(error.instance, dict) and p not in error.instance]
        shown = ", ".join(repr(m) for m in missing)
        if "covered_by" in missing:
            return f"missing {shown} (a case that is not free names the checks covering it)"
        return f"missing {shown}"
    if error.validator == "minItems" and error.validator_value == 1 and error.instance == []:
        return "empty (a case that is not free names at least one check)"
    if error.validator == "maxItems" and error.validator_value == 0:
        return "a free case names no checks and no faults (no check may depend on it)"
    message = error.message
    return message[:300] + "..." if len(message) > 300 else message
