"""The proof that a run against a real system leaves no secret and no personal data behind.

``certify`` runs against an external target: the reference service (in its own process,
with faults so that failure messages exist) behind a loopback proxy that behaves like a
supplier's system: it adds personal fields (``forename``, ``surname``, ``full_name``,
``dob``, ``nhsNumber``, ``home_address``) to every JSON object, answers 404s with HTML
naming a person, sometimes answers a search with prose, and gives ``POST /practitioners``
the wrong content type so that the contract check reports the new account, token and all.
Then every artefact (the run directory, the bundle directory, every zip member,
pytest.log, junit.xml, allure-results, report.html, certificate.json, result.json) and the
terminal output are searched for every token and every piece of personal data the proxy
handed out: nothing may be found.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import date
from functools import cache
from pathlib import Path

from robust_support import SupplierSystem, artefacts, needle_forms, proxy, reference_process

from conformance.certificate.redaction import HARNESS_ID, vocabulary

FAULTS = (
    "restricted-note-visible",
    "restricted-note-leaks-text",
    "upn-no-check-letter",
    "aliases-not-listed",
    "child-read-back-drops-postcode",
    "search-accent-sensitive",
    "accepts-invalid-input",
    "export-bad-check-digits",
)
_WORD = re.compile(r"\w+(?:-\w+)*")


@cache
def _harness_text() -> str:
    """Everything the harness itself wrote: its source code and the specification."""
    from conformance.spec.resources import specs_dir

    roots = [Path(__file__).resolve().parents[2] / "conformance", specs_dir()]
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for root in roots
        for p in root.rglob("*")
        if p.is_file() and p.suffix in (".py", ".yaml", ".json", ".md")
    )


def _the_harness_own(value: str) -> bool:
    """True for the harness's own synthetic data: an ID it made ("r1a2b3c4d-c-12-ab12"), a value written
    in its source or the specification ("O'Brien"), or one made only of its words ("Alex Harness")."""
    if HARNESS_ID.fullmatch(value) or value in _harness_text():
        return True
    words = vocabulary()
    return all(w in words or len(w) == 1 for w in _WORD.findall(value))


def _near_today(value: str) -> bool:
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return False
    return abs((day - date.today()).days) <= 3


def _needles(system: SupplierSystem, admin_token: str) -> dict[bytes, str]:
    needles: dict[bytes, str] = {}
    for token in {admin_token, *system.tokens}:
        for form in needle_forms(token):
            needles[form] = f"token {token[:4]}..."
    for value in system.personal:
        # values the harness chose from its own words, dates around today (the run's own time
        # stamps) and one-to-three character fragments say nothing about a person
        if len(value) < 4 or _the_harness_own(value) or _near_today(value):
            continue
        for form in needle_forms(value):
            if len(form) >= 4:
                needles[form] = f"personal {value!r}"
    return needles


def test_certify_against_a_supplier_system_leaves_no_secret_and_no_personal_data(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    admin_token = "adm-" + secrets.token_urlsafe(18)
    system = SupplierSystem()
    output = tmp_path / "out"
    with reference_process(admin_token, FAULTS) as upstream, proxy(upstream, system) as front:
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "conformance",
                "certify",
                "--target",
                front.url,
                "--output",
                str(output),
                "--sign-key",
                str(keypair[0]),
                "--seed",
                "4242",
                "-n",
                "2",
                "--quiet",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=540,
            # two schema-valid examples per operation: enough to create accounts and report one, and quicker
            env={**os.environ, "ICS_ADMIN_TOKEN": admin_token, "ICS_CONTRACT_EXAMPLES": "2"},
        )
        elapsed = time.monotonic() - started
    assert done.returncode in (1, 3), f"exit {done.returncode} after {elapsed:.0f} s\n{done.stdout}\n{done.stderr}"
    assert system.tokens, "the proxy saw no practitioner token: the run did not provision accounts"
    assert len(system.personal) > 100, "the proxy handed out too little personal data to prove anything"

    found = artefacts(output)
    names = set(found)
    for expected in ("result.json", "pytest.log", "certificate.json", "report.html", "junit.xml"):
        assert any(n.endswith(expected) for n in names), f"no {expected} among {sorted(names)[:20]}"
    assert any(":" in n and "allure-results/" in n for n in names), "no allure-results inside the zip"
    assert any(n.endswith("manifest.sig") for n in names), "the bundle is not signed"
    result = json.loads(next(v for k, v in found.items() if k.endswith("result.json") and "/" in k and ":" not in k))
    failures = [c for r in result["requirements"] for c in r["checks"] if c["verdict"] in ("FAIL", "ERROR")]
    assert len(failures) >= 5 and all(c["message"] for c in failures), "no failure messages to leak through"
    assert any(c.get("evidence") for c in failures), "no evidence to leak through"

    found["<stdout>"] = done.stdout.encode()
    found["<stderr>"] = done.stderr.encode()
    needles = _needles(system, admin_token)
    leaks = sorted({(name, what) for name, data in found.items() for needle, what in needles.items() if needle in data})
    assert leaks == [], f"{len(leaks)} leak(s), e.g. {leaks[:15]}"
    # the operator learns which accounts were left on the target (the API cannot disable them)
    assert "accounts-created.json" in " ".join(names) and "NOT disabled" in done.stdout
