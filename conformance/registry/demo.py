"""``registry demo``: a synthetic ICS programme built from real certify runs.

What is real and what is not:

- **Real**: the verdicts. A handful of ``ics-conformance certify`` runs of the built-in reference
  service — clean, and with injected faults (``--reference-fault``) — made by this installation,
  signed by a demo test-lab key. Their bundles are submitted untouched (they appear as the
  reference service's own certificates, dated when they ran).
- **Synthetic**: the programme. The suppliers, products and versions are fictional (every name
  says "Demo"); each of their certificates is one of those real results **re-issued** through the
  harness's own bundle writer with the product's identity in ``target.about``, the run dates moved
  into 2006-2009, and the supplier's (or test lab's, or a council's) demo key as signer. Each
  re-issued certificate keeps ``builtin_reference: true`` and its fault list, and its ``command``
  says it was re-issued. Waivers are real waiver files signed by the demo DCSF key and applied
  by :func:`conformance.certificate.waivers.apply_waivers`. Deployments of the 150 councils are
  drawn from a seeded random generator so that, as in 2008, 55 councils are compliant for 1B on
  31 March 2008 and about 85% on 30 September 2008.

Keys and bundles go to the work directory (``--work``); certify results are cached there, so a
second demo (on a new database) takes seconds.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.errors import UsageError
from conformance.registry.store import Registry

Log = Callable[[str], Any] | None

DEMO_SEED = 2008
VIEW_DATE = dt.date(2008, 10, 15)

#: kind -> (phase, injected faults). Each is one real certify run of the built-in reference.
RUNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "1A-clean": ("1A", ()),
    "1B-clean": ("1B", ()),
    "1B-search-fault": ("1B", ("search-accent-sensitive",)),
    "1B-gating-fault": ("1B", ("gating-off",)),
    "1C-draft": ("1C", ()),
}

DCSF = "DCSF ICS certification team (demo key)"
LAB = "Demo Test Lab Ltd (fictional, independent)"

#: supplier -> (product, number of councils)
SUPPLIERS: dict[str, tuple[str, int]] = {
    "Alpha Demo Systems Ltd": ("CaseBook Demo", 45),
    "Bravo Demo Software plc": ("ChildView Demo", 40),
    "Charlie Demo Care Ltd": ("CareFile Demo", 35),
    "Delta Demo Records Ltd": ("SafeKeep Demo", 30),
}


@dataclass(frozen=True)
class Issue:
    """One re-issued certificate of the demo programme."""

    supplier: str
    version: str
    run: str
    finished: dt.datetime
    signer: str  # party name
    waive_until: dt.date | None = None
    revoke: str | None = None


def _at(day: str, hour: int = 11) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, 0))


ISSUES: tuple[Issue, ...] = (
    Issue("Alpha Demo Systems Ltd", "3.0", "1A-clean", _at("2006-11-20"), "Alpha Demo Systems Ltd"),
    Issue("Alpha Demo Systems Ltd", "3.5", "1B-clean", _at("2008-01-15"), "Alpha Demo Systems Ltd"),
    Issue("Alpha Demo Systems Ltd", "4.0", "1C-draft", _at("2009-02-16"), "Alpha Demo Systems Ltd"),
    Issue("Bravo Demo Software plc", "7.1", "1A-clean", _at("2006-12-10"), "Bravo Demo Software plc"),
    Issue("Bravo Demo Software plc", "7.2", "1B-search-fault", _at("2008-03-05"), "Bravo Demo Software plc"),
    Issue("Bravo Demo Software plc", "7.3", "1B-clean", _at("2008-06-20"), LAB),
    Issue("Charlie Demo Care Ltd", "2.0", "1A-clean", _at("2006-12-15"), "Charlie Demo Care Ltd"),
    Issue("Charlie Demo Care Ltd", "2.1", "1B-gating-fault", _at("2008-02-10"), "Charlie Demo Care Ltd"),
    Issue(
        "Charlie Demo Care Ltd",
        "2.2",
        "1B-search-fault",
        _at("2008-03-10"),
        "Charlie Demo Care Ltd",
        waive_until=dt.date(2008, 12, 31),
    ),
    Issue("Charlie Demo Care Ltd", "2.3", "1B-clean", _at("2008-11-20"), "Charlie Demo Care Ltd"),
    Issue(
        "Delta Demo Records Ltd",
        "1.0",
        "1A-clean",
        _at("2007-01-20"),
        "Delta Demo Records Ltd",
        revoke="re-run requested: the run used a capability statement the product does not declare",
    ),
    Issue("Delta Demo Records Ltd", "1.0", "1A-clean", _at("2007-02-05", 15), "Delta Demo Records Ltd"),
    Issue("Delta Demo Records Ltd", "1.1", "1B-clean", _at("2008-09-10"), "Delta Demo Records Ltd"),
)

#: supplier -> [(version, number of councils, first day, last day)] in deployment order.
#: Each council of the supplier moves through the waves in turn.
WAVES: dict[str, list[tuple[str, int, str, str]]] = {
    "Alpha Demo Systems Ltd": [
        ("3.0", 45, "2006-09-01", "2006-12-20"),
        ("3.5", 42, "2008-01-20", "2008-03-28"),
        ("3.5", 3, "2008-04-15", "2008-06-30"),
    ],
    "Bravo Demo Software plc": [
        ("7.1", 40, "2006-10-01", "2006-12-28"),
        ("7.2", 25, "2008-03-10", "2008-03-30"),
        ("7.3", 35, "2008-06-25", "2008-09-25"),
        ("7.3", 5, "2008-10-10", "2008-12-15"),
    ],
    "Charlie Demo Care Ltd": [
        ("2.0", 35, "2006-11-01", "2007-01-20"),
        ("2.2", 13, "2008-03-12", "2008-03-28"),
        ("2.2", 17, "2008-04-01", "2008-09-20"),
        ("2.2", 5, "2008-10-05", "2008-11-30"),
        ("2.3", 25, "2008-11-25", "2008-12-30"),
        ("2.3", 10, "2009-01-10", "2009-03-31"),
    ],
    "Delta Demo Records Ltd": [
        ("1.0", 30, "2006-12-01", "2007-02-20"),
        ("1.1", 18, "2008-09-12", "2008-09-29"),
        ("1.1", 12, "2008-10-01", "2008-12-20"),
    ],
}

#: Councils that also run their own local QA of the version they deploy (council-signed certificates).
LOCAL_QA_COUNCILS = 2


@dataclass(frozen=True)
class Run:
    """One real certify run: its result and, when kept, its signed bundle zip."""

    kind: str
    result: dict[str, Any]
    bundle_zip: Path | None


def _say(log: Log, message: str) -> None:
    if log is not None:
        log(message)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --------------------------------------------------------------------------- keys


def demo_keys(work: Path, councils: list[tuple[int, str]]) -> dict[str, tuple[Path, Path]]:
    """party name -> (private key, public key); generated once under ``work/keys``."""
    from conformance.certificate.signing import generate_keypair

    parties = [DCSF, LAB, *SUPPLIERS] + [_council_party(name) for _, name in councils]
    out = {}
    for party in parties:
        folder = work / "keys" / _slug(party)
        private, public = folder / "ed25519-private.pem", folder / "ed25519-public.pem"
        if not (private.is_file() and public.is_file()):
            private, public = generate_keypair(folder, force=True)
        out[party] = (private, public)
    return out


def _council_party(name: str) -> str:
    return f"{name} children's services ICS team (demo key)"


def write_parties_file(work: Path, keys: Mapping[str, tuple[Path, Path]], councils: list[tuple[int, str]]) -> Path:
    """The demo's parties file (the format ``registry keys import`` reads)."""
    import yaml

    entries: list[dict[str, Any]] = [
        {"name": DCSF, "role": "certifier", "keys": [str(keys[DCSF][1].relative_to(work))]},
        {"name": LAB, "role": "test_lab", "keys": [str(keys[LAB][1].relative_to(work))]},
    ]
    for supplier in SUPPLIERS:
        entries.append(
            {
                "name": supplier,
                "role": "supplier",
                "supplier": supplier,
                "keys": [str(keys[supplier][1].relative_to(work))],
            }
        )
    for code, name in councils:
        party = _council_party(name)
        entries.append(
            {"name": party, "role": "council", "council": code, "keys": [str(keys[party][1].relative_to(work))]}
        )
    path = work / "parties.yaml"
    path.write_text(
        "# Parties and public keys of the registry demo (all fictional); 'registry keys import' reads this.\n"
        + yaml.safe_dump({"format": "ics-conformance/registry-parties/1", "parties": entries}, sort_keys=False),
        encoding="utf-8",
    )
    return path


