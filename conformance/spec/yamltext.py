"""Strict YAML for the project's own data files (catalogue, local profiles).

Safe loader, repeated keys in any mapping refused, and every problem reported as one
:class:`YamlProblem` whose message names the line and column.
"""

from __future__ import annotations

from typing import Any

__all__ = ["YamlProblem", "load_strict"]


class YamlProblem(ValueError):
    """The text is not YAML, or a mapping repeats a key (message names line and column)."""


def load_strict(text: str) -> Any:
    """Parse ``text`` with the safe loader (the C one when built), refusing repeated keys."""
    import yaml

    class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # base chosen at run time (C loader when built)
        pass

    def _mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys: set[Any] = set()
        for key_node, _value in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in keys:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            keys.add(key)
        return loader.construct_mapping(node, deep=deep)

    _StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem(f"{where}: {problem}") from None
