"""The reference ICS service: a complete implementation of the canonical API, with
switchable faults that prove every check can fail.

    with serve(faults=["search-accent-sensitive"]) as service:
        service.url, service.admin_token
"""

from conformance.reference.faultset import FAULTS, Fault, resolve_faults
from conformance.reference.runner import RunningService, serve
from conformance.reference.service import create_app

__all__ = ["FAULTS", "Fault", "RunningService", "create_app", "resolve_faults", "serve"]
