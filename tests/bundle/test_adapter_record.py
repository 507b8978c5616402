"""The supplier adapter on the certificate: recorded, shown on the report, checked by ``verify``.

A bundle of a run through an adapter names it (name, version, sha256) in ``certificate.json``
(inside the result), in ``manifest.json`` and on the report's first screen; ``verify`` refuses
a bundle whose three do not agree. A bundle without an adapter carries no trace of the feature.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from bundle_samples import make_result
from forgery import copy_bundle, forge, load

from conformance.certificate.bundle import write_bundle
from conformance.certificate.verify import verify_bundle
from conformance.results.result import result_problems

ADAPTER = {
    "name": "legacy",
    "version": "1.0.0",
    "sha256": "ab" * 32,
    "entry_point": "conformance.adapters.legacy:LegacyAdapter",
    "distribution": {"name": "ics-conformance", "version": "0.1.0"},
}


def _adapted() -> dict[str, Any]:
    result = make_result(builtin=False)
    result["adapter"] = dict(ADAPTER)
    return result


@pytest.fixture
def adapted_bundle(tmp_path: Path, keypair: tuple[Path, Path]) -> Path:
    return write_bundle(_adapted(), tmp_path / "out", sign_key=keypair[0]).directory


def test_the_result_schema_accepts_an_adapter_record_and_refuses_a_malformed_one() -> None:
    assert result_problems(_adapted()) == []
    bad = _adapted()
    bad["adapter"]["sha256"] = "not-a-digest"
    assert any("sha256" in p for p in result_problems(bad))
    del bad["adapter"]["sha256"]
    assert result_problems(bad)


def test_bundle_records_adapter_and_verifies(adapted_bundle: Path, keypair: tuple[Path, Path]) -> None:
    certificate = load(adapted_bundle)
    assert certificate["result"]["adapter"] == ADAPTER
    assert load(adapted_bundle, "manifest.json")["adapter"] == {k: ADAPTER[k] for k in ("name", "version", "sha256")}
    report = (adapted_bundle / "report.html").read_text(encoding="utf-8")
    text = f"legacy version 1.0.0 (sha256 {'ab' * 32})"
    assert f'<meta name="ics-adapter" content="{text}">' in report
    assert "Tested through adapter legacy</strong> version 1.0.0" in report
    outcome = verify_bundle(adapted_bundle, keypair[1])
    assert outcome.ok, outcome.message
    assert outcome.adapter == ADAPTER


def test_bundle_without_adapter_has_no_trace_of_one(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    bundle = write_bundle(make_result(builtin=False), tmp_path / "out", sign_key=keypair[0]).directory
    assert "adapter" not in load(bundle)["result"]
    assert "adapter" not in load(bundle, "manifest.json")
    assert "ics-adapter" not in (bundle / "report.html").read_text(encoding="utf-8")
    outcome = verify_bundle(bundle, keypair[1])
    assert outcome.ok and outcome.adapter is None, outcome.message


def test_report_naming_another_adapter_is_refused(
    adapted_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    """The certificate's adapter changed, the report (rendered before) left as it was: caught on the first screen."""
    forged = forge(
        copy_bundle(adapted_bundle, tmp_path / "f"),
        keypair[0],
        lambda c: c["result"]["adapter"].update(sha256="cd" * 32),
        rerender=False,
    )
    report = (forged / "report.html").read_text(encoding="utf-8")
    stated = report.split('name="ics-certificate-sha256" content="', 1)[1].split('"', 1)[0]
    actual = hashlib.sha256((forged / "certificate.json").read_bytes()).hexdigest()
    forge(forged, keypair[0], rerender=False, files={"report.html": report.replace(stated, actual).encode("utf-8")})
    outcome = verify_bundle(forged, keypair[1])
    assert not outcome.ok and outcome.bad_file == "report.html"
    assert "another adapter" in str(outcome.problem)


def test_adapter_dropped_from_the_certificate_is_refused(
    adapted_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    """Re-signed without the adapter in the certificate while the manifest still names it."""
    dropped = forge(copy_bundle(adapted_bundle, tmp_path / "d"), keypair[0], lambda c: c["result"].pop("adapter"))
    outcome = verify_bundle(dropped, keypair[1])
    assert not outcome.ok and outcome.bad_file == "certificate.json"
    assert "manifest.json names one" in str(outcome.problem)


def test_manifest_adapter_edited_alone_is_refused(
    adapted_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    from conformance.certificate.signing import canonical_json, load_private_key, sign

    copy = copy_bundle(adapted_bundle, tmp_path / "e")
    manifest = json.loads((copy / "manifest.json").read_bytes())
    manifest["adapter"]["version"] = "2.0.0"
    data = canonical_json(manifest)
    (copy / "manifest.json").write_bytes(data)
    (copy / "manifest.sig").write_bytes(sign(load_private_key(keypair[0]), data))
    outcome = verify_bundle(copy, keypair[1])
    assert not outcome.ok and outcome.bad_file == "certificate.json"
    assert str(outcome.problem).startswith("adapter differs between manifest.json")
