"""A council's local profile in a run: loaded once per process, and the council's own checks.

``--ics-local-profile FILE`` loads the profile (a bad one is a usage error before anything
starts); its requirements are judged by the generic checks of
``conformance/suites/test_local_profile.py`` and, with ``--ics-local-checks PATH``, by the
council's own pytest checks, each marked ``@pytest.mark.ics_local("LOCAL-<COUNCIL>-NNN")``.
Their results land in the local verdict only. A council check naming an ID its profile does
not define is refused before the run (the marker's string arguments are read from the
source), or, when the ID is computed, recorded as a local error.

The council's checks get the fixtures of :mod:`conformance.plugin.local_fixtures`
(``local_world``, ``local_profile``, ``local_requirement``); they need no ``conftest.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conformance.profiles.model import LocalProfile

#: The run's local profile (every process loads it from the same file).
LOCAL_PROFILE_KEY = pytest.StashKey["LocalProfile"]()
#: The generic checks of the profile's requirements (collected only when a profile is given).
LOCAL_SUITE = "test_local_profile.py"
MARKER = "ics_local"


def local_check_paths(config: pytest.Config) -> list[Path]:
    """The ``--ics-local-checks`` paths, absolute."""
    return [Path(p).absolute() for p in config.getoption("ics_local_checks", default=None) or ()]


def configure(config: pytest.Config) -> None:
    """Load the profile named by ``--ics-local-profile`` and check the council's checks against it."""
    from conformance.errors import UsageError
    from conformance.plugin.options import option
    from conformance.profiles.model import load_profile

    path = option(config, "ics_local_profile")
    checks = local_check_paths(config)
    if not path:
        if checks:
            raise pytest.UsageError("--ics-local-checks needs --ics-local-profile (the local requirements they judge)")
        return
    from conformance.plugin.options import export_only

    if export_only(config):
        raise pytest.UsageError(
            "--ics-local-profile judges a system through its API: give --ics-target (or no --ics-export)"
        )
    try:
        profile = load_profile(Path(path))
        for check_path in checks:
            undefined_ids(check_path, profile.ids)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[LOCAL_PROFILE_KEY] = profile
    for check_path in checks:
        if str(check_path) not in config.args:
            config.args.append(str(check_path))


def profile_of(config: pytest.Config) -> LocalProfile | None:
    return config.stash.get(LOCAL_PROFILE_KEY, None)


def undefined_ids(path: Path, known: frozenset[str]) -> None:
    """Refuse (``UsageError``) a council check whose ``ics_local`` marker names an ID the profile does not define."""
    from conformance.errors import UsageError

    if not path.exists():
        raise UsageError(f"local checks {path}: no such file or directory")
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for file in files:
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            raise UsageError(f"local checks {file}: cannot read as Python ({exc})") from None
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == MARKER):
                continue
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value not in known:
                    defined = ", ".join(sorted(known)) or "none"
                    raise UsageError(
                        f"{file}:{node.lineno}: a check marked ics_local({arg.value!r}) names a local requirement "
                        f"the profile does not define (it defines {defined})"
                    )


def marker_info(item: pytest.Item) -> tuple[tuple[str, ...], str] | None:
    """The local requirement IDs and kind of a council or generic local check (None: not one)."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    ids = tuple(str(a) for a in marker.args) or tuple(marker.kwargs.get("requirements", ()))
    return ids, str(marker.kwargs.get("kind", "scenario"))
