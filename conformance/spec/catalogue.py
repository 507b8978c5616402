"""The requirement catalogue: load, validate and query ``specs/catalogue/phase-*.yaml``.

The catalogue is data (one YAML file per phase, see ``specs/schemas/catalogue.schema.json``);
this module turns it into frozen :class:`Requirement` objects and refuses a malformed
catalogue with a :class:`~conformance.errors.SpecError` naming the file, the requirement and
the field of every problem found. Phases are cumulative: ``in_scope("1B")`` is 1A + 1B.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from conformance.errors import SpecError, UsageError

__all__ = [
    "AREAS",
    "CHANNELS",
    "LEVELS",
    "PHASES",
    "Catalogue",
    "PhaseInfo",
    "Requirement",
    "load_catalogue",
    "phase_includes",
    "spec_digest",
]

#: Phases in order; each includes every earlier one.
PHASES: tuple[str, ...] = ("1A", "1B", "1C")
LEVELS: tuple[str, ...] = ("MUST", "SHOULD", "MAY")
CHANNELS: tuple[str, ...] = ("api", "export")
#: ID area code -> catalogue ``area`` value (design.md section 3).
AREAS: Mapping[str, str] = MappingProxyType(
    {
        "REC": "records",
        "REF": "referrals",
        "ALLOC": "allocations",
        "NOTE": "case-notes",
        "TIME": "timescales",
        "ASMT": "assessments",
        "EXP": "export",
        "API": "contract",
        "SRCH": "search",
        "NOTIF": "notifications",
        "GATE": "gating",
        "ACC": "access",
        "XFER": "transfer",
        "AUD": "audit",
        "SHLD": "shielding",
        "SEEN": "visits",
        "CHRON": "chronology",
    }
)

_FILE_RE = re.compile(r"^phase-(?P<phase>[^.]+)\.ya?ml$")
_ID_RE = re.compile(r"^ICS-(?P<phase>[0-9][A-Z])-(?P<area>[A-Z]+)-(?P<num>[0-9]{3})$")
_MAX_ERRORS = 50


def phase_includes(phase: str, other: str) -> bool:
    """True when certifying ``phase`` covers requirements introduced in ``other`` (cumulative)."""
    return _phase_index(other) <= _phase_index(phase)


def _phase_index(phase: str) -> int:
    try:
        return PHASES.index(phase)
    except ValueError:
        raise UsageError(f"unknown phase {phase!r} (known phases: {', '.join(PHASES)})") from None


@dataclass(frozen=True)
class Requirement:
    """One normative requirement of the catalogue."""

    id: str
    title: str
    statement: str
    level: str
    phase: str
    area: str
    channel: str
    rationale: str
    source: str
    capability: str | None = None
    retired: str | None = None

    @property
    def area_code(self) -> str:
        """The area code of the ID (``SRCH`` for ``ICS-1B-SRCH-001``)."""
        return self.id.split("-")[2]

    def channels(self) -> tuple[str, ...]:
        """The channels the requirement is verified through (``both`` -> api and export)."""
        return CHANNELS if self.channel == "both" else (self.channel,)

    def in_phase(self, phase: str) -> bool:
        """True when the requirement is in scope when certifying ``phase``."""
        if not phase_includes(phase, self.phase):
            return False
        return self.retired is None or not phase_includes(phase, self.retired)

    def to_dict(self) -> dict[str, Any]:
        """Every field as a JSON-ready dict (optional fields present, possibly null)."""
        return {**asdict(self), "area_code": self.area_code}


@dataclass(frozen=True)
class PhaseInfo:
    """Header of one phase file."""

    phase: str
    status: str  # "final" or "draft"
    title: str
    file: str  # file name, e.g. "phase-1B.yaml"


@dataclass(frozen=True, eq=False)
class Catalogue:
    """The validated catalogue: every phase's requirements, sorted by ID."""

    spec_version: str
    requirements: tuple[Requirement, ...]
    phases: Mapping[str, PhaseInfo]
    directory: Path | None = field(default=None, compare=False)
    _by_id: Mapping[str, Requirement] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "requirements", tuple(sorted(self.requirements, key=lambda r: r.id)))
        object.__setattr__(self, "phases", MappingProxyType(dict(self.phases)))
        object.__setattr__(self, "_by_id", MappingProxyType({r.id: r for r in self.requirements}))

    def get(self, requirement_id: str) -> Requirement:
        """The requirement with this ID; ``KeyError`` naming close IDs when there is none."""
        try:
            return self._by_id[requirement_id]
        except KeyError:
            close = self.suggest(requirement_id)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown requirement {requirement_id!r} in spec {self.spec_version}{hint}") from None

    def suggest(self, requirement_id: str, n: int = 3) -> list[str]:
        """IDs close to ``requirement_id`` (case-insensitive), best first."""
        import difflib

        wanted = requirement_id.upper()
        if wanted in self._by_id:
            return [wanted]
        return difflib.get_close_matches(wanted, list(self._by_id), n=n, cutoff=0.6)

    def in_scope(self, phase: str, channels: Iterable[str] | None = None) -> tuple[Requirement, ...]:
        """Requirements certified for ``phase`` (cumulative), optionally only those on ``channels``.

        A ``both`` requirement is in scope when either of its channels is selected.
        """
        _phase_index(phase)
        wanted: set[str] | None = None
        if channels is not None:
            wanted = set(channels)
            unknown = wanted - set(CHANNELS)
            if unknown:
                raise UsageError(f"unknown channel(s) {sorted(unknown)} (known channels: {', '.join(CHANNELS)})")
        return tuple(
            r for r in self.requirements if r.in_phase(phase) and (wanted is None or wanted.intersection(r.channels()))
        )

    def __contains__(self, requirement_id: object) -> bool:
        return requirement_id in self._by_id

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self.requirements)

    def __len__(self) -> int:
        return len(self.requirements)


