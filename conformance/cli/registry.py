"""``ics-conformance registry ...``: the certifier's registry of verified bundles.

Every action takes ``--db`` (a SQLite file, default ``registry.sqlite`` or ``$ICS_REGISTRY_DB``;
or a ``postgresql://`` URL). ``status`` exits 0 when the council is compliant and 1 when it is
not; ``submit`` exits 1 when a bundle is refused (nothing is stored); ``reverify`` exits 1 when
any stored bundle no longer verifies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

PHASES = ("1A", "1B", "1C")
LIST_WHAT = ("certificates", "councils", "deployments", "phases", "keys", "suppliers")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _deadline(text: str) -> dt.date | None:
    return None if text.lower() in ("none", "open", "") else _date(text)


def register(subparsers: Any) -> None:
    from conformance.registry.location import default_db  # not .db: --help imports no database driver

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=None,
        metavar="DB",
        help=f"SQLite file or postgresql:// URL (default ${'{'}ICS_REGISTRY_DB{'}'} or {default_db()})",
    )
    common.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser = subparsers.add_parser(
        "registry",
        help="the certifier's registry of verified bundles (submit, deploy, status, ...)",
        description=(
            "The certifier's side: a registry of verified certification bundles, the councils' deployments "
            "and the programme's phases and deadlines; answers 'is council C compliant for phase P on day D?'. "
            "Compliance rules: docs/design.md §10."
        ),
        epilog="Exit codes: 0 ok / compliant, 1 refused / not compliant / a bundle no longer verifies, 2 usage error.",
    )
    actions = parser.add_subparsers(dest="registry_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    p = actions.add_parser("init", parents=[common], help="create or upgrade the registry (councils, phases)")
    p.set_defaults(func=_init)

    p = actions.add_parser(
        "submit",
        parents=[common],
        help="verify bundles and store them with their certificates",
        description=(
            "Verify each bundle (directory or .zip) against the registered key its manifest names and store it, "
            "content-addressed by the sha256 of its manifest, with its certificate. An unverifiable bundle is "
            "refused with the reason and nothing of it is stored; submitting the same bundle again changes nothing."
        ),
    )
    p.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE")
    p.set_defaults(func=_submit)

    p = actions.add_parser("deploy", parents=[common], help="record which product version a council runs from a date")
    p.add_argument("--council", required=True, help="LA code (e.g. 383) or name")
    p.add_argument("--product", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--from", dest="from_date", required=True, type=_date, metavar="DATE")
    p.add_argument("--supplier", help="needed when the product is new to the registry or ambiguous")
    p.add_argument("--recorded-by", help="who records it (e.g. the council's ICS lead)")
    p.set_defaults(func=_deploy)

    p = actions.add_parser(
        "status",
        parents=[common],
        help="is council C compliant for phase P on a day? (exit 0 yes, 1 no)",
        description="Answer with the certificate(s) that prove it, or the reason it is not compliant.",
    )
    p.add_argument("--council", required=True, help="LA code or name")
    p.add_argument("--phase", required=True, choices=PHASES)
    p.add_argument("--on", type=_date, metavar="DATE", help="the day (default today)")
    p.set_defaults(func=_status)

    p = actions.add_parser("list", parents=[common], help="list certificates, councils, deployments, phases, keys")
    p.add_argument("what", nargs="?", default="certificates", choices=LIST_WHAT)
    p.add_argument("--phase", choices=PHASES, help="certificates of this phase only")
    p.add_argument("--supplier", help="certificates of this supplier only")
    p.add_argument("--council", help="deployments of this council only")
    p.set_defaults(func=_list)

    p = actions.add_parser("revoke", parents=[common], help="revoke a certificate (it proves nothing from then on)")
    p.add_argument("certificate", metavar="CERT", help="certificate id (a unique prefix of at least 6 hex digits)")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=_revoke)

    p = actions.add_parser(
        "reverify",
        parents=[common],
        help="re-check every stored bundle (e.g. after a key was revoked)",
        description=(
            "Re-verify every stored bundle: its stored bytes against the hash taken at submission, the "
            "signature with the registered key (a revoked key fails), every file's hash. A certificate whose "
            "bundle fails proves nothing until it verifies again."
        ),
    )
    p.set_defaults(func=_reverify)

    p = actions.add_parser("export", parents=[common], help="the national status per council and phase (CSV or JSON)")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--on", type=_date, metavar="DATE", help="the day (default today)")
    p.add_argument("--out", type=Path, metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=_export)

    p = actions.add_parser(
        "phase",
        parents=[common],
        help="show a phase, move its deadline (kept in its history) or change its rules",
    )
    p.add_argument("phase", choices=PHASES)
    p.add_argument(
        "--deadline",
        type=_deadline,
        default=argparse.SUPPRESS,
        metavar="DATE|none",
        help="the new deadline ('none': open)",
    )
    p.add_argument("--reason", help="why the deadline changes (required with --deadline)")
    p.add_argument("--local-qa", choices=("yes", "no"), help="require a council-run local QA certificate")
    p.add_argument("--min-assurance", choices=("self-assessed", "witnessed"))
    p.set_defaults(func=_phase)

    keys = actions.add_parser("keys", help="parties and their public keys (who may sign certificates)")
    key_actions = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    keys.set_defaults(func=lambda args: (keys.print_help(), 2)[1])
    k = key_actions.add_parser("add", parents=[common], help="register a party's Ed25519 public key")
    k.add_argument("--party", required=True, help="the party's name")
    k.add_argument("--role", required=True, choices=("certifier", "test_lab", "supplier", "council"))
    k.add_argument("--public-key", required=True, type=Path, metavar="PUBFILE")
    k.add_argument("--supplier", help="supplier role: the supplier name its certificates carry")
    k.add_argument("--council", help="council role: LA code or name")
    k.set_defaults(func=_keys_add)
    k = key_actions.add_parser("import", parents=[common], help="register the parties and keys of a parties file")
    k.add_argument("file", type=Path, metavar="PARTIES.yaml")
    k.set_defaults(func=_keys_import)
    k = key_actions.add_parser("revoke", parents=[common], help="revoke a key (run 'registry reverify' after)")
    k.add_argument("key_id", metavar="KEYID")
    k.add_argument("--reason", required=True)
    k.set_defaults(func=_keys_revoke)
    k = key_actions.add_parser("list", parents=[common], help="list parties and keys")
    k.set_defaults(func=lambda args: _list(argparse.Namespace(**vars(args), what="keys")))

    p = actions.add_parser(
        "demo",
        parents=[common],
        help="fill a registry with a synthetic programme (real certify runs, fictional suppliers)",
        description=(
            "Create demo keys, run a handful of real 'certify' runs of the built-in reference (clean and with "
            "injected faults), re-issue their results as bundles of fictional suppliers' products dated in the "
            "2007-2008 programme, submit them, and record deployments for the 150 councils. Runs are cached in "
            "--work, so a second demo is quick. Then: ics-conformance dashboard --db DB."
        ),
    )
    p.add_argument("--work", type=Path, default=Path("registry-demo"), metavar="DIR", help="keys and bundles")
    p.add_argument("--fresh", action="store_true", help="re-run certify even if cached results exist")
    p.set_defaults(func=_demo)


# --------------------------------------------------------------------------- helpers


def _registry(args: argparse.Namespace, *, ready: bool = True) -> Any:
    from conformance.registry.db import default_db
    from conformance.registry.store import Registry

    registry = Registry(args.db or default_db())
    if ready:
        registry.require_ready()
    return registry


def _p(value: Any) -> str:
    """Target-supplied text for a terminal: control characters shown escaped."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _emit(data: Any) -> None:
    from conformance.registry.national import jsonable

    print(json.dumps(jsonable(data), indent=2, sort_keys=True, ensure_ascii=False))