# --------------------------------------------------------------------------- real runs


def certify_runs(work: Path, lab_key: Path, *, fresh: bool = False, log: Log = None) -> dict[str, Run]:
    """One real certify run per :data:`RUNS` kind (cached under ``work/runs/KIND``)."""
    runs = {}
    for kind, (phase, faults) in RUNS.items():
        folder = work / "runs" / kind
        found = None if fresh else _cached_run(folder)
        if found is None:
            _say(
                log,
                f"certify: phase {phase} of the built-in reference{' with ' + ', '.join(faults) if faults else ''} ...",
            )
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            command = [
                sys.executable,
                "-m",
                "conformance",
                "certify",
                "--phase",
                phase,
                "--quiet",
                "--seed",
                str(DEMO_SEED),
            ]
            command += [
                "--output",
                str(folder),
                "--sign-key",
                str(lab_key),
                "--keyring",
                str(_lab_keyring(work, lab_key)),
            ]
            for fault in faults:
                command += ["--reference-fault", fault]
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
            if done.returncode not in (0, 1, 3):
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise UsageError(
                    f"registry demo: certify ({kind}) failed with exit {done.returncode}: {' | '.join(tail)}"
                )
            found = _cached_run(folder)
            if found is None:
                raise UsageError(f"registry demo: certify ({kind}) wrote no result and bundle under {folder}")
        result_path, zip_path = found
        result = json.loads(result_path.read_text(encoding="utf-8"))
        _say(log, f"  {kind}: {result.get('verdict')} (run {result.get('run_id')})")
        runs[kind] = Run(kind, result, zip_path)
    return runs


