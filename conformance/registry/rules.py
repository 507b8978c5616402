"""When is a council compliant? The rules of docs/design.md §10, as pure functions.

Nothing here touches the database: :class:`Programme` holds the rows that matter (loaded by
:mod:`conformance.registry.store`, all of them for the dashboard, one council's for ``status``)
and every answer — ``status``, the councils x phases matrix, the compliance-over-time chart —
comes from the same two functions, :func:`certificate_problem` and :func:`council_intervals`,
so the dashboard cannot disagree with ``status``.

Dates are whole days: a deployment runs from its ``from_date`` (inclusive) until the next
deployment's ``from_date`` (exclusive); a certificate proves from the day its run finished
(UTC); a waiver holds until the end of its ``expires`` day.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

CERTIFIED = "CERTIFIED"
_REQUIREMENT_PHASE = re.compile(r"^ICS-(\d[A-Z])-")
#: An interval of days [start, end); end None = open-ended.
Interval = tuple[dt.date, dt.date | None]


@dataclass(frozen=True)
class PhaseRule:
    """A programme phase as the rules need it."""

    code: str
    ordinal: int
    title: str = ""
    requires_local_qa: bool = False
    min_assurance: str = "self-assessed"
    deadline: dt.date | None = None
    #: (deadline, reason, recorded_at) oldest first; the last is in force.
    history: tuple[tuple[dt.date | None, str, dt.datetime], ...] = ()


@dataclass(slots=True)
class Cert:
    """A stored certificate, as the rules need it (and as the national view lists it)."""

    id: str
    version_id: int
    phase: str
    verdict: str
    assurance: str
    finished_on: dt.date
    signer_role: str
    council_code: int | None = None
    revoked: bool = False
    revoked_reason: str | None = None
    verified_ok: bool = True
    verify_problem: str | None = None
    #: The waivers it relies on: (phase of the waived requirement, last valid day).
    waivers: tuple[tuple[str, dt.date], ...] = ()
    key_id: str = ""
    signer: str = ""

    @property
    def short(self) -> str:
        return self.id[:12]

    def waiver_expiry(self, rule: PhaseRule, ordinals: dict[str, int]) -> dt.date | None:
        """The earliest expiry among the waivers that matter for ``rule``'s phase (a waiver of a
        1B requirement does not matter when the certificate is read as proof of 1A)."""
        relevant = [day for phase, day in self.waivers if ordinals.get(phase, 0) <= rule.ordinal]
        return min(relevant, default=None)

    @property
    def local_qa(self) -> bool:
        """A council's own run of its deployed version (signed by that council's key)."""
        return self.signer_role == "council" and self.council_code is not None


@dataclass(frozen=True)
class Deployment:
    id: int
    council_code: int
    version_id: int
    from_date: dt.date


@dataclass(frozen=True)
class Version:
    id: int
    supplier: str
    product: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.supplier} {self.product} {self.version}"


@dataclass(frozen=True)
class Status:
    """The answer to "is council C compliant for phase P on date D?"."""

    council_code: int
    phase: str
    on: dt.date
    compliant: bool
    reason: str
    deployment: Deployment | None = None
    deployed_since: dt.date | None = None
    proving: tuple[Cert, ...] = ()
    local_qa: tuple[Cert, ...] = ()
    rejected: tuple[tuple[Cert, str], ...] = ()


_ASSURANCE_RANK = {"unknown": 0, "self-assessed": 1, "witnessed": 2}


def _day(moment: dt.date) -> str:
    return moment.isoformat()


def requirement_phase(requirement_id: str) -> str:
    """The phase a requirement belongs to, from its ID (``ICS-1B-SRCH-001`` -> ``1B``; unknown -> ``""``)."""
    match = _REQUIREMENT_PHASE.match(requirement_id)
    return match.group(1) if match else ""


def certificate_problem(cert: Cert, rule: PhaseRule, ordinals: dict[str, int], on: dt.date | None) -> str | None:
    """Why ``cert`` does not prove ``rule``'s phase on ``on`` (None: it does).

    ``on`` None checks only what does not depend on the date.
    """
    if cert.revoked:
        return f"revoked ({cert.revoked_reason})" if cert.revoked_reason else "revoked"
    if not cert.verified_ok:
        return f"failed re-verification ({cert.verify_problem})"
    if cert.verdict != CERTIFIED:
        return f"verdict {cert.verdict.replace('_', ' ')}"
    if ordinals.get(cert.phase, -1) < rule.ordinal:
        return f"phase {cert.phase} does not cover {rule.code}"
    if _ASSURANCE_RANK.get(cert.assurance, 0) < _ASSURANCE_RANK.get(rule.min_assurance, 1):
        return f"assurance {cert.assurance}; phase {rule.code} requires {rule.min_assurance}"
    if on is not None and cert.finished_on > on:
        return f"run finished {_day(cert.finished_on)}, after {_day(on)}"
    expiry = cert.waiver_expiry(rule, ordinals)
    if on is not None and expiry is not None and expiry < on:
        return f"relies on a waiver that expired on {_day(expiry)}"
    return None


def certificate_interval(cert: Cert, rule: PhaseRule, ordinals: dict[str, int]) -> Interval | None:
    """The days on which ``cert`` proves ``rule``'s phase (None: never)."""
    if certificate_problem(cert, rule, ordinals, None) is not None:
        return None
    expiry = cert.waiver_expiry(rule, ordinals)
    end = expiry + dt.timedelta(days=1) if expiry is not None else None
    if end is not None and end <= cert.finished_on:
        return None
    return (cert.finished_on, end)


