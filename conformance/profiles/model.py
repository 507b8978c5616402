"""A council's local profile: the YAML format (``specs/schemas/local-profile.schema.json``), read and validated.

A profile names the council and states, each with a reason, local requirements added
(stable IDs ``LOCAL-<COUNCIL>-NNN``, a level, and a parameterised generic check), national
SHOULD/MAY requirements the council does not need, and capabilities its deployment needs.
It can never relax a MUST: naming a MUST as not needed, a local timescale longer than the
national one, or a capability switched off is refused (a waiver signed by the department
is the only way to set a MUST aside). Every problem names the file, the path in it and
what is wrong, and is a :class:`~conformance.errors.UsageError` (exit 2).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from conformance.errors import UsageError

__all__ = [
    "KIND_PHASES",
    "PROFILE_FORMAT",
    "CapabilitySetting",
    "LocalProfile",
    "LocalRequirement",
    "NotNeeded",
    "load_profile",
    "parse_profile",
]

PROFILE_FORMAT = "ics-conformance/local-profile/1"
#: The national phase each generic check kind builds on: a local requirement of a later phase
#: than the run is not in scope (NOT_APPLICABLE).
KIND_PHASES: Mapping[str, str] = {
    "timescale": "1A",
    "code-list": "1A",
    "notification-latency": "1B",
    "search-criterion": "1B",
    "custom": "1A",
}
#: The national requirement each kind's check reuses (named in deviations).
KIND_BASIS: Mapping[str, str] = {
    "timescale": "ICS-1A-TIME-001/002",
    "notification-latency": "ICS-1B-NOTIF-005",
    "search-criterion": "ICS-1B-SRCH-010",
    "code-list": "ICS-1A-REF-001",
    "custom": "",
}
#: Criteria that narrow a search to the check's own children on a shared system.
NARROWING_CRITERIA = frozenset({"given_name", "family_name", "postcode", "upn", "nhs_number"})
_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LocalRequirement:
    """One local requirement: judged by the generic check ``kind`` with ``params``."""

    id: str
    statement: str
    level: str
    reason: str
    kind: str
    params: Mapping[str, Any]
    title: str | None = None

    @property
    def phase(self) -> str:
        """The national phase the requirement's check builds on."""
        return KIND_PHASES[self.kind]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "statement": self.statement,
            "level": self.level,
            "reason": self.reason,
            "kind": self.kind,
            "params": dict(self.params),
            "phase": self.phase,
        }


@dataclass(frozen=True)
class NotNeeded:
    """A national SHOULD/MAY requirement the council does not need."""

    id: str
    level: str
    reason: str


@dataclass(frozen=True)
class CapabilitySetting:
    """A capability the council's deployment needs (``true``, or a latency bound of at most ``value`` s)."""

    capability: str
    value: bool | int
    reason: str


@dataclass(frozen=True)
class LocalProfile:
    """A validated local profile and the exact bytes it was read from."""

    source: str  # the file name shown to users
    sha256: str
    raw: bytes = field(repr=False)
    council: str
    code: str | None
    title: str | None
    requirements: tuple[LocalRequirement, ...]
    not_needed: tuple[NotNeeded, ...]
    capabilities: tuple[CapabilitySetting, ...]

    def get(self, requirement_id: str) -> LocalRequirement | None:
        return next((r for r in self.requirements if r.id == requirement_id), None)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(r.id for r in self.requirements)

    def of_kind(self, kind: str) -> tuple[LocalRequirement, ...]:
        return tuple(r for r in self.requirements if r.kind == kind)


def load_profile(path: Path | str) -> LocalProfile:
    """Read and validate a local profile file (YAML or JSON); :class:`UsageError` naming file, path and problem."""
    path = Path(path)
    try:
        if not path.is_file():
            raise UsageError(f"local profile {path}: no such file")
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise UsageError(f"local profile {path}: too large ({size} bytes; at most {_MAX_BYTES})")
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"local profile {path}: cannot read ({exc.strerror or exc})") from None
    return parse_profile(raw, path.name)