# --------------------------------------------------------------------------- actions


def _init(args: argparse.Namespace) -> int:
    with _registry(args, ready=False) as registry:
        report = registry.init()
        if args.json:
            _emit(report | {"db": registry.display_url})
            return 0
        before = report["revision_before"]
        state = "created" if before is None else ("upgraded" if before != report["revision"] else "up to date")
        print(f"registry {registry.display_url}: {state} (schema revision {report['revision']})")
        if report["councils_added"]:
            print(f"  councils: {report['councils_added']} added (England's councils with children's services, 2008)")
        if report["phases_added"]:
            print(f"  phases:   {report['phases_added']} added (1A, 1B, 1C with their deadline history)")
    return 0


def _submit(args: argparse.Namespace) -> int:
    from conformance.registry.intake import Refused

    refused = 0
    out = []
    with _registry(args) as registry:
        for bundle in args.bundles:
            try:
                outcome = registry.submit(bundle)
            except Refused as exc:
                refused += 1
                out.append({"bundle": str(bundle), "refused": exc.reason})
                if not args.json:
                    print(f"REFUSED: {_p(bundle)}: {_p(exc.reason)}")
                continue
            out.append({"bundle": str(bundle)} | outcome.to_json())
            if not args.json:
                what = "STORED" if outcome.created else "ALREADY STORED"
                print(
                    f"{what}: certificate {outcome.short} - phase {outcome.phase} {outcome.verdict.replace('_', ' ')}, "
                    f"{_p(outcome.supplier)} {_p(outcome.product)} {_p(outcome.version)}, "
                    f"{outcome.assurance}, signed by {_p(outcome.signer)} (key {outcome.key_id})"
                )
    if args.json:
        _emit(out)
    return 1 if refused else 0


