"""The requirements a failing check blamed, read from its JUnit failure text."""

from __future__ import annotations

import re

IDS = re.compile(r"ICS-[0-9A-Z]+-[A-Z]+-\d{3}")
#: the plugin's failure view: one "requirement: ID (LEVEL) title" line per blamed requirement
_VIEW = re.compile(r"^requirement: (ICS-[0-9A-Z]+-[A-Z]+-\d{3}) ", re.M)
#: a full traceback (--tb=long): the exception's own message
_RAISED = re.compile(r"RequirementFailure\w*: \[(ICS-[^\]]+)\]")


def blamed(message: str) -> frozenset[str]:
    """The blamed IDs: the failure view's requirement lines, else the raised failure's head.

    Never the check's node ID, whose brackets list every requirement the check covers."""
    found = _VIEW.findall(message)
    if found:
        return frozenset(found)
    return frozenset(i for head in _RAISED.findall(message) for i in IDS.findall(head))
