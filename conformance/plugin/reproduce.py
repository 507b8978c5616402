"""The reproduce command of a failing check: one shell command line that runs it again and fails it again.

The command is the run's own (``certify`` or ``pytest``, with its target, phase, profile,
faults, capabilities and seed: Hypothesis draws the same examples) narrowed with ``-k`` to
the check. A check that judges the bulk export judges records every other check created, so
run alone it may not see what broke the rule (a completion the target wrongly accepted in a
gating check breaks ICS-1A-EXP-008 in the export): its command also runs the checks that
failed in the run, in one process (``-n 0``), where the export is taken after them (the
collector orders the export checks last). Nothing but shell goes into the command: the
Hypothesis replay blob stays in ``hypothesis_blob``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Modules whose checks judge the bulk export, i.e. data the whole run created.
EXPORT_MODULES = ("test_export.py", "test_export_1c.py")


@dataclass(frozen=True)
class Invocation:
    """How to re-run: ``tool`` is ``pytest`` or ``certify``; ``args`` the options of the run
    that matter for reproduction (target, phase, profile, faults, capabilities, seed)."""

    tool: str
    args: tuple[str, ...]
    command: str
    explicit_paths: bool = False

    def reproduce(self, selector: str, nodeid: str, *, together: Iterable[tuple[str, str]] = ()) -> str:
        """The command re-running one check (``-k`` selector; the node ID for user-given paths).

        ``together``: (selector, node ID) of checks to run with it, before it (one process).
        """
        prefix = ["ics-conformance", "certify"] if self.tool == "certify" else ["pytest"]
        others = [pair for pair in dict.fromkeys(together) if pair[1] != nodeid]
        if self.explicit_paths:
            target = [nodeid, *(node for _, node in others)]
        else:
            expression = " or ".join(f"({s})" for s in [selector, *(s for s, _ in others)]) if others else selector
            target = ["-k", expression]
        if others and self.tool == "certify":
            target += ["-n", "0"]  # one process: the export is taken after the checks that made its records
        return " ".join(shlex.quote(str(a)) for a in [*prefix, *self.args, *target])


def judges_export(nodeid: str) -> bool:
    """True for a check of the bulk export (it judges records the whole run created)."""
    module = nodeid.split("::", 1)[0]
    return Path(module).name in EXPORT_MODULES
