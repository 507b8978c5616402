"""Capability statement: which optional features a target declares (like a PICS).

A statement comes from the target's ``GET /about`` (:func:`from_about`) and may be
overridden by a file (:func:`load_capabilities`, :func:`merge`). It is validated against
``specs/schemas/capabilities.schema.json`` and the combination rules below, so an invalid
statement is refused before anything runs. :func:`applies` decides NOT_APPLICABLE.

Combination rules: ``chronology_export`` and ``inter_council_transfer`` require
``bulk_export``; ``shielded_records`` requires ``audit`` (ICS-1C-SHLD-001 audits attempts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from conformance.errors import UsageError

if TYPE_CHECKING:
    from conformance.spec.catalogue import Requirement

__all__ = [
    "DEFAULTS",
    "MAX_NOTIFICATION_LATENCY",
    "REQUIRES",
    "CapabilityStatement",
    "applies",
    "differences",
    "from_about",
    "load_capabilities",
    "merge",
    "weakening_refused",
]

#: Values used when a capability is not declared (booleans default to False).
DEFAULTS: Mapping[str, int] = MappingProxyType({"notification_latency_seconds": 60})
#: The largest ``notification_latency_seconds`` the harness accepts for phases with
#: notification checks (1B, 1C). Each notification check waits up to twice the declared
#: bound for a note; a larger value is refused as a configuration problem (INCONCLUSIVE)
#: before any check runs, rather than a run that sleeps for hours. Override a larger
#: declared value with a ``--capabilities`` file.
MAX_NOTIFICATION_LATENCY = 300
#: Combination rules: a capability declared true needs the other declared true.
REQUIRES: tuple[tuple[str, str], ...] = (
    ("chronology_export", "bulk_export"),
    ("inter_council_transfer", "bulk_export"),
    ("shielded_records", "audit"),
)
_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class CapabilityStatement:
    """What a target declares. Construction does not validate; the loaders do."""

    declared: Mapping[str, bool | int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "declared", MappingProxyType(dict(self.declared)))

    def has(self, name: str) -> bool:
        """True when boolean capability ``name`` is declared true (``ValueError`` for unknown names)."""
        _known(name)
        return self.declared.get(name) is True

    def get(self, name: str, default: Any = None) -> Any:
        """The declared value of ``name``; else ``default``; else the schema default (latency 60 s)."""
        _known(name)
        if name in self.declared:
            return self.declared[name]
        if default is not None:
            return default
        return DEFAULTS.get(name, False if name in _boolean_names() else None)

    @property
    def notification_latency_seconds(self) -> int:
        """Bound for ICS-1B-NOTIF-005 (60 s when not declared)."""
        return int(self.get("notification_latency_seconds"))

    def to_dict(self) -> dict[str, bool | int]:
        """The declared values as a plain dict (JSON / xdist friendly)."""
        return dict(self.declared)

    def __reduce__(self) -> tuple[Any, ...]:  # MappingProxyType does not pickle
        return (CapabilityStatement, (dict(self.declared),))


def load_capabilities(path: Path | str) -> CapabilityStatement:
    """Read a capability statement file (YAML or JSON) and validate it.

    The file may be partial (it is meant to override ``/about``); a combination rule is
    refused here only when both capabilities are declared. :func:`merge` checks the result.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise UsageError(f"{path}: capability statement too large ({size} bytes)")
        text = path.read_bytes().decode("utf-8")
    except UsageError:
        raise
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: capability statement is not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read capability statement: {exc.strerror or exc}") from None
    data = _parse(path, text)
    return _validated(data, str(path), strict=False)


def from_about(about_capabilities: Mapping[str, Any]) -> CapabilityStatement:
    """Validate a target's ``/about`` ``capabilities`` object (complete: undeclared = false)."""
    return _validated(about_capabilities, "target /about capabilities", strict=True)


def merge(about: CapabilityStatement, override: CapabilityStatement) -> CapabilityStatement:
    """``about`` with every value ``override`` declares replaced; the result is checked in full."""
    merged = CapabilityStatement({**about.declared, **override.declared})
    _check_combinations(
        merged.declared, "capability statement (target /about merged with the override file)", strict=True
    )
    return merged


