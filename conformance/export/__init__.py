"""Export-file conformance: streaming validation of bulk exports (ICS-1A-EXP-001..009).

Public surface::

    validate_export(path, *, phase="1B", max_examples=20, workers=2) -> ExportReport
    reconcile(report_or_path, expected: ExpectedRecords) -> list[Finding]
    generate_export(directory, *, children, seed, zip=False) -> Path

Exports in a mapped format (CSV): :func:`conformance.export.mapping.load_format` and
:func:`conformance.export.native.validate_native` (docs/design.md section 5.1).
"""

from __future__ import annotations

from typing import Any

from conformance.export.archive import Limits
from conformance.export.findings import EXPORT_REQUIREMENTS, Finding
from conformance.export.reconcile import ExpectedRecords, reconcile
from conformance.export.validate import ExportReport, validate_export

__all__ = [
    "EXPORT_REQUIREMENTS",
    "ExpectedRecords",
    "ExportReport",
    "Finding",
    "Limits",
    "reconcile",
    "validate_export",
]
__all__ += ["generate_export"]


def __getattr__(name: str) -> Any:  # lazy: Faker is only imported when generating
    if name == "generate_export":
        from conformance.export.generate import generate_export

        return generate_export
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