# --------------------------------------------------------------------------- loading


def load_catalogue(directory: Path | str | None = None) -> Catalogue:
    """Load and validate the catalogue (``specs/catalogue`` shipped with the package by default).

    ``directory`` may be a catalogue directory (holding ``phase-*.yaml``) or a specs
    directory holding ``catalogue/``. Files are always validated against the packaged
    schemas. Raises :class:`SpecError` listing every problem found.
    """
    if directory is None:
        return _load_default()
    return _load(Path(directory))


@cache
def _load_default() -> Catalogue:
    from conformance.spec.resources import spec_path

    return _load(spec_path("catalogue"))


def _catalogue_dir(directory: Path) -> Path:
    if (directory / "catalogue").is_dir():
        return directory / "catalogue"
    if not directory.exists():
        raise SpecError(f"{_display(directory)}: no such catalogue directory")
    if not directory.is_dir():
        raise SpecError(f"{_display(directory)}: not a directory")
    return directory


def _display(path: Path) -> str:
    """``path`` relative to the working directory when below it, else absolute."""
    try:
        resolved, cwd = path.resolve(), Path.cwd().resolve()
    except OSError:
        return str(path)
    return resolved.relative_to(cwd).as_posix() if resolved.is_relative_to(cwd) else str(resolved)


