"""``ics-conformance verify BUNDLE --keyring FILE``: check a bundle offline and say what it proves."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify a certification bundle offline",
        description=(
            "Check a bundle (directory or .zip; both give the same result) offline: its form, the Ed25519 "
            "signature over manifest.json, every file's sha256 and size, the signer's role and scope in the "
            "keyring and the assurance level (witnessed or self-assessed), the requirement and phase verdicts "
            "re-derived from the checks, every applied waiver against the department's keys, the report "
            "against the certificate, and capability overrides. Exit 0 when everything holds (what the bundle "
            "proves is printed), 1 naming the first problem, 2 when the bundle, keyring or key cannot be read."
        ),
    )
    parser.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory or .zip")
    parser.add_argument(
        "--keyring",
        type=Path,
        metavar="FILE",
        help="trusted keys with party, role and scope (YAML/JSON): names the signer and the assurance level",
    )
    parser.add_argument(
        "--key",
        type=Path,
        metavar="PUBFILE",
        help="Ed25519 public key (PEM) the bundle must be signed with (alone: integrity only, no assurance level)",
    )
    parser.add_argument("--expect-supplier", metavar="NAME", help="refuse unless the target's supplier is NAME")
    parser.add_argument("--expect-product", metavar="NAME", help="refuse unless the target's product is NAME")
    parser.add_argument("--expect-version", metavar="VERSION", help="refuse unless the target's version is VERSION")
    parser.add_argument(
        "--max-age", type=float, metavar="DAYS", help="refuse a run that finished more than DAYS days ago"
    )
    parser.add_argument(
        "--allow-capability-override",
        action="store_true",
        help="accept a run whose capability statement weakened what the target declares (still printed)",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.set_defaults(func=_verify)


def _printable(value: Any) -> str:
    """Target-supplied text for a terminal: control characters shown escaped."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _flag(value: Any) -> str:
    return "true" if value is True else "false" if value is False else _printable(value)


def _verify(args: argparse.Namespace) -> int:
    from conformance.certificate.verify import verify_bundle
    from conformance.errors import UsageError

    if args.keyring is None and args.key is None:
        raise UsageError("verify needs --keyring FILE (who signed, at which assurance level) or --key PUBFILE")
    if args.max_age is not None and not args.max_age >= 0:
        raise UsageError(f"--max-age {args.max_age}: must be a number of days >= 0")
    outcome = verify_bundle(
        args.bundle,
        args.key,
        keyring=args.keyring,
        expect_supplier=args.expect_supplier,
        expect_product=args.expect_product,
        expect_version=args.expect_version,
        max_age_days=args.max_age,
        allow_capability_override=args.allow_capability_override,
    )
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2, sort_keys=True))
        return 0 if outcome.ok else 1
    if not outcome.ok:
        print(f"NOT VERIFIED: {_printable(outcome.bad_file)}: {_printable(outcome.problem)}")
        return 1
    for line in summary(outcome):
        print(line)
    sys.stdout.flush()
    return 0


def adapter_lines(adapter: Any) -> list[str]:
    """The supplier adapter a verified run went through, and whether the one installed here is the same code."""
    if not isinstance(adapter, dict):
        return []
    from conformance.results.result import adapter_text

    lines = [f"adapter:   tested through adapter {_printable(adapter_text({'adapter': adapter}))}"]
    from conformance.adapters.registry import installed, load
    from conformance.errors import UsageError

    if adapter.get("name") in installed():
        try:
            here = load(str(adapter.get("name"))).record
        except UsageError as exc:
            lines.append(f"           (the adapter installed here under that name cannot be loaded: {_printable(exc)})")
        else:
            same = here["sha256"] == adapter.get("sha256")
            lines.append(
                "           the adapter installed here under that name is the same code (same sha256)"
                if same
                else f"           the adapter installed here under that name is other code: version "
                f"{_printable(here['version'])}, sha256 {here['sha256']}"
            )
    return lines


