"""Supplier adapters: the canonical ICS API mapped onto a supplier's native API, beneath the harness's client.

Public surface: :class:`Adapter` (the base class a supplier subclasses), :class:`AdapterError`,
:func:`json_response`, and the entry-point group :data:`ENTRY_POINT_GROUP` an adapter is
registered in. ``conformance.adapters.legacy`` is a complete example.
"""

from __future__ import annotations

from conformance.adapters.base import Adapter, AdapterError, json_response
from conformance.adapters.registry import ENTRY_POINT_GROUP

__all__ = ["ENTRY_POINT_GROUP", "Adapter", "AdapterError", "json_response"]
