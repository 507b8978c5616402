"""The mutation-score benchmark (``benchmarks/mutation_score.py``): its scoping, and a CI-sized sample.

The scoping tests are cheap: every function the benchmark names still exists (a rename
must not silently drop code from the measurement), and fault-injection code is told from
rule code. The CI sample runs four fixed mutants through cosmic-ray and ``certify`` exactly
as the benchmark does (cosmic-ray is in the ``test`` extra): three the checks must kill,
each FAILing the requirement its rule belongs to (a kill for another reason, e.g. a
reference that no longer starts, is not counted), and one equivalent mutant that must
survive, so that a harness failing everything cannot pass the sample. It is a sample of
the benchmark's pipeline, not a score: the score is ``benchmarks/mutation_score.py``'s.
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


def bent(value, faults, today):
    clean = "fault-b" not in faults
    if not clean:
        value -= 1
    future = "fault-c" in faults
    if value and (value > today or (future and value == today)):
        return None
    return value
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
    assert fault(21, '"fault-b" not in faults')  # a name bound to "not in faults" ...
    assert fault(23, "value -= 1")  # ... guards fault code when negated
    assert not fault(25, "value > today")
    assert fault(25, "value == today")  # after a fault operand of an ``and``: evaluated under it only
    assert not fault(26, "return None")


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


#: (file, operator, a line's text, the token mutated, the requirement (or ID prefix) a FAIL
#: must name): mutants the quick profile must kill.
KNOWN_KILLED = [
    (
        "conformance/domain/workingdays.py",
        "core/ReplaceComparisonOperator_Lt_LtE",
        "day.weekday() < 5",
        "<",
        "ICS-1A-TIME-",  # due dates (TIME-001) and every working-day rule built on them
    ),
    (
        "conformance/reference/resources/notes.py",
        "core/ReplaceComparisonOperator_NotEq_Eq",
        "if p != author_id",
        "!=",
        "ICS-1B-NOTIF-002",
    ),
    ("stdnum/gb/nhs.py", "core/NumberReplacer", "enumerate(reversed(number), 1)) % 11", "11", "ICS-1A-REC-003"),
]
#: An equivalent mutant (benchmarks/mutation-classification.yaml says why): it must survive.
KNOWN_EQUIVALENT = (
    "conformance/reference/resources/children.py",
    "core/ReplaceComparisonOperator_NotEq_Gt",
    'and who["role"] != "admin"',
    "!=",
    None,
)


@pytest.mark.timeout(3600)  # four certify runs and cosmic-ray's init: minutes on a loaded machine
def test_known_mutants_are_killed_and_an_equivalent_one_survives(tmp_path):
    import cosmic_ray  # noqa: F401  (the test extra installs it: missing is a failure, not a skip)

    tree, session = ms.init_session(tmp_path, timeout=600.0)  # per certify run: CI machines are loaded
    mutants = ms.load_mutants(session)
    chosen = []
    for path, operator, text, token, _ in [*KNOWN_KILLED, KNOWN_EQUIVALENT]:
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
    subprocess.run([ms._cosmic_ray(), "exec", str(config), str(session)], cwd=tree, check=True, timeout=3600)
    judged = {m.job_id: m for m in ms.load_mutants(session)}
    for m, (*_, requirement) in zip(chosen, [*KNOWN_KILLED, KNOWN_EQUIVALENT], strict=True):
        result = judged[m.job_id]
        if requirement is None:
            assert result.verdict == "survived", f"equivalent {m.path}:{m.line} {m.operator}: {result.result}"
        else:
            assert result.verdict == "killed", f"{m.path}:{m.line} {m.operator}: {result.result}"
            failed = result.result["failed"] if result.result else []
            assert any(r.startswith(requirement) for r in failed), result.result
