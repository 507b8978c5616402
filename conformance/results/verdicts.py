"""Verdicts per check, per requirement and per phase, and how they roll up.

Per check and per requirement: PASS, FAIL, NOT_APPLICABLE (capability not declared),
SKIPPED (prerequisite missing), WAIVED (a valid signed waiver covers a FAIL), ERROR
(the check crashed, or the target was unreachable or timed out).

Phase verdict, from the in-scope requirements, in this order:

1. any ERROR                        -> INCONCLUSIVE (never CERTIFIED, never the supplier's fault)
2. any MUST that is FAIL            -> NOT_CERTIFIED
3. any MUST SKIPPED or unchecked    -> INCONCLUSIVE (could not be judged)
4. otherwise                        -> CERTIFIED   (every MUST PASS, WAIVED or NOT_APPLICABLE)

SHOULD and MAY failures are reported but do not decide the phase verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Verdict(str, Enum):
    """Verdict of one check or one requirement."""

    PASS = "PASS"
    FAIL = "FAIL"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    SKIPPED = "SKIPPED"
    WAIVED = "WAIVED"
    ERROR = "ERROR"
    NOT_RUN = "NOT_RUN"  # requirement in scope but no check result reached it

    def __str__(self) -> str:
        return self.value


class PhaseVerdict(str, Enum):
    """Verdict of a whole phase."""

    CERTIFIED = "CERTIFIED"
    NOT_CERTIFIED = "NOT_CERTIFIED"
    INCONCLUSIVE = "INCONCLUSIVE"

    def __str__(self) -> str:
        return self.value

    @property
    def exit_code(self) -> int:
        """CLI exit code: 0 CERTIFIED, 1 NOT_CERTIFIED, 3 INCONCLUSIVE."""
        return {"CERTIFIED": 0, "NOT_CERTIFIED": 1, "INCONCLUSIVE": 3}[self.value]


def requirement_verdict(check_verdicts: Iterable[Verdict]) -> Verdict:
    """Combine the verdicts of the checks behind one requirement.

    A proven FAIL outranks an ERROR elsewhere (the failure is real); an ERROR outranks
    everything else; a requirement all of whose checks were not applicable is
    NOT_APPLICABLE; any SKIPPED leaves it SKIPPED; only all-PASS gives PASS.
    """
    seen = set(check_verdicts)
    if not seen:
        return Verdict.NOT_RUN
    for verdict in (Verdict.FAIL, Verdict.ERROR, Verdict.SKIPPED, Verdict.NOT_RUN):
        if verdict in seen:
            return verdict
    if seen == {Verdict.NOT_APPLICABLE}:
        return Verdict.NOT_APPLICABLE
    seen.discard(Verdict.NOT_APPLICABLE)
    if seen <= {Verdict.PASS}:
        return Verdict.PASS
    if seen <= {Verdict.PASS, Verdict.WAIVED}:
        return Verdict.WAIVED
    return Verdict.ERROR  # unreachable with the enum above; fail closed


def phase_verdict(requirements: Iterable[tuple[str, Verdict]]) -> PhaseVerdict:
    """Compute the phase verdict from ``(level, verdict)`` pairs of in-scope requirements."""
    pairs = list(requirements)
    if any(v is Verdict.ERROR for _, v in pairs):
        return PhaseVerdict.INCONCLUSIVE
    musts = [v for level, v in pairs if level == "MUST"]
    if any(v is Verdict.FAIL for v in musts):
        return PhaseVerdict.NOT_CERTIFIED
    if any(v in (Verdict.SKIPPED, Verdict.NOT_RUN) for v in musts):
        return PhaseVerdict.INCONCLUSIVE
    if not pairs:
        return PhaseVerdict.INCONCLUSIVE
    return PhaseVerdict.CERTIFIED