def _deploy(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        recorded = registry.deploy(
            args.council,
            args.product,
            args.version,
            args.from_date,
            supplier=args.supplier,
            recorded_by=args.recorded_by,
        )
    if args.json:
        _emit(recorded)
    else:
        council = recorded["council"]
        print(
            f"recorded: {_p(council['name'])} ({council['code']}) runs {_p(recorded['supplier'])} "
            f"{_p(recorded['product'])} {_p(recorded['version'])} from {recorded['from']}"
        )
    return 0


def _status(args: argparse.Namespace) -> int:
    on = args.on or dt.date.today()
    with _registry(args) as registry:
        status, council = registry.status(args.council, args.phase, on)
        ids = [c.id for c in status.proving + status.local_qa] + [c.id for c, _ in status.rejected]
        rows = {r["id"]: r for r in registry.certificate_rows(ids=ids)} if ids else {}
        deadline = next((p["deadline"] for p in registry.phase_rows() if p["code"] == args.phase), None)
    if args.json:
        snapshot_like = {
            "council": {"code": council["code"], "name": council["name"]},
            "phase": args.phase,
            "on": on,
            "deadline": deadline,
            "compliant": status.compliant,
            "reason": status.reason,
            "proving": [_cert_json(rows[c.id]) for c in status.proving],
            "local_qa": [_cert_json(rows[c.id]) for c in status.local_qa],
            "not_proving": [_cert_json(rows[c.id]) | {"problem": p} for c, p in status.rejected],
        }
        _emit(snapshot_like)
        return 0 if status.compliant else 1
    answer = "YES" if status.compliant else "NO"
    verb = "is" if status.compliant else "is not"
    print(f"{answer}: {_p(council['name'])} ({council['code']}) {verb} compliant for phase {args.phase} on {on}")
    print(f"  {_p(status.reason)}")
    for cert in status.proving:
        print("  proven by " + _cert_line(rows[cert.id]))
    for cert in status.local_qa:
        print("  local QA  " + _cert_line(rows[cert.id]))
    if deadline:
        print(f"  deadline: {deadline}" + (" (passed)" if deadline < on else ""))
    return 0 if status.compliant else 1


def _cert_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "phase": row["phase"],
        "verdict": row["verdict"],
        "assurance": row["assurance"],
        "target": {"supplier": row["supplier"], "product": row["product"], "version": row["version"]},
        "signer": {"party": row["signer"], "role": row["signer_role"], "key_id": row["signer_key_id"]},
        "finished_at": row["finished_at"],
        "revoked": row["revoked_at"] is not None,
    }


