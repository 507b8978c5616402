"""Strict parsing of the small documents that carry trust: keyrings, waiver files, manifests.

JSON parsers disagree on a document that repeats a key (most keep the last value, some the
first, some refuse), and so do YAML loaders. A signed or trusted document that two tools
would read differently is refused here: :func:`load_json` and :func:`load_yaml` raise
:class:`DocumentError` naming the repeated key.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DocumentError", "load_json", "load_json_or_yaml", "load_yaml"]


class DocumentError(ValueError):
    """A document that is not well-formed, or that different parsers would read differently."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DocumentError(f"duplicate key {key!r} (parsers disagree on which value counts)")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise DocumentError(f"{name} is not JSON")


def load_json(data: bytes | str) -> Any:
    """Parse JSON, refusing repeated keys in any object and NaN/Infinity."""
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except DocumentError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DocumentError(f"not JSON ({exc})") from exc


def load_yaml(text: str) -> Any:
    """Parse YAML (safe subset), refusing repeated keys in any mapping."""
    import yaml

    class _StrictLoader(yaml.SafeLoader):
        pass

    def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                seen = key in out
            except TypeError as exc:
                raise DocumentError(f"unhashable mapping key at line {key_node.start_mark.line + 1}") from exc
            if seen:
                raise DocumentError(
                    f"duplicate key {key!r} at line {key_node.start_mark.line + 1} (parsers disagree on which value counts)"
                )
            out[key] = loader.construct_object(value_node, deep=deep)
        return out

    _StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: safe
    except DocumentError:
        raise
    except yaml.YAMLError as exc:
        raise DocumentError(f"neither JSON nor YAML ({exc})") from exc
    except RecursionError as exc:
        raise DocumentError("nested too deeply") from exc


def load_json_or_yaml(text: str) -> Any:
    """JSON when the text parses as JSON (repeated keys refused), else YAML (repeated keys refused)."""
    try:
        return load_json(text)
    except DocumentError as exc:
        if "duplicate key" in str(exc):
            raise
    return load_yaml(text)
