"""What checks running on several threads of one process need from the interpreter.

CPython 3.11 keeps the depth counter of its AST constructor per interpreter, so two threads
parsing at once (pytest formatting a failure's traceback, Hypothesis describing a lambda
while it shrinks, on another thread) can fail with "SystemError: AST constructor recursion
depth mismatch". pytest, Hypothesis and the traceback module all call ``ast.parse`` through
the module attribute, so :func:`serialise_ast_parse` makes them take turns.
"""

from __future__ import annotations

import ast
import functools
import threading
from typing import Any

_AST_LOCK = threading.RLock()


def serialise_ast_parse() -> None:
    """One ``ast.parse`` at a time in this process from now on (idempotent)."""
    if getattr(ast.parse, "_ics_serialised", False):
        return
    parse = ast.parse

    @functools.wraps(parse)
    def serialised(*args: Any, **kwargs: Any) -> Any:
        with _AST_LOCK:
            return parse(*args, **kwargs)

    serialised._ics_serialised = True  # type: ignore[attr-defined]
    ast.parse = serialised
