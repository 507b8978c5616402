"""The package's layout is its architecture: dependencies point one way, and nothing imports in a circle.

Every ``import`` of the package is read from the source (imports inside functions too, since a
lazy import is still a dependency), so a module that reaches up a layer, or two modules that
import each other, fail here with the offending import named.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "conformance"

#: Lowest first. A module may import its own subpackage, the modules of its own layer and any
#: layer below it, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("conformance._version", "conformance.errors"),
    ("conformance.spec",),  # the specification as data
    ("conformance.domain",),  # ICS rules shared by the reference, the checks and the export rules
    ("conformance.results",),  # verdicts and result.json
    ("conformance.profiles",),  # council local profiles: format, local verdict beside the national one
    ("conformance.certificate",),  # bundle, signing, waivers, redaction, report
    ("conformance.checking",),  # the vocabulary checks are written in
    ("conformance.adapters",),  # supplier adapters: the canonical API onto a native one, beneath the client
    ("conformance.export",),  # export validation
    ("conformance.reference",),  # the reference service
    ("conformance.plugin",),  # the pytest plugin
    ("conformance.suites",),  # the built-in checks
    ("conformance.registry",),  # the certifier's registry: store, migrations, compliance rules, demo
    ("conformance.dashboard",),  # the national dashboard over the registry (Starlette + Jinja2)
    ("conformance.cli", "conformance.__main__"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The package modules ``name`` imports (``from pkg import submodule`` counts as the submodule)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "conformance")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "conformance":
            subs = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
            out.update(subs or {node.module})
            if len(subs) < len(node.names):
                out.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{name}: relative import (use the absolute module path)")
    out.discard(name)
    return {m for m in out if m in MODULES}


def _layer(name: str) -> int:
    if name == "conformance":
        return -1  # the curated public surface re-exports from below
    for rank, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{name} belongs to no layer: add its subpackage to LAYERS in {__file__}")


def _subpackage(name: str) -> str:
    return ".".join(name.split(".")[:2])


def test_every_module_belongs_to_a_layer() -> None:
    for name in MODULES:
        _layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down(name: str) -> None:
    if name == "conformance":
        return
    rank = _layer(name)
    upward = sorted(
        m for m in _imports(name) if m != "conformance" and _subpackage(m) != _subpackage(name) and _layer(m) > rank
    )
    assert not upward, f"{name} imports {upward}, which are above its layer"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if node.startswith(nxt + "."):
                continue  # loading a submodule loads its package first: not a dependency of its code
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt) :], node, nxt] if nxt in trail else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*trail, node])):
                return found
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name, [])):
            return found
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle({name: _imports(name) for name in MODULES})
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    """The detector is not vacuous: a direct and an indirect cycle are found, a chain is not."""
    assert find_cycle({"a": {"b"}, "b": {"a"}}) is not None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"p.x": {"p"}, "p": set()}) is None