def parse_profile(raw: bytes, source: str) -> LocalProfile:
    """Validate the bytes of a profile called ``source`` (the file name)."""
    data = _read_yaml(raw, source)
    problems = _schema_problems(data)
    if problems:
        raise UsageError(_summary(source, problems))
    problems = _rule_problems(data)
    if problems:
        raise UsageError(_summary(source, problems))
    council = data["council"]
    code = council.get("code") or _known_councils_by_name().get(council["name"].casefold())
    requirements = tuple(
        LocalRequirement(
            id=r["id"],
            statement=r["statement"],
            level=r["level"],
            reason=r["reason"],
            kind=r["check"]["kind"],
            params={k: v for k, v in r["check"].items() if k != "kind"},
            title=r.get("title"),
        )
        for r in data.get("local_requirements") or []
    )
    catalogue = _catalogue()
    not_needed = tuple(
        NotNeeded(id=n["id"], level=catalogue.get(n["id"]).level, reason=n["reason"])
        for n in data.get("not_needed") or []
    )
    capabilities = tuple(
        CapabilitySetting(capability=c["capability"], value=c["value"], reason=c["reason"])
        for c in data.get("capabilities") or []
    )
    return LocalProfile(
        source=source,
        sha256=hashlib.sha256(raw).hexdigest(),
        raw=raw,
        council=council["name"],
        code=code,
        title=data.get("title"),
        requirements=requirements,
        not_needed=not_needed,
        capabilities=capabilities,
    )


# --------------------------------------------------------------------------- reading