def _lab_keyring(work: Path, lab_key: Path) -> Path:
    """A keyring naming the demo test lab, so certify records the signer and its assurance level."""
    import yaml

    public = (lab_key.parent / "ed25519-public.pem").read_text(encoding="ascii")
    path = work / "lab-keyring.yaml"
    entry = {"party": LAB, "role": "test-lab", "public_key": public}
    path.write_text(yaml.safe_dump({"format": "ics-conformance/keyring/1", "keys": [entry]}), encoding="utf-8")
    return path


def _cached_run(folder: Path) -> tuple[Path, Path] | None:
    results = sorted(folder.glob("*/result.json"))
    if not results:
        return None
    zips = sorted(results[-1].parent.glob("*.zip"))
    return (results[-1], zips[-1]) if zips else None


# --------------------------------------------------------------------------- re-issue


def reissue(
    run: Run,
    *,
    supplier: str,
    product: str,
    version: str,
    finished: dt.datetime,
    sign_key: Path,
    out_dir: Path,
    waiver_set: Any = None,
    council: str | None = None,
    keyring: Any = None,
) -> Path:
    """Write ``run``'s result as a bundle of another product and date (see the module docstring).

    ``waiver_set``: ``(WaiverSet, signed file bytes)`` applied and carried in the bundle;
    ``council``: the council the run is recorded for (a council's local QA)."""
    from conformance.certificate.bundle import write_bundle

    result = copy.deepcopy(run.result)

    def parse(value: Any) -> dt.datetime | None:
        try:
            return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            return None

    started, ended = parse(result.get("started_at")), parse(result.get("finished_at"))
    duration = (ended - started) if started and ended else dt.timedelta(seconds=20)
    result["started_at"] = (finished - duration).strftime("%Y-%m-%dT%H:%M:%SZ")
    result["finished_at"] = finished.strftime("%Y-%m-%dT%H:%M:%SZ")
    target = result.setdefault("target", {})
    target["about"] = dict(target.get("about") or {}, supplier=supplier, product=product, version=version)
    result["command"] = (
        f"{result.get('command', 'ics-conformance certify')}  "
        f"# registry demo: run {run.result.get('run_id')} re-issued as {supplier} {product} {version}, dated {finished:%Y-%m-%d}"
    )
    if council is not None:
        result["council"] = council
    waiver_bytes = None
    if waiver_set is not None:
        from conformance.certificate.waivers import apply_waivers

        waivers, waiver_bytes = waiver_set
        result = apply_waivers(result, waivers, target_about=target["about"], council=council, today=finished.date())
    bundle = write_bundle(
        result,
        out_dir,
        sign_key=sign_key,
        name=f"demo-{_slug(supplier)}-{_slug(version)}-{finished:%Y%m%d%H}",
        waiver_file=waiver_bytes,
        keyring=keyring,
    )
    return bundle.zip_path