def _load(directory: Path) -> Catalogue:
    import jsonschema

    cat_dir = _catalogue_dir(directory)
    schema = _schema("catalogue.schema.json")
    capabilities = _capability_names()
    validator = jsonschema.Draft202012Validator(schema)

    errors: list[str] = []
    files = sorted(p for p in cat_dir.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    if not files:
        raise SpecError(
            f"{_display(cat_dir)}: no catalogue files (expected {', '.join(f'phase-{p}.yaml' for p in PHASES)})"
        )

    seen: dict[str, str] = {}  # requirement ID -> display name of the file defining it
    requirements: list[Requirement] = []
    phases: dict[str, PhaseInfo] = {}
    versions: dict[str, str] = {}
    for path in files:
        shown = _display(path)
        file_errors, data = _validate_file(path, shown, validator, capabilities)
        errors.extend(file_errors)
        if data is None:
            continue
        phase = data.get("phase")
        if isinstance(data.get("spec_version"), str):
            versions[shown] = data["spec_version"]
        if isinstance(phase, str) and phase in PHASES:
            if phase in phases:
                errors.append(f"{shown}: field 'phase': phase {phase} is already defined by {phases[phase].file}")
            else:
                phases[phase] = PhaseInfo(phase, str(data.get("status")), str(data.get("title")), path.name)
        raws = data.get("requirements")
        for raw in raws if isinstance(raws, list) else ():
            if not isinstance(raw, dict):
                continue
            rid = raw.get("id")
            if isinstance(rid, str):
                if rid in seen:
                    where = "this file" if seen[rid] == shown else seen[rid]
                    errors.append(f"{shown}: requirement {rid}: field 'id': duplicate ID (already defined in {where})")
                    continue
                seen[rid] = shown
            if not file_errors:
                requirements.append(Requirement(**{k: raw.get(k) for k in _FIELDS}))  # type: ignore[arg-type]  # validated against the catalogue schema above

    missing = [p for p in PHASES if p not in phases]
    if missing and not errors:
        errors.append(f"{_display(cat_dir)}: missing phase file(s): {', '.join(f'phase-{p}.yaml' for p in missing)}")
    if len(set(versions.values())) > 1:
        listed = ", ".join(f"{f} has {v!r}" for f, v in versions.items())
        errors.append(f"{_display(cat_dir)}: field 'spec_version': phase files disagree ({listed})")
    if errors:
        raise SpecError(_summarise(errors))
    return Catalogue(
        spec_version=next(iter(versions.values())), requirements=tuple(requirements), phases=phases, directory=cat_dir
    )


_FIELDS = (
    "id",
    "title",
    "statement",
    "level",
    "phase",
    "area",
    "channel",
    "rationale",
    "source",
    "capability",
    "retired",
)


def _summarise(errors: Sequence[str]) -> str:
    shown = list(errors[:_MAX_ERRORS])
    if len(errors) > _MAX_ERRORS:
        shown.append(f"... and {len(errors) - _MAX_ERRORS} more problem(s)")
    head = "invalid requirement catalogue" if len(errors) > 1 else None
    if head is None:
        return shown[0]
    return f"{head} ({len(errors)} problems):\n  " + "\n  ".join(shown)


def _validate_file(
    path: Path, shown: str, validator: Any, capabilities: frozenset[str]
) -> tuple[list[str], dict[str, Any] | None]:
    """Schema and per-file rules for one phase file: ``(errors, parsed data or None)``."""
    match = _FILE_RE.match(path.name)
    if match is None:
        return [
            f"{shown}: not a catalogue file name (expected phase-<PHASE>.yaml with PHASE one of {', '.join(PHASES)})"
        ], None
    file_phase = match["phase"]
    if file_phase not in PHASES:
        return [f"{shown}: unknown phase {file_phase!r} in the file name (known phases: {', '.join(PHASES)})"], None
    try:
        data = _read_yaml(path)
    except SpecError as exc:
        return [f"{shown}: {exc}"], None
    if not isinstance(data, dict):
        return [
            f"{shown}: expected a mapping with spec_version, phase, status, title, requirements; got {type(data).__name__}"
        ], None

    errors = [_format_schema_error(shown, data, err) for err in sorted(validator.iter_errors(data), key=_error_order)]
    if data.get("phase") in PHASES and data["phase"] != file_phase:
        errors.append(f"{shown}: field 'phase': {data['phase']!r} does not match the file name (phase {file_phase})")
    listed = data.get("requirements")
    for index, raw in enumerate(listed if isinstance(listed, list) else ()):
        if isinstance(raw, dict):
            errors.extend(_requirement_rules(shown, index, raw, file_phase, capabilities))
    return errors, data


def _requirement_rules(
    shown: str, index: int, raw: Mapping[str, Any], file_phase: str, capabilities: frozenset[str]
) -> list[str]:
    """Rules a schema cannot express: ID vs phase/area, known capability, retirement order."""
    where = f"{shown}: {_requirement_label(raw, index)}"
    errors: list[str] = []
    rid = raw.get("id")
    match = _ID_RE.match(rid) if isinstance(rid, str) else None
    if match:
        if match["phase"] != file_phase:
            errors.append(
                f"{where}: field 'id': ID phase {match['phase']} does not match the file's phase {file_phase}"
            )
        phase = raw.get("phase")
        if isinstance(phase, str) and phase != file_phase:
            errors.append(f"{where}: field 'phase': {phase!r} does not match the file's phase {file_phase}")
        area = raw.get("area")
        expected = AREAS.get(match["area"])
        if isinstance(area, str) and expected is not None and area != expected:
            errors.append(
                f"{where}: field 'area': {area!r} does not match the ID's area code {match['area']} (expected {expected!r})"
            )
    capability = raw.get("capability")
    if isinstance(capability, str) and capability not in capabilities:
        errors.append(
            f"{where}: field 'capability': unknown capability {capability!r} (known: {', '.join(sorted(capabilities))})"
        )
    retired = raw.get("retired")
    if retired in PHASES and raw.get("phase") in PHASES and not _phase_index(raw["phase"]) < _phase_index(retired):
        errors.append(
            f"{where}: field 'retired': {retired!r} is not after the phase it was introduced in ({raw['phase']})"
        )
    return errors


def _requirement_label(raw: Any, index: int) -> str:
    rid = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(rid, str) and rid:
        return f"requirement {rid}"
    return f"requirement #{index + 1} (no id)"


def _error_order(error: Any) -> tuple[str, ...]:
    return tuple(str(p).zfill(6) for p in error.absolute_path)


def _format_schema_error(shown: str, data: Mapping[str, Any], error: Any) -> str:
    """One jsonschema error as ``file: requirement ID: field 'x': problem``."""
    path = list(error.absolute_path)
    prefix = shown
    if len(path) >= 2 and path[0] == "requirements" and isinstance(path[1], int):
        prefix = f"{shown}: {_requirement_label(data['requirements'][path[1]], path[1])}"
        path = path[2:]
    instance = error.instance
    if error.validator == "required":
        missing = [p for p in error.validator_value if isinstance(instance, dict) and p not in instance]
        fields = ".".join(str(p) for p in path + missing[:1])
        return f"{prefix}: field '{fields}': missing (required)"
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in allowed)
        fields = ".".join(str(p) for p in path + extra[:1])
        return f"{prefix}: field '{fields}': unknown field (allowed: {', '.join(sorted(allowed))})"
    field_name = ".".join(str(p) for p in path) or "(top level)"
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    return f"{prefix}: field '{field_name}': {message}"


