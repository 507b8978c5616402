"""ics-conformance: conformance testing and certification for ICS case-record systems."""

from conformance._version import __version__
from conformance.results.verdicts import PhaseVerdict, Verdict

__all__ = ["PhaseVerdict", "Verdict", "__version__"]