def _read_yaml(raw: bytes, source: str) -> Any:
    """Parse YAML (JSON is YAML) safely, refusing duplicate keys; errors name line and column."""
    from conformance.spec.yamltext import YamlProblem, load_strict

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"local profile {source}: not valid UTF-8 (byte {exc.start})") from None
    try:
        data = load_strict(text)
    except YamlProblem as exc:
        raise UsageError(f"local profile {source}: not valid YAML{exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"local profile {source}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _summary(source: str, problems: list[str]) -> str:
    shown = problems[:20]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    if len(shown) == 1:
        return f"local profile {source}: {shown[0]}"
    return f"local profile {source}: {len(problems)} problems:\n  " + "\n  ".join(shown) + more


@cache
def _schema() -> dict[str, Any]:
    import json

    from conformance.spec.resources import spec_path

    schema: dict[str, Any] = json.loads(spec_path("schemas", "local-profile.schema.json").read_text(encoding="utf-8"))
    return schema


def _schema_problems(data: Any) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        if error.validator in ("allOf", "if"):
            continue  # the failing branch's own errors are reported
        message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
        if error.validator == "additionalProperties":
            message = message.replace("Additional properties are not allowed", "unknown field(s)")
        if error.validator == "enum" and list(error.absolute_path)[-1:] == ["kind"]:
            message = f"unknown check kind {error.instance!r} (known: {', '.join(error.validator_value)})"
        problems.append(f"{_path(error.absolute_path)}: {message}")
    return list(dict.fromkeys(problems))


def _catalogue() -> Any:
    from conformance.spec.catalogue import load_catalogue

    return load_catalogue()


@cache
def _known_councils() -> dict[str, str]:
    """The registry's councils list (``code -> name``); empty when the data file is not installed."""
    path = Path(__file__).resolve().parent.parent / "registry" / "data" / "councils-2008.csv"
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return {row["code"]: row["name"] for row in csv.DictReader(handle)}
    except OSError:
        return {}


def _known_councils_by_name() -> dict[str, str]:
    return {name.casefold(): code for code, name in _known_councils().items()}


def _rule_problems(data: Mapping[str, Any]) -> list[str]:
    """The rules the schema cannot state."""
    from conformance.domain.workingdays import TIMESCALES

    problems: list[str] = []
    council = data["council"]
    code = council.get("code")
    known = _known_councils()
    if code is not None and known:
        if code not in known:
            problems.append(f"council.code: {code!r} is not a council of the registry's councils list")
        elif known[code].casefold() != council["name"].casefold():
            problems.append(
                f"council.code: {code} is {known[code]!r} in the registry's councils list, not {council['name']!r}"
            )
    prefixes: set[str] = set()
    seen: set[str] = set()
    for index, raw in enumerate(data.get("local_requirements") or []):
        where = f"local_requirements[{index}]"
        rid, check = raw["id"], raw["check"]
        if rid in seen:
            problems.append(f"{where}.id: {rid} is listed twice")
        seen.add(rid)
        prefixes.add(rid.rsplit("-", 1)[0])
        kind = check["kind"]
        if kind == "timescale":
            national = TIMESCALES[check["assessment"]]
            basis = "ICS-1A-TIME-001" if check["assessment"] == "initial" else "ICS-1A-TIME-002"
            if check["working_days"] > national:
                problems.append(
                    f"{where}.check.working_days: {check['working_days']} is longer than the national {national} working "
                    f"days of {basis} (a MUST): a local profile can never relax a MUST; setting one aside needs a waiver "
                    "signed by the department (ics-conformance waivers sign; certify --waivers)"
                )
        elif kind == "search-criterion":
            if not NARROWING_CRITERIA & set(check["criteria"]):
                problems.append(
                    f"{where}.check.criteria: {check['criteria']} would match children the check did not create on a "
                    f"shared system; add one of {', '.join(sorted(NARROWING_CRITERIA))}"
                )
        elif kind == "code-list" and check["field"] == "referral.source":
            national_sources = referral_sources()
            outside = [c for c in check["codes"] if c not in national_sources]
            if outside:
                problems.append(
                    f"{where}.check.codes: {outside} are not national referral sources ({', '.join(national_sources)}); "
                    "a local code list for referral.source can only narrow the national list"
                )
    if len(prefixes) > 1:
        problems.append(
            f"local_requirements: IDs use several council prefixes ({', '.join(sorted(prefixes))}); one profile, one prefix"
        )
    catalogue = _catalogue()
    for index, raw in enumerate(data.get("not_needed") or []):
        where = f"not_needed[{index}].id"
        rid = raw["id"]
        if rid not in catalogue:
            close = catalogue.suggest(rid)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            problems.append(f"{where}: {rid} is not a requirement of the national catalogue{hint}")
            continue
        if catalogue.get(rid).level == "MUST":
            problems.append(
                f"{where}: {rid} is a MUST: a local profile can never relax a MUST. A MUST the council cannot meet "
                "needs a waiver signed by the department (ics-conformance waivers sign; certify --waivers FILE)"
            )
    names = [n["id"] for n in data.get("not_needed") or []]
    for rid in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"not_needed: {rid} is listed twice")
    capabilities = [c["capability"] for c in data.get("capabilities") or []]
    for index, raw in enumerate(data.get("capabilities") or []):
        where = f"capabilities[{index}].value"
        name, value = raw["capability"], raw["value"]
        if capabilities.count(name) > 1 and capabilities.index(name) == index:
            problems.append(f"capabilities: {name} is listed twice")
        if name == "notification_latency_seconds":
            if isinstance(value, bool) or not 1 <= value <= 300:
                problems.append(f"{where}: a latency bound is a whole number of seconds from 1 to 300, got {value!r}")
        elif value is not True:
            problems.append(
                f"{where}: {name} {value!r}: a profile states the capabilities the council needs (true); it can never "
                "switch one off (that would make its MUSTs NOT_APPLICABLE: use --capabilities with "
                "--allow-capability-override, recorded on the certificate)"
            )
    return problems


@cache
def referral_sources() -> tuple[str, ...]:
    from conformance.spec.resources import openapi_document

    document = openapi_document()
    return tuple(document["components"]["schemas"]["ReferralSource"]["enum"])