def demo_waivers(
    run: Run,
    *,
    supplier: str,
    product: str,
    version: str,
    until: dt.date,
    issued: dt.date,
    keys: tuple[Path, Path],
    out: Path,
) -> Any:
    """A DCSF-signed waiver file covering every MUST/SHOULD that FAILed in ``run``, loaded and verified."""
    import yaml

    from conformance.certificate.waivers import load_waivers, sign_waivers

    failed = [r["id"] for r in run.result.get("requirements", []) if r.get("verdict") == "FAIL"]
    if not failed:
        return None
    document = {
        "format": "ics-conformance/waivers/1",
        "issued_by": DCSF,
        "issued_at": issued.isoformat(),
        "waivers": [
            {
                "requirement": rid,
                "scope": {"supplier": supplier, "product": product, "versions": f"=={version}"},
                "reason": "accent-insensitive search fix scheduled in the next release; staff trained to search unaccented spellings",
                "reference": f"DCSF-W-2008-{index + 17:03d}",
                "expires": until.isoformat(),
            }
            for index, rid in enumerate(failed)
        ],
    }
    out.mkdir(parents=True, exist_ok=True)
    source = out / f"waivers-{_slug(supplier)}-{_slug(version)}.yaml"
    source.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    signed = sign_waivers(source, keys[0])
    return load_waivers(signed, keys[1], today=issued), signed.read_bytes()


# --------------------------------------------------------------------------- programme


