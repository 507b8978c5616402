"""The OpenAPI ``Name`` pattern states design.md section 4's name rule in the schema language.

JSON Schema ``pattern`` is ECMA-262, but ``\\p{L}``/``\\p{M}`` are not usable here: the
reference validates request bodies with ``jsonschema`` (Python ``re``: "bad escape \\p")
and Schemathesis generates from its own Latin-only approximation of them (whose ``\\p{M}``
includes unassigned code points the reference refuses). The pattern therefore lists the
letters and combining marks of Unicode 14.0 (Python 3.11's ``unicodedata``) as explicit
ranges, written in the YAML as ``\\uXXXX``/``\\UXXXXXXXX`` escapes so that the pattern
string itself holds literal characters, which every engine reads alike:

    ^[C]*(?:[L][C]*)+$

``L`` is a letter that has a search key of its own; ``C`` (companions) is a combining mark,
a space, a hyphen, an apostrophe (' \u2019 \u2018), a full stop or one of the 17 letters
whose search key is empty on their own (U+037A GREEK YPOGEGRAMMENI, isolated Arabic
presentation forms, half-width katakana voicing marks). So every name the pattern admits is
one the reference's ``valid_name`` accepts, and every name it accepts that has a letter
with a key of its own is admitted.

Run ``python tests/specs/test_name_pattern.py`` to print the YAML of the pattern.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache
from typing import Any

import yaml

from conformance.domain.names import normalise
from conformance.spec.resources import spec_path

PUNCTUATION = "- '\u2019\u2018."


def _ranges(codepoints: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in codepoints:
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def _escape(cp: int) -> str:
    return f"\\u{cp:04X}" if cp <= 0xFFFF else f"\\U{cp:08X}"


def classes() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(letter ranges, companion ranges other than PUNCTUATION), from this Python's unicodedata."""
    letters: list[int] = []
    companions: list[int] = []
    for cp in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(cp))[0]
        if category == "L" and normalise(chr(cp)):
            letters.append(cp)
        elif category in "LM":
            companions.append(cp)
    return _ranges(letters), _ranges(companions)


def pattern_yaml(width: int = 96) -> str:
    """The pattern as a YAML double-quoted scalar, folded with escaped line breaks."""

    def body(ranges: list[tuple[int, int]]) -> str:
        return "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in ranges)

    letters, companions = classes()
    punct = PUNCTUATION.replace("\u2019", "\\u2019").replace("\u2018", "\\u2018")
    companion = f"[{punct}{body(companions)}]"
    text = f"^{companion}*(?:[{body(letters)}]{companion}*)+$"
    # break only between escapes, so a line break never splits one
    pieces = re.findall(r"\\[uU][0-9A-F]+|.", text)
    lines, line = [], ""
    for piece in pieces:
        if len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
    lines.append(line)
    return '"' + "\\\n  ".join(lines) + '"'


@cache
def _document() -> dict[str, Any]:
    return yaml.safe_load(spec_path("openapi.yaml").read_text(encoding="utf-8"))


def _name_pattern() -> str:
    return str(_document()["components"]["schemas"]["Name"]["pattern"])


def test_pattern_is_generated_from_unicode_data() -> None:
    expected = yaml.safe_load("p: " + pattern_yaml())["p"]
    assert _name_pattern() == expected, "regenerate with: python tests/specs/test_name_pattern.py"


def test_pattern_agrees_with_the_reference_rule() -> None:
    from conformance.reference.rules import valid_name

    pattern = re.compile(_name_pattern())
    legal = [
        "Victoria",
        "Climbi\u00e9",
        "Climbie\u0301",  # combining acute accent
        "O'Brien",
        "O\u2019Brien",
        "\u2018Ofa",
        "Mary-Jane",
        "St. John",
        "\u00c6lfred",
        "\u0141ukasz",
        "Zo\u00eb Smith-Jones",
        "\u0410\u043d\u043d\u0430",  # Cyrillic
        "\u674e",  # Han
        "\U0001d400b",  # a letter outside the BMP
        "\u037aa",  # a companion letter beside a letter with a key
        "\u0301a",  # a mark before the first letter
    ]
    illegal = [
        "",
        " ",
        "-",
        "'",
        ".",
        "\u0301",
        "\u037a",
        "Anna2",
        "Anna_B",
        "Anna\tB",
        "Anna\u00a0B",
        "A/B",
        "\u20f5a",
    ]
    for name in legal:
        assert valid_name(name), name
        assert pattern.fullmatch(name), name
    for name in illegal:
        assert not pattern.fullmatch(name), name
    # every single character: the pattern admits exactly what the reference accepts
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if 0xD800 <= cp <= 0xDFFF:
            continue
        assert bool(pattern.fullmatch(ch)) == valid_name(ch), hex(cp)
        assert bool(pattern.fullmatch("a" + ch)) == valid_name("a" + ch), hex(cp)


def test_search_name_parameters_use_the_name_schema() -> None:
    search = _document()["paths"]["/children"]["get"]
    params = {p.get("name"): p for p in search["parameters"] if "name" in p}
    for name in ("given_name", "family_name"):
        assert params[name]["schema"] == {"$ref": "#/components/schemas/Name"}, params[name]


def test_search_criteria_extension_lists_the_reference_criteria() -> None:
    from conformance.reference.service import SEARCH_CRITERIA

    search = _document()["paths"]["/children"]["get"]
    assert search["x-ics-at-least-one-of"] == list(SEARCH_CRITERIA)
    declared = {p.get("name") for p in search["parameters"]}
    assert set(SEARCH_CRITERIA) <= declared


def test_jsonschema_and_jsonschema_rs_compile_it() -> None:
    import jsonschema
    import jsonschema_rs

    schema = {"type": "string", "pattern": _name_pattern()}
    for name, ok in (("Climbi\u00e9", True), ("O\u2019Brien", True), ("R2D2", False)):
        assert jsonschema.Draft202012Validator(schema).is_valid(name) is ok
        assert jsonschema_rs.validator_for(schema).is_valid(name) is ok


if __name__ == "__main__":
    print(pattern_yaml())
