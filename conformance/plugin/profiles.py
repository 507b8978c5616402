"""Hypothesis profiles of the conformance run: ``ics-quick`` and ``ics-certification``.

The plugin loads the profile named by ``--ics-profile`` at configure time (every
process, controller and xdist workers alike) and forces Hypothesis' seed to the run's
seed (``--ics-seed``, or a random one recorded in ``result.json``), so a run is
reproduced by running it again with the same ``--seed``.

Check authors: do not hard-code ``max_examples`` or ``stateful_step_count``. A
``settings(...)`` object built inside a check inherits every value it does not name from
the loaded profile; :func:`settings_for` returns the profile's settings for a check kind.

Budgets were sized so that ``ics-conformance certify --phase 1B`` against the built-in
reference on two cores takes <= 15 s with ``quick`` and <= 60 s with ``certification``.
"""

from __future__ import annotations

from typing import Any

import pytest

PROFILE_NAMES = {"quick": "ics-quick", "certification": "ics-certification"}

#: Budget per profile: ``max_examples`` of property checks, steps per stateful example.
BUDGETS: dict[str, dict[str, int]] = {
    "quick": {"max_examples": 10, "stateful_step_count": 10},
    "certification": {"max_examples": 30, "stateful_step_count": 20},
}

_SAVED_KEY = pytest.StashKey[dict[str, Any]]()
_STORAGE_KEY = pytest.StashKey[str]()
#: ``workerinput`` key handing the controller's Hypothesis directory to an xdist worker.
STORAGE_INPUT = "ics_hypothesis_home"  # the temporary storage directory ("" when the user named one)


def register() -> None:
    """Register both profiles with Hypothesis (idempotent)."""
    from hypothesis import HealthCheck, Verbosity, settings

    for profile, name in PROFILE_NAMES.items():
        settings.register_profile(
            name,
            deadline=None,  # the target's latency is not the property under test
            database=None,  # nothing written to the user's directory; the seed reproduces
            print_blob=True,
            derandomize=False,  # the seed is forced instead (see activate)
            verbosity=Verbosity.normal,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            max_examples=BUDGETS[profile]["max_examples"],
            stateful_step_count=BUDGETS[profile]["stateful_step_count"],
        )


def activate(config: pytest.Config, profile: str, seed: int | None) -> None:
    """Load ``profile`` and force Hypothesis' seed for this process; undone by :func:`deactivate`."""
    from hypothesis import core, settings

    if profile not in PROFILE_NAMES:
        raise pytest.UsageError(f"unknown profile {profile!r} (known: {', '.join(PROFILE_NAMES)})")
    register()
    if _SAVED_KEY not in config.stash:
        config.stash[_SAVED_KEY] = {
            "profile": settings.get_current_profile_name(),
            "seed": getattr(core, "global_force_seed", None),
        }
    settings.load_profile(PROFILE_NAMES[profile])
    _keep_storage_out_of_cwd(config)
    if seed is not None and config.getoption("hypothesis_seed", default=None) is None:
        # The public route is ``--hypothesis-seed``; Hypothesis' own plugin reads it after us.
        config.option.hypothesis_seed = str(seed)
        core.global_force_seed = seed  # type: ignore[assignment]  # typed None upstream; Hypothesis' own plugin sets it the same way


def _keep_storage_out_of_cwd(config: pytest.Config) -> None:
    """Hypothesis' files (its constants cache; no example database: the seed reproduces) go to a
    temporary directory that the controller creates, hands to the xdist workers and removes at the
    end, not to ``.hypothesis/`` in the supplier's working directory, unless asked:
    ``--ics-hypothesis-dir DIR`` or ``HYPOTHESIS_STORAGE_DIRECTORY``."""
    import os
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    if _STORAGE_KEY in config.stash or os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    asked = config.getoption("ics_hypothesis_dir", default=None)
    workerinput = getattr(config, "workerinput", None)
    given = workerinput.get(STORAGE_INPUT) if isinstance(workerinput, dict) else None
    if asked or given:
        directory, owned = str(asked or given), False
    else:
        directory, owned = tempfile.mkdtemp(prefix="ics-hypothesis-"), True
    config.stash[_STORAGE_KEY] = directory if owned else ""
    set_hypothesis_home_dir(directory)


def storage_dir(config: pytest.Config) -> str | None:
    """The temporary Hypothesis directory this process owns (None: none, or one the user named)."""
    return config.stash.get(_STORAGE_KEY, None) or None


def deactivate(config: pytest.Config) -> None:
    """Restore the Hypothesis profile and seed found before :func:`activate`."""
    saved = config.stash.get(_SAVED_KEY, None)
    if saved is None:
        return
    from hypothesis import core, settings

    del config.stash[_SAVED_KEY]
    scratch = config.stash.get(_STORAGE_KEY, None)
    if scratch is not None:
        import shutil

        from hypothesis.configuration import set_hypothesis_home_dir

        del config.stash[_STORAGE_KEY]
        set_hypothesis_home_dir(None)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    try:
        settings.load_profile(saved["profile"])
    except Exception:
        settings.load_profile("default")
    core.global_force_seed = saved["seed"]


def settings_for(kind: str = "property", **overrides: Any) -> Any:
    """The loaded profile's settings for a check of ``kind``, with ``overrides`` applied.

    ``scenario`` and ``contract`` checks get the same budget as ``property`` checks;
    the profile decides, never the check.
    """
    from hypothesis import settings

    return settings(settings.default, **overrides)
