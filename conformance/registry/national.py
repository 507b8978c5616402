"""The national view: what the dashboard pages and ``registry export`` show, as plain data.

:class:`Snapshot` loads the registry once (rules rows plus display details); each ``*_view``
function turns it into a JSON-ready dict (dates as ``datetime.date`` until :func:`jsonable`).
The dashboard renders these dicts as HTML or returns them as JSON, so both forms of a page
carry the same facts.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from conformance.registry import db
from conformance.registry import schema as t
from conformance.registry.rules import Cert, Programme, Status, certificate_problem
from conformance.registry.store import Registry, certificate_query, load_programme

#: How far ahead the waivers page looks by default.
WAIVER_HORIZON_DAYS = 90


@dataclass
class Snapshot:
    """Everything the national view needs, read in one transaction.

    Certificates are held as the rules' light :class:`Cert` rows; the full row of one
    certificate (for its page) is read on demand with :meth:`certificate_row`.
    """

    programme: Programme
    councils: dict[int, dict[str, Any]]
    certificates: dict[str, Cert]
    waivers: list[dict[str, Any]]
    deployments: list[dict[str, Any]]
    engine: Any = None
    view_date: dt.date | None = None
    generation: str | None = None
    views: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    @classmethod
    def load(cls, registry: Registry) -> Snapshot:
        with db.read(registry.engine) as c:
            programme = load_programme(c)
            councils = {
                r["code"]: dict(r) for r in c.execute(sa.select(t.councils).order_by(t.councils.c.code)).mappings()
            }
            waivers = [dict(r) for r in c.execute(sa.select(t.waivers).order_by(t.waivers.c.expires)).mappings()]
            deployments = [
                dict(r)
                for r in c.execute(
                    sa.select(
                        t.deployments.c.id,
                        t.deployments.c.council_code,
                        t.deployments.c.version_id,
                        t.deployments.c.from_date,
                        t.deployments.c.recorded_at,
                        t.deployments.c.recorded_by,
                    ).order_by(t.deployments.c.council_code, t.deployments.c.from_date, t.deployments.c.id)
                ).mappings()
            ]
            meta = dict(c.execute(sa.select(t.meta.c.key, t.meta.c.value)).all())
        view = meta.get("view_date")
        certificates = {cert.id: cert for certs in programme.certificates.values() for cert in certs}
        return cls(
            programme=programme,
            councils=councils,
            certificates=certificates,
            waivers=waivers,
            deployments=deployments,
            engine=registry.engine,
            view_date=dt.date.fromisoformat(view) if view else None,
            generation=meta.get("generation"),
        )

    def certificate_row(self, cert_id: str) -> dict[str, Any] | None:
        """The full row of one certificate (target, signer, run, verification, revocation)."""
        with self.engine.connect() as c:
            row = c.execute(certificate_query().where(t.certificates.c.id == cert_id)).mappings().first()
        return dict(row) if row else None

    # ------------------------------------------------------------------ helpers

    def version_label(self, version_id: int) -> dict[str, Any]:
        version = self.programme.versions.get(version_id)
        if version is None:
            return {"id": version_id, "supplier": None, "product": None, "version": None, "label": f"#{version_id}"}
        return {
            "id": version_id,
            "supplier": version.supplier,
            "product": version.product,
            "version": version.version,
            "label": version.label,
        }

    def cert_summary(self, cert_id: str) -> dict[str, Any]:
        cert = self.certificates[cert_id]
        version = self.programme.versions.get(cert.version_id)
        council = self.councils.get(cert.council_code) if cert.council_code is not None else None
        return {
            "id": cert_id,
            "short": cert_id[:12],
            "phase": cert.phase,
            "verdict": cert.verdict,
            "assurance": cert.assurance,
            "supplier": version.supplier if version else None,
            "product": version.product if version else None,
            "version": version.version if version else None,
            "signer": cert.signer,
            "signer_role": cert.signer_role,
            "key_id": cert.key_id,
            "finished_on": cert.finished_on,
            "revoked": cert.revoked,
            "verified_ok": cert.verified_ok,
            "local_qa_for": council["name"] if council and cert.local_qa else None,
        }

    def status_json(self, status: Status) -> dict[str, Any]:
        deployment = status.deployment
        return {
            "council": status.council_code,
            "phase": status.phase,
            "on": status.on,
            "compliant": status.compliant,
            "reason": status.reason,
            "deployed": self.version_label(deployment.version_id) | {"since": status.deployed_since}
            if deployment
            else None,
            "proving": [self.cert_summary(c.id) for c in status.proving],
            "local_qa": [self.cert_summary(c.id) for c in status.local_qa],
            "rejected": [self.cert_summary(c.id) | {"problem": p} for c, p in status.rejected],
        }

    def today(self, on: dt.date | None) -> dt.date:
        return on or self.view_date or dt.date.today()


def phase_json(snapshot: Snapshot) -> list[dict[str, Any]]:
    return [
        {
            "code": rule.code,
            "title": rule.title,
            "deadline": rule.deadline,
            "requires_local_qa": rule.requires_local_qa,
            "min_assurance": rule.min_assurance,
            "history": [{"deadline": d, "reason": r} for d, r, _ in rule.history],
        }
        for rule in snapshot.programme.phases.values()
    ]


# --------------------------------------------------------------------------- pages


def overview_view(snapshot: Snapshot, on: dt.date | None = None) -> dict[str, Any]:
    """Per phase: councils compliant over time against the deadline(s), and the count on each deadline."""
    day = snapshot.today(on)
    codes = list(snapshot.councils)
    total = len(codes)
    phases = []
    for rule in snapshot.programme.phases.values():
        steps = snapshot.programme.compliance_over_time(rule.code, codes)

        def count_on(when: dt.date, steps: list[tuple[dt.date, int]] = steps) -> int:
            value = 0
            for step_day, count in steps:
                if step_day > when:
                    break
                value = count
            return value

        deadlines = []
        for deadline, reason, _ in rule.history:
            if deadline is not None:
                deadlines.append(
                    {
                        "date": deadline,
                        "reason": reason,
                        "compliant": count_on(deadline),
                        "current": deadline == rule.deadline,
                    }
                )
        phases.append(
            {
                "code": rule.code,
                "title": rule.title,
                "deadline": rule.deadline,
                "deadlines": deadlines,
                "compliant_now": count_on(day),
                "total": total,
                "timeline": [{"date": d, "compliant": n} for d, n in steps],
            }
        )
    verdicts = Counter(cert.verdict for cert in snapshot.certificates.values())
    expiring = waivers_view(snapshot, day)["expiring"]
    return {
        "on": day,
        "councils": total,
        "phases": phases,
        "certificates": len(snapshot.certificates),
        "verdicts": dict(sorted(verdicts.items())),
        "suppliers": len({v.supplier for v in snapshot.programme.versions.values()}),
        "products": len({(v.supplier, v.product) for v in snapshot.programme.versions.values()}),
        "waivers_expiring": len(expiring),
    }


def _deployed_on(snapshot: Snapshot, code: int, day: dt.date) -> dict[str, Any] | None:
    found = snapshot.programme.deployment_on(code, day)
    if found is None:
        return None
    deployment, since = found
    return snapshot.version_label(deployment.version_id) | {"since": since}


def matrix_view(
    snapshot: Snapshot,
    on: dt.date | None = None,
    *,
    region: str | None = None,
    supplier: str | None = None,
    phase: str | None = None,
    state: str | None = None,
    q: str | None = None,
) -> dict[str, Any]:
    """Councils x phases on a day, with filters (region, supplier deployed, phase + state, name)."""
    day = snapshot.today(on)
    phases = list(snapshot.programme.phases)
    rows = []
    for code, council in snapshot.councils.items():
        if region and council["region"] != region:
            continue
        if q and q.casefold() not in council["name"].casefold() and q != str(code):
            continue
        deployed = _deployed_on(snapshot, code, day)
        if supplier and (deployed is None or deployed["supplier"] != supplier):
            continue
        cells = {}
        for phase_code in phases:
            status = snapshot.programme.status(code, phase_code, day)
            cells[phase_code] = {
                "compliant": status.compliant,
                "reason": status.reason,
                "proving": [c.short for c in status.proving],
            }
        if phase and state in ("compliant", "not-compliant") and phase in cells:
            if cells[phase]["compliant"] != (state == "compliant"):
                continue
        rows.append(
            {
                "code": code,
                "name": council["name"],
                "region": council["region"],
                "type": council["type"],
                "deployed": deployed,
                "phases": cells,
            }
        )
    totals = {p: sum(1 for r in rows if r["phases"][p]["compliant"]) for p in phases}
    return {
        "on": day,
        "phases": phases,
        "filters": {"region": region, "supplier": supplier, "phase": phase, "state": state, "q": q},
        "regions": sorted({c["region"] for c in snapshot.councils.values()}),
        "suppliers": sorted({v.supplier for v in snapshot.programme.versions.values()}),
        "rows": rows,
        "totals": totals,
        "shown": len(rows),
        "councils": len(snapshot.councils),
    }


def council_view(snapshot: Snapshot, code: int, on: dt.date | None = None) -> dict[str, Any] | None:
    council = snapshot.councils.get(code)
    if council is None:
        return None
    day = snapshot.today(on)
    history = []
    mine = [d for d in snapshot.deployments if d["council_code"] == code]
    from conformance.registry.rules import deployment_intervals

    spans = {dep.id: span for dep, span in deployment_intervals(snapshot.programme.deployments.get(code, ()))}
    for row in mine:
        span = spans.get(row["id"])
        history.append(
            snapshot.version_label(row["version_id"])
            | {
                "from": row["from_date"],
                "until": span[1] if span else row["from_date"],
                "superseded": span is None,
                "recorded_at": row["recorded_at"],
                "recorded_by": row["recorded_by"],
            }
        )
    statuses = []
    missing = []
    for rule in snapshot.programme.phases.values():
        status = snapshot.programme.status(code, rule.code, day)
        entry = snapshot.status_json(status) | {"deadline": rule.deadline}
        statuses.append(entry)
        if not status.compliant:
            when = (
                f"before the deadline {rule.deadline.isoformat()}" if rule.deadline and rule.deadline >= day else None
            )
            if rule.deadline and rule.deadline < day:
                when = f"the deadline {rule.deadline.isoformat()} has passed"
            missing.append({"phase": rule.code, "deadline": rule.deadline, "when": when, "reason": status.reason})
    versions = sorted({row["version_id"] for row in mine})
    certs = [
        cert.id
        for cert in sorted(
            (
                cert
                for v in versions
                for cert in snapshot.programme.certificates.get(v, ())
                if cert.council_code in (None, code)
            ),
            key=lambda cert: (cert.finished_on, cert.id),
            reverse=True,
        )
    ]
    proving_ids = {c["id"] for s in statuses for c in s["proving"] + s["local_qa"]}
    waivers = [
        _waiver_json(snapshot, w, day)
        for w in snapshot.waivers
        if w["certificate_id"] in proving_ids or w["certificate_id"] in certs[:20]
    ]
    return {
        "on": day,
        "council": council,
        "deployments": history,
        "status": statuses,
        "missing": missing,
        "certificates": [snapshot.cert_summary(cid) for cid in certs],
        "waivers": waivers,
    }


def _waiver_json(snapshot: Snapshot, waiver: Mapping[str, Any], day: dt.date) -> dict[str, Any]:
    cert = snapshot.certificates.get(waiver["certificate_id"])
    version = snapshot.programme.versions.get(cert.version_id) if cert else None
    return {
        "certificate": waiver["certificate_id"],
        "short": waiver["certificate_id"][:12],
        "requirement": waiver["requirement"],
        "reference": waiver["reference"],
        "reason": waiver["reason"],
        "expires": waiver["expires"],
        "days_left": (waiver["expires"] - day).days,
        "expired": waiver["expires"] < day,
        "supplier": version.supplier if version else None,
        "product": version.product if version else None,
        "version": version.version if version else None,
    }


def certificate_view(snapshot: Snapshot, cert_id: str, on: dt.date | None = None) -> dict[str, Any] | None:
    cert = snapshot.certificates.get(cert_id)
    row = snapshot.certificate_row(cert_id) if cert is not None else None
    if cert is None or row is None:
        return None
    day = snapshot.today(on)
    problems = {
        code: certificate_problem(cert, rule, snapshot.programme.ordinals, day)
        for code, rule in snapshot.programme.phases.items()
    }
    running = []
    for code in snapshot.councils:
        found = snapshot.programme.deployment_on(code, day)
        if found and found[0].version_id == row["version_id"]:
            running.append({"code": code, "name": snapshot.councils[code]["name"], "since": found[1]})
    return {
        "on": day,
        "certificate": {
            k: v
            for k, v in row.items()
            if k not in ("version_id",)  # internal
        }
        | {"short": cert_id[:12]},
        "proves": {code: problem is None for code, problem in problems.items()},
        "problems": {code: problem for code, problem in problems.items() if problem},
        "waivers": [_waiver_json(snapshot, w, day) for w in snapshot.waivers if w["certificate_id"] == cert_id],
        "councils_running": running,
        "report": f"certificates/{cert_id}/report.html",
        "bundle": f"certificates/{cert_id}/bundle.zip",
    }


def suppliers_view(snapshot: Snapshot, on: dt.date | None = None) -> dict[str, Any]:
    """Suppliers, their products and versions: certificates per phase and councils running each."""
    day = snapshot.today(on)
    running: Counter[int] = Counter()
    for council_code in snapshot.councils:
        found = snapshot.programme.deployment_on(council_code, day)
        if found:
            running[found[0].version_id] += 1
    tree: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    ordinals = snapshot.programme.ordinals
    for version in sorted(snapshot.programme.versions.values(), key=lambda v: (v.supplier, v.product, v.version)):
        certs: list[Cert] = snapshot.programme.certificates.get(version.id, [])
        phases: dict[str, dict[str, Any] | None] = {}
        for code, rule in snapshot.programme.phases.items():
            valid = [c for c in certs if not c.local_qa and certificate_problem(c, rule, ordinals, day) is None]
            best = max(
                valid,
                key=lambda c: ({"witnessed": 2, "self-assessed": 1}.get(c.assurance, 0), c.finished_on),
                default=None,
            )
            phases[code] = (
                {"certificate": best.short, "id": best.id, "assurance": best.assurance, "since": best.finished_on}
                if best
                else None
            )
        attempts = Counter(c.verdict for c in certs if not c.local_qa)
        tree[version.supplier][version.product].append(
            {
                "version": version.version,
                "version_id": version.id,
                "phases": phases,
                "certificates": len(certs),
                "attempts": dict(sorted(attempts.items())),
                "councils_running": running.get(version.id, 0),
            }
        )
    suppliers = [
        {
            "name": name,
            "products": [{"name": product, "versions": vs} for product, vs in sorted(products.items())],
            "councils_running": sum(v["councils_running"] for vs in products.values() for v in vs),
        }
        for name, products in sorted(tree.items())
    ]
    return {"on": day, "phases": list(snapshot.programme.phases), "suppliers": suppliers}


def waivers_view(snapshot: Snapshot, on: dt.date | None = None, days: int = WAIVER_HORIZON_DAYS) -> dict[str, Any]:
    """Waivers of valid certificates expiring within ``days``, and those expired in the last ``days``."""
    day = snapshot.today(on)
    relied: Counter[str] = Counter()
    for code in snapshot.councils:
        found = snapshot.programme.deployment_on(code, day)
        if found:
            for held in snapshot.programme.certificates.get(found[0].version_id, ()):
                relied[held.id] += 1
    expiring, expired = [], []
    for waiver in snapshot.waivers:
        cert = snapshot.certificates.get(waiver["certificate_id"])
        if cert is None or cert.revoked:
            continue
        entry = _waiver_json(snapshot, waiver, day) | {"councils": relied.get(waiver["certificate_id"], 0)}
        delta = (waiver["expires"] - day).days
        if 0 <= delta <= days:
            expiring.append(entry)
        elif -days <= delta < 0:
            expired.append(entry)
    return {"on": day, "days": days, "expiring": expiring, "expired": expired}


def export_rows(snapshot: Snapshot, on: dt.date | None = None) -> list[dict[str, Any]]:
    """One row per council and phase: the national status on a day (``registry export``)."""
    day = snapshot.today(on)
    rows = []
    for code, council in snapshot.councils.items():
        for rule in snapshot.programme.phases.values():
            status = snapshot.programme.status(code, rule.code, day)
            deployed = _deployed_on(snapshot, code, day)
            rows.append(
                {
                    "on": day,
                    "council_code": code,
                    "council": council["name"],
                    "region": council["region"],
                    "phase": rule.code,
                    "deadline": rule.deadline,
                    "compliant": status.compliant,
                    "supplier": deployed["supplier"] if deployed else None,
                    "product": deployed["product"] if deployed else None,
                    "version": deployed["version"] if deployed else None,
                    "deployed_since": deployed["since"] if deployed else None,
                    "certificates": " ".join(c.id for c in status.proving),
                    "reason": status.reason,
                }
            )
    return rows


def jsonable(value: Any) -> Any:
    """Dates and datetimes as ISO strings, recursively (for JSON output)."""
    if isinstance(value, dt.datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