def deployment_intervals(deployments: Iterable[Deployment]) -> list[tuple[Deployment, Interval]]:
    """Each deployment of one council with the days it was in force (later records win a tie)."""
    ordered = sorted(deployments, key=lambda d: (d.from_date, d.id))
    by_day: dict[dt.date, Deployment] = {}
    for deployment in ordered:
        by_day[deployment.from_date] = deployment
    days = sorted(by_day)
    return [(by_day[day], (day, days[i + 1] if i + 1 < len(days) else None)) for i, day in enumerate(days)]


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[list[dt.date | None]] = []
    for start, end in sorted(intervals, key=lambda i: i[0]):
        if out:
            last_end = out[-1][1]
            if last_end is None or start <= last_end:
                if last_end is not None and (end is None or end > last_end):
                    out[-1][1] = end
                continue
        out.append([start, end])
    return [(s, e) for s, e in out if s is not None]


def _intersect(a: Interval, b: Interval) -> Interval | None:
    start = max(a[0], b[0])
    ends = [e for e in (a[1], b[1]) if e is not None]
    end = min(ends) if ends else None
    if end is not None and end <= start:
        return None
    return (start, end)


def _intersect_all(left: Sequence[Interval], right: Sequence[Interval]) -> list[Interval]:
    out = []
    for a in left:
        for b in right:
            both = _intersect(a, b)
            if both is not None:
                out.append(both)
    return _union(out)