def build_programme(registry: Registry, work: Path, runs: Mapping[str, Run], *, log: Log = None) -> dict[str, Any]:
    """Fill ``registry`` (initialised, empty) with the demo programme from ``runs``."""
    registry.init()
    if registry.deployments_rows():
        raise UsageError(
            f"registry {registry.display_url} already holds deployments; the demo fills a new registry (use another --db)"
        )
    rng = random.Random(DEMO_SEED)
    councils = [(c["code"], c["name"]) for c in registry.councils()]
    rng.shuffle(councils)
    assigned: dict[str, list[tuple[int, str]]] = {}
    start = 0
    for supplier, (_, count) in SUPPLIERS.items():
        assigned[supplier] = councils[start : start + count]
        start += count
    local_qa = assigned["Alpha Demo Systems Ltd"][:LOCAL_QA_COUNCILS]

    work.mkdir(parents=True, exist_ok=True)
    keys = demo_keys(work, local_qa)
    parties = write_parties_file(work, keys, local_qa)
    registry.import_parties(parties)
    from conformance.registry.intake import keyring_of

    keyring = keyring_of(registry.keys())
    _say(log, f"parties and keys: {len(keys)} registered from {parties}")

    submitted = 0
    for kind, run in runs.items():
        if run.bundle_zip is not None:
            outcome = registry.submit(run.bundle_zip)
            submitted += 1
            _say(log, f"real bundle {kind}: certificate {outcome.short} ({outcome.verdict}, {outcome.assurance})")

    bundles = work / "bundles"
    if bundles.exists():
        import shutil

        shutil.rmtree(bundles)
    certificates: dict[tuple[str, str], str] = {}
    for issue in ISSUES:
        if issue.run not in runs:
            _say(log, f"skipped {issue.supplier} {issue.version}: no {issue.run} run")
            continue
        product = SUPPLIERS[issue.supplier][0]
        waiver_set = None
        if issue.waive_until is not None:
            waiver_set = demo_waivers(
                runs[issue.run],
                supplier=issue.supplier,
                product=product,
                version=issue.version,
                until=issue.waive_until,
                issued=issue.finished.date() - dt.timedelta(days=3),
                keys=keys[DCSF],
                out=work / "waivers",
            )
        path = reissue(
            runs[issue.run],
            supplier=issue.supplier,
            product=product,
            version=issue.version,
            finished=issue.finished,
            sign_key=keys[issue.signer][0],
            out_dir=bundles,
            waiver_set=waiver_set,
            keyring=keyring,
        )
        outcome = registry.submit(path)
        submitted += 1
        certificates[(issue.supplier, issue.version)] = outcome.certificate_id
        if issue.revoke:
            registry.revoke(outcome.certificate_id, issue.revoke)
        _say(
            log,
            f"{issue.supplier} {product} {issue.version}: phase {outcome.phase} {outcome.verdict} "
            f"({outcome.assurance}){' with waivers' if waiver_set else ''}{' - revoked' if issue.revoke else ''}",
        )

    deployments = 0
    first_upgrade: dict[int, tuple[str, dt.date]] = {}
    for supplier, waves in WAVES.items():
        product = SUPPLIERS[supplier][0]
        members = list(assigned[supplier])
        position: dict[str, int] = {}
        for version, count, first, last in waves:
            # Councils move through the waves in order: a wave of version V takes the next councils not yet on V.
            offset = position.get(version, 0)
            group = members[offset : offset + count]
            position[version] = offset + count
            lo, hi = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
            for code, _ in group:
                day = lo + dt.timedelta(days=rng.randint(0, (hi - lo).days))
                registry.deploy(str(code), product, version, day, supplier=supplier, recorded_by="registry demo")
                deployments += 1
                if version != waves[0][0]:
                    first_upgrade.setdefault(code, (version, day))

    for code, name in local_qa:
        version, day = first_upgrade[code]
        path = reissue(
            runs["1B-clean"],
            supplier="Alpha Demo Systems Ltd",
            product=SUPPLIERS["Alpha Demo Systems Ltd"][0],
            version=version,
            finished=dt.datetime.combine(day + dt.timedelta(days=7), dt.time(14, 0)),
            sign_key=keys[_council_party(name)][0],
            out_dir=bundles,
            council=name,
            keyring=keyring,
        )
        outcome = registry.submit(path)
        submitted += 1
        _say(log, f"local QA by {name} ({code}) of {version}: certificate {outcome.short} ({outcome.verdict})")

    registry.set_view_date(VIEW_DATE)
    summary = {
        "db": registry.display_url,
        "work": str(work),
        "certificates": submitted,
        "deployments": deployments,
        "councils": len(councils),
        "view_date": VIEW_DATE.isoformat(),
    }
    _say(log, f"demo programme: {submitted} certificates, {deployments} deployments over {len(councils)} councils")
    _say(log, f"dashboard: ics-conformance dashboard --db {registry.display_url}  (shown as on {VIEW_DATE})")
    _say(
        log,
        f"status:    ics-conformance registry status --db {registry.display_url} --council 383 --phase 1B --on 2008-09-30",
    )
    return summary


def run_demo(registry: Registry, work: Path, *, fresh: bool = False, log: Log = None) -> dict[str, Any]:
    """``registry demo``: keys, real certify runs (cached), then :func:`build_programme`."""
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    registry.init()
    if registry.deployments_rows():
        raise UsageError(
            f"registry {registry.display_url} already holds deployments; the demo fills a new registry (use another --db)"
        )
    keys = demo_keys(work, [])
    runs = certify_runs(work, keys[LAB][0], fresh=fresh, log=log)
    return build_programme(registry, work, runs, log=log)
