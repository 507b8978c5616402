"""The mutation-score benchmark (``benchmarks/mutation_score.py``): its scoping, and a CI-sized sample.

The scoping tests are cheap and run by default: every function the benchmark names still
exists (a rename must not silently drop code from the measurement), and fault-injection
code is told from rule code. The sample runs three fixed mutants through cosmic-ray and
``certify`` and asserts each is killed; it needs the ``mutation`` extra and about a minute
and a half, so it is marked ``slow`` (``pytest tests/proof -m slow``).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mutation_score", ROOT / "benchmarks" / "mutation_score.py")
assert _spec and _spec.loader
ms = importlib.util.module_from_spec(_spec)
sys.modules["mutation_score"] = ms  # dataclasses look their module up while the class is made
_spec.loader.exec_module(ms)


def test_every_scoped_function_exists():
    for path, functions in ms.SCOPE.items():
        names = {name for name, _, _ in ms.definitions(ms.source_of(path).read_text(encoding="utf-8"))}
        missing = set(functions) - names - {"<module>"}
        assert not missing, f"{path}: {sorted(missing)} named in SCOPE but not defined"
        assert set(functions.values()) <= set(ms.AREAS)


SNIPPET = """
class R:
    def op(self, x, today):
        if x > today and not self.has("accepts-future"):
            raise ValueError("future")
        if self.has("drops-it"):
            return None
        late = self.has("late-ok") or (self.has("other") and x > 1)
        if x < 0 and not late:
            x = -x
        return [] if self.has("not-listed") else [x + 1]


def rule(value, faults):
    if "fault-a" in faults and len(value) == 13:
        return value[1:]
    return value.upper()
"""


def _line_col(text: str, line: int, needle: str) -> tuple[int, int]:
    return line, text.split("\n")[line - 1].index(needle)


def test_fault_code_is_told_from_rule_code():
    spans = ms.fault_spans(SNIPPET)

    def fault(line: int, needle: str) -> bool:
        start = _line_col(SNIPPET, line, needle)
        return ms.inside((start, (start[0], start[1] + len(needle))), spans)

    assert not fault(4, "x > today")  # the rule in a mixed condition
    assert fault(4, 'not self.has("accepts-future")')  # the fault switch beside it
    assert not fault(5, 'raise ValueError("future")')  # the body is the rule
    assert fault(7, "return None")  # body of a fault-only branch
    assert fault(8, "x > 1")  # assignment of a fault-only expression
    assert not fault(9, "x < 0")
    assert fault(9, "not late")  # a name bound to a fault predicate
    assert not fault(10, "x = -x")
    assert fault(11, "[]")  # conditional expression: the fault's value
    assert not fault(11, "x + 1")  # ... and the rule's
    assert fault(15, "len(value) == 13")
    assert fault(16, "value[1:]")
    assert not fault(17, "value.upper()")


def test_annotations_are_not_code():
    text = "from __future__ import annotations\n\ndef f(a: int | None) -> str | None:\n    return a | 1\n"
    spans = ms.annotation_spans(text)
    assert ms.inside(((3, 12), (3, 13)), spans)  # the | in the parameter annotation
    assert ms.inside(((3, 28), (3, 29)), spans)  # ... and in the return annotation
    assert not ms.inside(((4, 13), (4, 14)), spans)


def test_sample_is_stratified_and_fixed():
    def mutant(i: int, area: str) -> object:
        return ms.Mutant(str(i), "f.py", i, ((i, 0), (i, 1)), "op", 0, "f", area, False, False)

    pool = [mutant(i, "search") for i in range(100)] + [mutant(100 + i, "gating") for i in range(10)]
    first = ms.choose(pool, None, 20, seed=1)
    assert len(first) == 20
    assert sum(m.area == "gating" for m in first) >= 20 // 4  # each area gets its floor
    assert [m.job_id for m in first] == [m.job_id for m in ms.choose(pool, None, 20, seed=1)]
    assert {m.area for m in ms.choose(pool, ["gating"], None, seed=1)} == {"gating"}


#: (file, operator, a line's text, the token mutated) of mutants the quick profile must kill.
KNOWN_KILLED = [
    ("conformance/domain/workingdays.py", "core/ReplaceComparisonOperator_Lt_LtE", "day.weekday() < 5", "<"),
    ("conformance/reference/resources/notes.py", "core/ReplaceComparisonOperator_NotEq_Eq", "if p != author_id", "!="),
    ("stdnum/gb/nhs.py", "core/NumberReplacer", "enumerate(reversed(number), 1)) % 11", "11"),
]


@pytest.mark.slow
def test_known_mutants_are_killed(tmp_path):
    pytest.importorskip("cosmic_ray")
    tree, session = ms.init_session(tmp_path, timeout=150.0)
    mutants = ms.load_mutants(session)
    chosen = []
    for path, operator, text, token in KNOWN_KILLED:
        lines = ms.source_of(path).read_text(encoding="utf-8").split("\n")
        found = [
            m
            for m in mutants
            if m.eligible
            and (m.path, m.operator) == (path, operator)
            and text in lines[m.line - 1]
            and lines[m.line - 1][m.span[0][1] : m.span[1][1]] == token
        ]
        assert found, f"no {operator} mutant of {token!r} in {path} on a line with {text!r}"
        chosen.append(found[0])
    ms.skip_all_but(session, mutants, chosen)
    config = tmp_path / "cosmic-ray.toml"
    subprocess.run([ms._cosmic_ray(), "exec", str(config), str(session)], cwd=tree, check=True, timeout=900)
    judged = {m.job_id: m for m in ms.load_mutants(session)}
    for m in chosen:
        result = judged[m.job_id]
        assert result.verdict == "killed", f"{m.path}:{m.line} {m.operator}: {result.result}"
        assert result.result and result.result["failed"]