def _cert_line(row: dict[str, Any]) -> str:
    return (
        f"certificate {row['id'][:12]}: phase {row['phase']} {row['verdict'].replace('_', ' ')}, {row['assurance']}, "
        f"signed by {_p(row['signer'])} (key {row['signer_key_id']}), run finished {row['finished_at']:%Y-%m-%d}"
    )


def _list(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        what = args.what
        if what == "certificates":
            rows = registry.certificate_rows(phase=args.phase, supplier=args.supplier)
            if args.json:
                _emit([_cert_json(r) for r in rows])
                return 0
            for r in rows:
                flags = " REVOKED" if r["revoked_at"] else ""
                flags += " REVERIFY-FAILED" if not r["verified_ok"] else ""
                print(
                    f"{r['id'][:12]}  {r['phase']}  {r['verdict']:<13} {r['assurance']:<13} {r['finished_at']:%Y-%m-%d}  "
                    f"{_p(r['supplier'])} / {_p(r['product'])} / {_p(r['version'])}  [{_p(r['signer'])}]{flags}"
                )
            print(f"{len(rows)} certificate(s)")
        elif what == "councils":
            rows = registry.councils()
            if args.json:
                _emit(rows)
                return 0
            for r in rows:
                print(f"{r['code']}  {r['name']}  ({r['type']}, {r['region']})")
            print(f"{len(rows)} councils")
        elif what == "deployments":
            code = registry.council(args.council)["code"] if args.council else None
            rows = registry.deployments_rows(code)
            if args.json:
                _emit(rows)
                return 0
            for r in rows:
                print(
                    f"{r['council_code']}  {_p(r['council'])}: from {r['from_date']} "
                    f"{_p(r['supplier'])} / {_p(r['product'])} / {_p(r['version'])}"
                )
            print(f"{len(rows)} deployment(s)")
        elif what == "phases":
            rows = registry.phase_rows()
            if args.json:
                _emit(rows)
                return 0
            for r in rows:
                rules = f"min assurance {r['min_assurance']}" + (
                    ", council local QA required" if r["requires_local_qa"] else ""
                )
                print(f"{r['code']}  deadline {r['deadline'] or 'open'}  ({rules})  {r['title']}")
                for h in r["history"]:
                    print(f"      {h['deadline'] or 'open'}: {_p(h['reason'])}")
        elif what == "keys":
            keys = registry.keys()
            if args.json:
                _emit(
                    [
                        {
                            "key_id": k.key_id,
                            "party": k.party,
                            "role": k.role,
                            "supplier": k.supplier,
                            "council": k.council_code,
                            "revoked_at": k.revoked_at,
                            "revoked_reason": k.revoked_reason,
                        }
                        for k in keys
                    ]
                )
                return 0
            for k in keys:
                scope = (
                    f" for {k.supplier}" if k.supplier else (f" for council {k.council_code}" if k.council_code else "")
                )
                revoked = f"  REVOKED {k.revoked_at:%Y-%m-%d}: {_p(k.revoked_reason)}" if k.revoked_at else ""
                print(f"{k.key_id}  {k.role:<9} {_p(k.party)}{_p(scope)}{revoked}")
        elif what == "suppliers":
            from conformance.registry.national import Snapshot, suppliers_view

            view = suppliers_view(Snapshot.load(registry))
            if args.json:
                _emit(view)
                return 0
            for s in view["suppliers"]:
                print(_p(s["name"]))
                for product in s["products"]:
                    for v in product["versions"]:
                        certified = ", ".join(f"{code} ({c['assurance']})" for code, c in v["phases"].items() if c)
                        print(f"  {_p(product['name'])} {_p(v['version'])}: {certified or 'no valid certificate'}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        done = registry.revoke(args.certificate, args.reason)
    if args.json:
        _emit(done)
    else:
        print(f"revoked: certificate {done['certificate'][:12]} ({_p(done['reason'])})")
    return 0


def _reverify(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        outcomes = registry.reverify()
    failed = [o for o in outcomes if not o.ok]
    if args.json:
        _emit(
            {
                "checked": len(outcomes),
                "failed": [{"certificate": o.certificate_id, "problem": o.problem} for o in failed],
            }
        )
    else:
        for o in failed:
            print(f"FAILED: certificate {o.certificate_id[:12]}: {_p(o.problem)}")
        for o in outcomes:
            if o.ok and not o.was_ok:
                print(f"verifies again: certificate {o.certificate_id[:12]}")
        print(f"{len(outcomes)} bundle(s) re-verified, {len(failed)} failed")
    return 1 if failed else 0


def _export(args: argparse.Namespace) -> int:
    import csv
    import io

    from conformance.registry.national import Snapshot, export_rows, jsonable

    with _registry(args) as registry:
        rows = export_rows(Snapshot.load(registry), args.on or dt.date.today())
    if args.format == "json":
        text = json.dumps(jsonable(rows), indent=2, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["on"], lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(v) for k, v in jsonable(row).items()})
        text = buffer.getvalue()
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _csv_cell(value: Any) -> Any:
    """Cells a spreadsheet would run as a formula are prefixed with a quote (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _phase(args: argparse.Namespace) -> int:
    from conformance.errors import UsageError

    moving = hasattr(args, "deadline")
    if moving != bool(args.reason):
        raise UsageError("--deadline and --reason go together (every change is kept in the phase's history)")
    changed = False
    with _registry(args) as registry:
        if moving:
            registry.set_deadline(args.phase, args.deadline, args.reason)
            changed = True
        if args.local_qa or args.min_assurance:
            registry.set_phase_rules(
                args.phase,
                requires_local_qa=None if args.local_qa is None else args.local_qa == "yes",
                min_assurance=args.min_assurance,
            )
            changed = True
        row = next(r for r in registry.phase_rows() if r["code"] == args.phase)
    if args.json:
        _emit(row)
        return 0
    print(f"{'changed: ' if changed else ''}phase {row['code']}: {row['title']}")
    print(f"  deadline: {row['deadline'] or 'open'}")
    local = "required" if row["requires_local_qa"] else "not required"
    print(f"  rules: min assurance {row['min_assurance']}; council local QA {local}")
    for h in row["history"]:
        print(f"  history: {h['deadline'] or 'open'} - {_p(h['reason'])}")
    return 0


def _keys_add(args: argparse.Namespace) -> int:
    from conformance.errors import UsageError

    try:
        pem = args.public_key.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{args.public_key}: cannot read the public key ({exc})") from None
    with _registry(args) as registry:
        info = registry.add_key(args.party, args.role, pem, supplier=args.supplier, council=args.council)
    if args.json:
        _emit({"key_id": info.key_id, "party": info.party, "role": info.role})
    else:
        print(f"registered key {info.key_id} for {_p(info.party)} ({info.role})")
    return 0


def _keys_import(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        infos = registry.import_parties(args.file)
    if args.json:
        _emit([{"key_id": i.key_id, "party": i.party, "role": i.role} for i in infos])
    else:
        for info in infos:
            print(f"registered key {info.key_id} for {_p(info.party)} ({info.role})")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        info = registry.revoke_key(args.key_id, args.reason)
    if args.json:
        _emit({"key_id": info.key_id, "revoked_at": info.revoked_at, "reason": info.revoked_reason})
    else:
        print(f"revoked key {info.key_id} ({_p(info.party)}); run 'registry reverify' to re-check its bundles")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from conformance.registry.demo import run_demo

    with _registry(args, ready=False) as registry:
        summary = run_demo(registry, args.work, fresh=args.fresh, log=None if args.json else print)
    if args.json:
        _emit(summary)
    return 0
