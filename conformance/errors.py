"""Exceptions the harness raises, each tied to a CLI exit code.

The CLI turns these into a one-line message on stderr and the exit code below;
nothing in this hierarchy ever reaches the user as a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3


class ConformanceError(Exception):
    """Base class of every error the harness reports to a user."""

    exit_code: int = EXIT_USAGE


class UsageError(ConformanceError):
    """Bad command line, option value or configuration (exit 2)."""

    exit_code = EXIT_USAGE


class SpecError(UsageError):
    """A specification file (catalogue, schema, OpenAPI) is malformed.

    The message names the file, and where known the requirement and field.
    """


class InconclusiveError(ConformanceError):
    """The run could not be judged: target unreachable, archive unreadable (exit 3)."""

    exit_code = EXIT_INCONCLUSIVE
