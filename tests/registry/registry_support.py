"""Helpers for the registry tests: keys, bundles re-issued from one real certify run, counts."""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from conformance.certificate.signing import generate_keypair
from conformance.registry import schema as t
from conformance.registry.demo import Run, reissue
from conformance.registry.store import Registry
from conformance.results.verdicts import PhaseVerdict, Verdict, phase_verdict

PARTIES = {
    "lab": ("Example Test Lab (fictional)", "test_lab", None, None),
    "acme": ("Acme Demo Ltd", "supplier", "Acme Demo Ltd", None),
    "zenith": ("Zenith Demo plc", "supplier", "Zenith Demo plc", None),
    "leeds": ("Leeds ICS team (demo key)", "council", None, "383"),
    "dcsf": ("DCSF (demo key)", "certifier", None, None),
}


def make_keys(folder: Path) -> dict[str, tuple[Path, Path]]:
    out = {}
    for name in PARTIES:
        private, public = folder / name / "ed25519-private.pem", folder / name / "ed25519-public.pem"
        if not private.is_file():
            private, public = generate_keypair(folder / name, force=True)
        out[name] = (private, public)
    return out


def register_parties(registry: Registry, keys: dict[str, tuple[Path, Path]]) -> None:
    for name, (party, role, supplier, council) in PARTIES.items():
        registry.add_key(party, role, keys[name][1].read_text(), supplier=supplier, council=council)


def variant(result: dict[str, Any], *, phase: str | None = None, fail: tuple[str, ...] = ()) -> dict[str, Any]:
    """A copy of a real result for another phase (requirements of later phases dropped) or with
    some requirements (and their checks) turned FAIL; counts and phase verdict recomputed."""
    out = copy.deepcopy(result)
    if phase is not None:
        order = {"1A": 1, "1B": 2, "1C": 3}
        out["phase"] = phase
        out["requirements"] = [r for r in out["requirements"] if order[r["phase"]] <= order[phase]]
    for requirement in out["requirements"]:
        if requirement["id"] in fail:
            requirement["verdict"] = Verdict.FAIL.value
            for check in requirement.get("checks") or []:
                check["verdict"] = Verdict.FAIL.value
                check["message"] = "synthetic failure for the registry tests"
    counts = Counter(r["verdict"] for r in out["requirements"])
    areas: dict[str, Counter[str]] = defaultdict(Counter)
    for r in out["requirements"]:
        areas[r["area"]][r["verdict"]] += 1
    verdict = phase_verdict((r["level"], Verdict(r["verdict"])) for r in out["requirements"])
    if out.get("errors") and verdict is PhaseVerdict.CERTIFIED:
        verdict = PhaseVerdict.INCONCLUSIVE
    out["verdict"] = verdict.value
    out["counts"] = dict(sorted(counts.items()))
    out["areas"] = {area: dict(sorted(c.items())) for area, c in sorted(areas.items())}
    return out


def issue(
    result: dict[str, Any],
    out_dir: Path,
    key: Path,
    *,
    supplier: str = "Acme Demo Ltd",
    product: str = "CaseBook Demo",
    version: str = "1.0",
    finished: str = "2008-01-15",
    phase: str | None = None,
    fail: tuple[str, ...] = (),
    waiver_set: Any = None,
) -> Path:
    """A signed bundle zip of ``result`` re-issued for a product and day (see registry.demo.reissue)."""
    changed = variant(result, phase=phase, fail=fail) if (phase or fail) else result
    return reissue(
        Run("test", changed, None),
        supplier=supplier,
        product=product,
        version=version,
        finished=dt.datetime.combine(dt.date.fromisoformat(finished), dt.time(12, 0)),
        sign_key=key,
        out_dir=out_dir,
        waiver_set=waiver_set,
    )


def counts(registry: Registry) -> dict[str, int]:
    with registry.engine.connect() as c:
        return {
            name: int(c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            for name, table in (
                ("bundles", t.bundles),
                ("certificates", t.certificates),
                ("waivers", t.waivers),
                ("versions", t.versions),
            )
        }
