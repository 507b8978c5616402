"""Target-supplied text made safe to show: on a terminal and in HTML.

A target controls much of what a run prints and reports (names, messages, capability
keys, its ``/about``). Control characters (``ESC[2J`` clears a terminal, ``ESC]0;...BEL``
retitles it) and Unicode format characters (the bidi overrides U+202A..U+202E and
U+2066..U+2069, zero-width characters) could rewrite what the operator or a certifier
reads, so they are shown escaped (``\\x1b``, ``\\u202e``) instead of acting.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

#: Unicode categories escaped: controls, format characters (bidi, zero-width), line and
#: paragraph separators, unassigned and private-use code points, surrogates.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"})


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: Any, *, keep_newlines: bool = False) -> str:
    """``value`` as text with every control, bidi and other invisible character escaped.

    ``keep_newlines`` keeps ``\\n`` and ``\\t`` (multi-line messages); everything else in
    the escaped categories, and the backslash-free rest, is shown as it is.
    """
    text = "" if value is None else str(value)
    if text.isprintable() and text.isascii():
        return text
    out = []
    for ch in text:
        if keep_newlines and ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in _ESCAPED_CATEGORIES:
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def printable_tree(value: Any) -> Any:
    """:func:`printable` applied to every string (keys too) of a JSON-like value."""
    if isinstance(value, str):
        return printable(value, keep_newlines=True)
    if isinstance(value, dict):
        return {printable(k) if isinstance(k, str) else k: printable_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable_tree(v) for v in value]
    return value


_TAG = re.compile(r"^(\[ICS-[0-9][A-Z]-[A-Z]+-[0-9]{3}\]\s*)+")
_HTTP_DETAIL = re.compile(r":\s+(GET|POST|PUT|PATCH|DELETE) /")


def headline(message: Any, limit: int = 180) -> str:
    """The first line of a check's message, for a one-line list of failures.

    The leading ``[ICS-...]`` tag (the list names the requirement) and the HTTP exchange
    after the observation (``...: POST /x -> 200 {...}``, in the details) are left out.
    """
    text = "" if message is None else str(message)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = _TAG.sub("", line)
    http = _HTTP_DETAIL.search(line)
    if http and http.start() > 20:
        line = line[: http.start()]
    return line if len(line) <= limit else line[: limit - 1] + "…"
