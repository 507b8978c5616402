"""``pytest --ics-...`` as a supplier's developer runs it: a failing check shows the requirement, what was
observed, the minimal steps and a rerun command (not the harness's source, nor Hypothesis' advice to edit a
test function they do not own); ``--tb=long`` gives the traceback back. ``result.json`` and ``report.html``
are written to a default place that is printed, and ``.hypothesis/`` stays out of the working directory."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conformance.plugin.collect import DEFAULT_REPORTS

CHECKS = "test_completion_refused_without_any_visit or test_gating_matches_model"


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--ics-phase", "1B", "--ics-reference-fault", "gating-off", "--ics-seed", "3"]
        + ["-k", CHECKS, "-n", "0", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _failure_sections(out: str) -> dict[str, str]:
    """The text pytest shows under each failing check's header line (``___ name ___``)."""
    body = out.split(" FAILURES ")[1].split(" ICS conformance ")[0]
    parts = re.split(r"^_+ (test_\S+) _+$", body, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_a_failing_check_shows_the_requirement_observation_steps_and_rerun(tmp_path: Path) -> None:
    done = _pytest(tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    sections = _failure_sections(done.stdout)
    assert len(sections) == 2, list(sections)
    for name, text in sections.items():
        assert "requirement: ICS-1B-GATE-001 (MUST) Completion refused until the child is seen" in text, name
        assert "observed:" in text and "completion" in text
        assert "rerun this check:" in text and "--ics-reference-fault gating-off --ics-seed 3 -k " in text
        # none of the harness's source, no traceback, no advice to decorate a function the supplier does not own
        assert not re.search(r"^\s*(>|E )|\.py:\d+|^\s*def \w+\(|^\s*@check\(", text, re.M), text
        assert "reproduce_failure" not in text and "decorator" not in text
        assert len(text.strip().splitlines()) < 40, text
    stateful = next(text for name, text in sections.items() if "matches_model" in name)
    assert "minimal steps (shrunk by Hypothesis):" in stateful and "state.attempt_completion(" in stateful
    scenario = next(text for name, text in sections.items() if "without_any_visit" in name)
    assert re.search(
        r"steps .*\n(.*\n)*?\s+POST /children -> 201\n(.*\n)*?\s+POST /assessments/\S+/complete -> 200", scenario
    )

    # written to a default place, and said where
    result = re.search(r"^result: (.+result\.json)$", done.stdout, re.M)
    report = re.search(r"^report: (.+report\.html)$", done.stdout, re.M)
    assert result and report, done.stdout[-2000:]
    assert Path(result.group(1)).is_file() and Path(report.group(1)).is_file()
    assert Path(result.group(1)).parent.parent == (tmp_path / DEFAULT_REPORTS).resolve()
    assert "NOT CERTIFIED" in Path(report.group(1)).read_text(encoding="utf-8")
    # and nothing else in the supplier's directory
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEFAULT_REPORTS]


def test_tb_long_gives_the_harness_developer_the_traceback(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "--tb=long", "--ics-report", str(tmp_path / "out"))
    assert done.returncode == 1
    sections = _failure_sections(done.stdout)
    for text in sections.values():
        assert (
            re.search(r"\.py:\d+", text)
            and re.search(r"^\s*def \w+\(", text, re.M)
            and "requirement: ICS-1B" not in text
        )
    assert (tmp_path / "out" / "result.json").is_file() and not (tmp_path / DEFAULT_REPORTS).exists()


def test_hypothesis_files_go_where_asked(tmp_path: Path) -> None:
    keep = tmp_path / "hyp"
    done = _pytest(tmp_path, "--ics-hypothesis-dir", str(keep), "--ics-report", str(tmp_path / "out"))
    assert done.returncode == 1
    assert keep.is_dir() and any(keep.rglob("*")) and not (tmp_path / ".hypothesis").exists()