@dataclass
class Programme:
    """The rows the rules work on, indexed."""

    phases: dict[str, PhaseRule]
    versions: dict[int, Version] = field(default_factory=dict)
    deployments: dict[int, list[Deployment]] = field(default_factory=lambda: defaultdict(list))
    certificates: dict[int, list[Cert]] = field(default_factory=lambda: defaultdict(list))
    #: Memo of :meth:`version_intervals`; cleared when a certificate is added.
    _spans: dict[tuple[int, str, int | None], list[Interval]] = field(default_factory=dict, repr=False)

    @property
    def ordinals(self) -> dict[str, int]:
        return {code: rule.ordinal for code, rule in self.phases.items()}

    def add_deployment(self, deployment: Deployment) -> None:
        self.deployments[deployment.council_code].append(deployment)

    def add_certificate(self, cert: Cert) -> None:
        self.certificates[cert.version_id].append(cert)
        self._spans.clear()

    # ------------------------------------------------------------------ intervals

    def version_intervals(self, version_id: int, rule: PhaseRule, council_code: int | None = None) -> list[Interval]:
        """Days on which ``version_id`` holds a proving certificate (``council_code``: its local QA only)."""
        key = (version_id, rule.code, council_code)
        cached = self._spans.get(key)
        if cached is None:
            cached = self._spans[key] = self._version_intervals(version_id, rule, council_code)
        return cached

    def _version_intervals(self, version_id: int, rule: PhaseRule, council_code: int | None) -> list[Interval]:
        ordinals = self.ordinals
        spans = []
        for cert in self.certificates.get(version_id, ()):
            if council_code is not None and not (cert.local_qa and cert.council_code == council_code):
                continue
            if council_code is None and cert.local_qa:
                continue  # a council's own QA run is not the supplier's certification of the version
            span = certificate_interval(cert, rule, ordinals)
            if span is not None:
                spans.append(span)
        return _union(spans)

    def council_intervals(self, council_code: int, phase: str) -> list[Interval]:
        """Days on which the council is compliant for ``phase``."""
        rule = self.phases[phase]
        out: list[Interval] = []
        for deployment, span in deployment_intervals(self.deployments.get(council_code, ())):
            proven = self.version_intervals(deployment.version_id, rule)
            if rule.requires_local_qa:
                proven = _intersect_all(proven, self.version_intervals(deployment.version_id, rule, council_code))
            out.extend(_intersect_all([span], proven))
        return _union(out)

    def compliance_over_time(self, phase: str, councils: Iterable[int]) -> list[tuple[dt.date, int]]:
        """(day, councils compliant from that day on) at every day the count changes."""
        changes: dict[dt.date, int] = defaultdict(int)
        for code in councils:
            for start, end in self.council_intervals(code, phase):
                changes[start] += 1
                if end is not None:
                    changes[end] -= 1
        steps, count = [], 0
        for day in sorted(changes):
            if changes[day]:
                count += changes[day]
                steps.append((day, count))
        return steps

    # ------------------------------------------------------------------ status

    def deployment_on(self, council_code: int, on: dt.date) -> tuple[Deployment, dt.date] | None:
        for deployment, (start, end) in deployment_intervals(self.deployments.get(council_code, ())):
            if start <= on and (end is None or on < end):
                return deployment, start
        return None

    def status(self, council_code: int, phase: str, on: dt.date) -> Status:
        """Is the council compliant for ``phase`` on ``on``? With the proof or the reason."""
        rule = self.phases[phase]
        ordinals = self.ordinals
        found = self.deployment_on(council_code, on)
        if found is None:
            first = min((d.from_date for d in self.deployments.get(council_code, ())), default=None)
            reason = "no deployment recorded on or before " + _day(on)
            if first is not None:
                reason += f" (the first starts {_day(first)})"
            return Status(council_code, phase, on, False, reason)
        deployment, since = found
        version = self.versions.get(deployment.version_id)
        label = version.label if version else f"version #{deployment.version_id}"
        proving: list[Cert] = []
        local_qa: list[Cert] = []
        rejected: list[tuple[Cert, str]] = []
        for cert in sorted(self.certificates.get(deployment.version_id, ()), key=lambda c: (c.finished_on, c.id)):
            if cert.local_qa and cert.council_code != council_code:
                continue
            problem = certificate_problem(cert, rule, ordinals, on)
            if problem is not None:
                rejected.append((cert, problem))
            elif cert.local_qa:
                local_qa.append(cert)
            else:
                proving.append(cert)
        rejected_t = tuple(rejected)
        if not proving:
            if not rejected:
                reason = f"deployed {label} (since {_day(since)}) holds no certificate"
            else:
                why = "; ".join(f"{c.short}: {p}" for c, p in rejected if not c.local_qa)
                reason = f"deployed {label} (since {_day(since)}) holds no certificate proving {phase} on {_day(on)}"
                reason += f" ({why})" if why else ""
            better = self.certified_alternatives(deployment.version_id, phase, on)
            if better:
                reason += f"; versions certified for {phase}: " + ", ".join(better)
            return Status(
                council_code, phase, on, False, reason, deployment, since, local_qa=tuple(local_qa), rejected=rejected_t
            )
        if rule.requires_local_qa and not local_qa:
            reason = (
                f"phase {phase} requires a council-run local QA certificate of {label}; none is valid on {_day(on)}"
            )
            return Status(
                council_code, phase, on, False, reason, deployment, since, tuple(proving), rejected=rejected_t
            )
        reason = f"deployed {label} (since {_day(since)}) holds a valid {phase} certificate"
        return Status(
            council_code, phase, on, True, reason, deployment, since, tuple(proving), tuple(local_qa), rejected_t
        )

    def certified_alternatives(self, version_id: int, phase: str, on: dt.date) -> list[str]:
        """Other versions of the same product that prove ``phase`` on ``on`` (what to upgrade to)."""
        version = self.versions.get(version_id)
        if version is None:
            return []
        rule = self.phases[phase]
        out = []
        for other in self.versions.values():
            if other.id == version_id or (other.supplier, other.product) != (version.supplier, version.product):
                continue
            if any(
                not c.local_qa and certificate_problem(c, rule, self.ordinals, on) is None
                for c in self.certificates.get(other.id, ())
            ):
                out.append(other.version)
        return sorted(out)