def applies(requirement: Requirement, statement: CapabilityStatement) -> bool:
    """False (NOT_APPLICABLE) when the requirement's capability is not declared true."""
    return requirement.capability is None or statement.has(requirement.capability)


def differences(declared: Mapping[str, Any], used: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every capability whose value in ``used`` differs from the target's ``declared`` one.

    ``declared`` is the target's ``/about`` statement (complete: an undeclared boolean is
    false, an undeclared latency 60 s); ``used`` the statement the run judged by. Each
    entry is ``{capability, declared, used, weakens}``; ``weakens`` is true when the
    change makes the run more lenient than the target's own claim: a capability declared
    true but switched off (its requirements become NOT_APPLICABLE), or a notification
    latency bound raised. Unknown names are ignored (the loaders refuse them).
    """
    out: list[dict[str, Any]] = []
    for name in sorted(_schema()["properties"]):
        default = DEFAULTS.get(name, False if name in _boolean_names() else None)
        before, after = declared.get(name, default), used.get(name, default)
        if before == after:
            continue
        if name in _boolean_names():
            weakens = before is True and after is not True
        else:
            weakens = isinstance(before, int) and isinstance(after, int) and after > before
        out.append({"capability": name, "declared": before, "used": after, "weakens": weakens})
    return out


def weakening_refused(declared: CapabilityStatement, used: CapabilityStatement) -> str | None:
    """Why running with ``used`` instead of the target's ``declared`` statement needs explicit consent, or None."""
    weakened = [d for d in differences(declared.declared, used.declared) if d["weakens"]]
    if not weakened:
        return None
    listed = ", ".join(
        f"{d['capability']} (declared {_show(d['declared'])}, would be {_show(d['used'])})" for d in weakened
    )
    return (
        f"the capability statement weakens what the target declares in GET /about: {listed}; its requirements "
        "would not be judged as the target claims. Pass --allow-capability-override (pytest: "
        "--ics-allow-capability-override) to run anyway: the override is then recorded on the certificate, "
        "shown on the report's first screen and by verify"
    )


def _show(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


# --------------------------------------------------------------------------- helpers


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        import json

        try:
            return json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{path}: invalid JSON: {exc}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise UsageError(f"{path}: YAML syntax error{where}: {getattr(exc, 'problem', None) or exc}") from None


def _validated(data: Any, source: str, *, strict: bool) -> CapabilityStatement:
    import jsonschema

    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise UsageError(f"{source}: expected a mapping of capability names to values, got {type(data).__name__}")
    validator = jsonschema.Draft202012Validator(_schema())
    problems = []
    for error in sorted(validator.iter_errors(dict(data)), key=lambda e: [str(p) for p in e.absolute_path]):
        if error.validator == "additionalProperties":
            allowed = set(_schema()["properties"])
            for extra in sorted(str(k) for k in data if k not in allowed):
                problems.append(f"field '{extra}': unknown capability (known: {', '.join(sorted(allowed))})")
            continue
        field_name = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        problems.append(f"field '{field_name}': {error.message}")
    if problems:
        raise UsageError(f"{source}: invalid capability statement: " + "; ".join(problems))
    _check_combinations(data, source, strict=strict)
    return CapabilityStatement(data)


def _check_combinations(declared: Mapping[str, Any], source: str, *, strict: bool) -> None:
    conflicts = []
    for needs, needed in REQUIRES:
        if declared.get(needs) is not True or declared.get(needed) is True:
            continue
        if strict or needed in declared:
            state = "false" if needed in declared else "not declared"
            conflicts.append(f"'{needs}' requires '{needed}' (declared true while '{needed}' is {state})")
    if conflicts:
        raise UsageError(f"{source}: invalid capability combination: " + "; ".join(conflicts))


@cache
def _schema() -> dict[str, Any]:
    import json

    from conformance.spec.resources import spec_path

    return json.loads(spec_path("schemas", "capabilities.schema.json").read_text(encoding="utf-8"))


@cache
def _boolean_names() -> frozenset[str]:
    return frozenset(n for n, s in _schema()["properties"].items() if s.get("type") == "boolean")


def _known(name: str) -> None:
    if name not in _schema()["properties"]:
        raise ValueError(f"unknown capability {name!r} (known: {', '.join(sorted(_schema()['properties']))})")
