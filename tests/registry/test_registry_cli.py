"""``ics-conformance registry ...`` end to end (in-process), on both backends: exit codes and output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from registry_support import PARTIES, issue

from conformance.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_registry_cli(
    capsys: pytest.CaptureFixture[str], db_url: str, keys: Any, real_run: dict[str, Any], tmp_path: Path
) -> None:
    db = ("--db", db_url)
    code, _, err = run(capsys, "registry", "status", *db, "--council", "383", "--phase", "1B")
    assert code == 2 and "not initialised" in err
    code, out, _ = run(capsys, "registry", "init", *db)
    assert code == 0 and "150 added" in out
    code, out, _ = run(capsys, "registry", "submit", *db, str(real_run["zip"]))
    assert code == 1 and "REFUSED" in out and "not registered" in out
    for name, role, extra in (
        ("lab", "test_lab", ()),
        ("acme", "supplier", ("--supplier", "Acme Demo Ltd")),
        ("leeds", "council", ("--council", "Leeds")),
    ):
        code, out, _ = run(
            capsys, "registry", "keys", "add", *db, "--party", PARTIES[name][0], "--role", role,
            "--public-key", str(keys[name][1]), *extra,
        )  # fmt: skip
        assert code == 0 and "registered key" in out
    bundle = issue(real_run["result"], tmp_path, keys["acme"][0], version="3.5", finished="2008-01-15")
    code, out, _ = run(capsys, "registry", "submit", *db, str(bundle), str(real_run["zip"]))
    assert code == 0 and out.count("STORED") == 2
    cert = out.split("certificate ", 1)[1].split()[0]
    code, out, _ = run(capsys, "registry", "submit", *db, "--json", str(bundle))
    assert code == 0 and json.loads(out)[0]["created"] is False

    code, out, _ = run(
        capsys, "registry", "deploy", *db, "--council", "383", "--product", "CaseBook Demo", "--version", "3.5",
        "--from", "2008-03-18",
    )  # fmt: skip
    assert code == 0 and "Leeds (383) runs Acme Demo Ltd CaseBook Demo 3.5 from 2008-03-18" in out
    code, out, _ = run(capsys, "registry", "status", *db, "--council", "Leeds", "--phase", "1B", "--on", "2008-03-31")
    assert code == 0 and out.startswith("YES: Leeds (383) is compliant for phase 1B on 2008-03-31")
    assert f"proven by certificate {cert}" in out and "self-assessed" in out
    code, out, _ = run(capsys, "registry", "status", *db, "--council", "Leeds", "--phase", "1B", "--on", "2008-03-01")
    assert code == 1 and out.startswith("NO: ") and "no deployment recorded" in out
    code, out, _ = run(
        capsys, "registry", "status", *db, "--council", "383", "--phase", "1B", "--on", "2008-04-01", "--json"
    )
    data = json.loads(out)
    assert code == 0 and data["compliant"] and data["proving"][0]["id"].startswith(cert)

    code, out, _ = run(capsys, "registry", "list", *db)
    assert code == 0 and "2 certificate(s)" in out and cert in out
    code, out, _ = run(capsys, "registry", "list", "councils", *db)
    assert "150 councils" in out and "201  City of London" in out
    code, out, _ = run(capsys, "registry", "list", "keys", *db)
    assert out.count("\n") == 3
    code, out, _ = run(capsys, "registry", "list", "suppliers", *db)
    assert "CaseBook Demo 3.5: 1A (self-assessed), 1B (self-assessed)" in out
    code, out, _ = run(capsys, "registry", "list", "deployments", *db, "--council", "Leeds")
    assert "1 deployment(s)" in out

    code, out, _ = run(capsys, "registry", "export", *db, "--on", "2008-03-31")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 450
    leeds = {r["phase"]: r for r in rows if r["council_code"] == "383"}
    assert leeds["1B"]["compliant"] == "True" and leeds["1B"]["certificates"].startswith(cert)
    assert leeds["1C"]["compliant"] == "False"
    out_file = tmp_path / "export.json"
    code, _, err = run(
        capsys, "registry", "export", *db, "--format", "json", "--on", "2008-03-31", "--out", str(out_file)
    )
    assert code == 0 and len(json.loads(out_file.read_text())) == 450 and "450 rows" in err

    code, _, err = run(capsys, "registry", "phase", "1C", *db, "--deadline", "2009-03-31")
    assert code == 2 and "--reason" in err
    code, out, _ = run(capsys, "registry", "phase", "1C", *db, "--deadline", "2009-03-31", "--reason", "agreed")
    assert code == 0 and "deadline: 2009-03-31" in out and "history: open" in out
    code, out, _ = run(capsys, "registry", "phase", "1B", *db, "--local-qa", "yes")
    assert "council local QA required" in out
    code, out, _ = run(capsys, "registry", "status", *db, "--council", "383", "--phase", "1B", "--on", "2008-04-01")
    assert code == 1 and "local QA" in out
    run(capsys, "registry", "phase", "1B", *db, "--local-qa", "no")

    code, out, _ = run(capsys, "registry", "revoke", *db, cert, "--reason", "withdrawn")
    assert code == 0 and "revoked" in out
    code, out, _ = run(capsys, "registry", "status", *db, "--council", "383", "--phase", "1B", "--on", "2008-04-01")
    assert code == 1 and "revoked (withdrawn)" in out
    code, out, _ = run(capsys, "registry", "reverify", *db)
    assert code == 0 and "2 bundle(s) re-verified, 0 failed" in out


def test_bad_database_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "registry", "init", "--db", "mysql://x/y")
    assert code == 2 and "unsupported database" in err
    code, _, err = run(capsys, "registry", "init", "--db", str(tmp_path / "missing" / "r.sqlite"))
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "registry", "init", "--db", "postgresql://nobody:secret@127.0.0.1:9/none")
    assert code == 2 and "cannot open the database" in err and "secret" not in err


def test_csv_export_neutralises_formulas() -> None:
    from conformance.cli.registry import _csv_cell

    assert _csv_cell('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert _csv_cell("Leeds") == "Leeds" and _csv_cell(3) == 3