def _read_yaml(path: Path) -> Any:
    """Parse YAML safely, refusing duplicate keys; errors as SpecError with line and column."""
    from conformance.spec.yamltext import YamlProblem, load_strict

    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}") from None
    try:
        return load_strict(text)
    except YamlProblem as exc:
        raise SpecError(f"YAML syntax error{exc}") from None


@cache
def _schema(name: str) -> dict[str, Any]:
    from conformance.spec.resources import spec_path

    path = spec_path("schemas", name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"{_display(path)}: cannot load schema: {exc}") from None


@cache
def _capability_names() -> frozenset[str]:
    """Capability names a requirement may be conditional on (the boolean ones of the schema)."""
    props = _schema("capabilities.schema.json").get("properties", {})
    return frozenset(name for name, spec in props.items() if spec.get("type") == "boolean")


# --------------------------------------------------------------------------- spec identity


def spec_digest(directory: Path | str | None = None) -> str:
    """sha256 identifying the spec data (design.md section 2).

    The hash of the canonical JSON (sorted keys, no spaces, UTF-8) of the sorted list of
    ``[relative POSIX path, sha256 hex of the file]`` for every file under ``specs/``.
    """
    if directory is None:
        return _default_digest()
    return _digest(Path(directory))


@cache
def _default_digest() -> str:
    from conformance.spec.resources import specs_dir

    return _digest(specs_dir())


def _digest(root: Path) -> str:
    entries = sorted(
        [p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()]
        for p in root.rglob("*")
        if p.is_file()
    )
    blob = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()