def summary(outcome: Any) -> list[str]:
    """What a verified bundle proves, line by line."""
    target = outcome.target
    who = " ".join(_printable(target.get(k)) for k in ("supplier", "product", "version") if target.get(k))
    signer = outcome.signer or {}
    lines = [f"VERIFIED: {_printable(outcome.bundle)} ({outcome.files_checked} files, signed by key {outcome.key_id})"]
    if outcome.assurance is None:
        lines.append("assurance: NOT ESTABLISHED (no keyring: the signer is not identified; use --keyring)")
    else:
        party = f"{_printable(signer.get('party'))} ({_printable(signer.get('role'))}, key {outcome.key_id})"
        if outcome.assurance == "witnessed":
            lines.append(f"assurance: WITNESSED: run and signed by {party}, independent of the supplier")
        else:
            lines.append(f"assurance: SELF-ASSESSED: run and signed by {party} for its own system")
    lines += [
        f"verdict:   {_printable(outcome.verdict)}",
        f"phase:     {_printable(outcome.phase)} (run {_printable(outcome.run_id)})",
        f"target:    {who or 'unknown'}" + (f" <{_printable(target['url'])}>" if target.get("url") else ""),
        f"council:   {_printable(outcome.council) if outcome.council else '(none recorded)'}",
        *adapter_lines(outcome.adapter),
        f"harness:   ics-conformance {_printable(outcome.harness_version)}",
        f"spec:      {_printable(outcome.spec_version)} (sha256 {_printable(outcome.spec_sha256)})",
    ]
    used = ", ".join(f"{_printable(k)}={_flag(v)}" for k, v in sorted(outcome.capabilities.items())) or "(none)"
    lines.append(f"capabilities used: {used}")
    if outcome.declared_capabilities is None:
        lines.append("capabilities declared in /about: (no /about)")
    elif not outcome.capability_overrides:
        lines.append("capabilities declared in /about: the same (no override)")
    else:
        for diff in outcome.capability_overrides:
            loud = "  CAPABILITY OVERRIDE (weakens the run)" if diff["weakens"] else "  capability override"
            lines.append(
                f"{loud}: {_printable(diff['capability'])} declared {_flag(diff['declared'])} in /about, "
                f"used {_flag(diff['used'])}"
            )
    if outcome.not_applicable_musts:
        lines.append(f"MUST requirements NOT_APPLICABLE: {len(outcome.not_applicable_musts)}")
        for item in outcome.not_applicable_musts:
            lines.append(f"  {_printable(item['id'])} (capability {_printable(item['capability'])} not used)")
    else:
        lines.append("MUST requirements NOT_APPLICABLE: none")
    if outcome.waivers:
        lines.append(f"waivers:   {len(outcome.waivers)} applied, each re-checked against the signed waiver file")
        for waiver in outcome.waivers:
            by = waiver.get("signed_by") or {}
            lines.append(
                f"  {_printable(waiver.get('requirement'))} {_printable(waiver.get('reference'))} "
                f"until {_printable(waiver.get('expires'))}, signed by {_printable(by.get('party'))} "
                f"({_printable(by.get('role'))}, key {_printable(by.get('key_id'))})"
            )
    else:
        lines.append("waivers:   none applied")
    local = outcome.local_profile
    if local:
        code = f" ({_printable(local.get('code'))})" if local.get("code") else ""
        lines.append(
            f"local:     {_printable(local.get('verdict'))} (never merged into the verdict above) against the local "
            f"profile of {_printable(local.get('council'))}{code}, {_printable(local.get('file'))} "
            f"sha256 {_printable(local.get('sha256'))}: re-derived from the profile carried in the bundle"
        )
        for deviation in local.get("deviations") or []:
            lines.append(f"  deviation: {_printable(deviation.get('text'))}")
    if outcome.rerendered:
        lines.append(
            "report:    report.html, junit.xml, allure-results/ and evidence/ re-rendered from certificate.json: identical"
        )
    for note in outcome.notes:
        lines.append(f"note:      {_printable(note)}")
    return lines
