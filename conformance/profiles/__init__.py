"""Council local profiles: a council's local requirements, judged apart from the national catalogue.

:mod:`conformance.profiles.model` reads and validates a profile (YAML,
``specs/schemas/local-profile.schema.json``); :mod:`conformance.profiles.verdict` builds the
local verdict beside the national one (``result["local_profile"]``) and re-derives it for
``verify``. The generic checks live in ``conformance/suites/test_local_profile.py``.
"""

from __future__ import annotations

from conformance.profiles.model import LocalProfile, LocalRequirement, load_profile, parse_profile
from conformance.profiles.verdict import PROFILE_IN_BUNDLE, local_block, local_lines, local_problem

__all__ = [
    "PROFILE_IN_BUNDLE",
    "LocalProfile",
    "LocalRequirement",
    "load_profile",
    "local_block",
    "local_lines",
    "local_problem",
    "parse_profile",
]
