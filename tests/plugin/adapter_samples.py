"""Adapters for the plugin tests (registered by monkeypatching the entry points, never installed)."""

from __future__ import annotations

import httpx

from conformance.adapters import Adapter


class Careless(Adapter):
    """Passes everything through, but trips its own assertion on ``/echo-auth`` answers."""

    version = "0.1"

    def to_canonical(self, response: httpx.Response, request: httpx.Request) -> httpx.Response:
        assert request.url.path != "/echo-auth", "the adapter's own assertion"
        return response


class Broken(Adapter):
    """Cannot translate anything (the pre-flight ``GET /about`` included)."""

    version = "0.1"

    def to_native(self, request: httpx.Request) -> httpx.Request:
        raise KeyError("no native path for " + request.url.path)
