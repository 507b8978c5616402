"""Installed adapters: found by entry point, loaded, validated and described for the certificate.

An adapter is installed by registering its class in the entry-point group
``ics_conformance.adapters`` (``name = "package.module:Class"``). :func:`describe` gives
what the certificate records: the name, the version, and the sha256 of the adapter's
source — the module defining the class, or every ``.py`` file of its package when the
entry point names a package — so that the department can tell which code stood between
the harness and the system.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from conformance.adapters.base import Adapter
from conformance.errors import UsageError

__all__ = ["ENTRY_POINT_GROUP", "LoadedAdapter", "describe_installed", "installed", "load", "source_digest"]

ENTRY_POINT_GROUP = "ics_conformance.adapters"
#: what an adapter's name and version may be (they are printed, and compared on the report, verbatim)
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
#: The fields of an adapter's record in result.json / certificate.json.
RECORD_FIELDS = ("name", "version", "sha256", "entry_point", "distribution")


def installed() -> dict[str, metadata.EntryPoint]:
    """The installed adapters by name (the first registration of a name wins, as pip would resolve it)."""
    found: dict[str, metadata.EntryPoint] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry)
    return found


def _installed_text() -> str:
    names = sorted(installed())
    return (
        ", ".join(names)
        if names
        else "none (an adapter registers itself in the entry-point group " + ENTRY_POINT_GROUP + ")"
    )


@dataclass(frozen=True)
class LoadedAdapter:
    """An installed adapter, loaded and checked: its class and the record the certificate carries."""

    cls: type[Adapter]
    record: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.record["name"])

    def wrap(self, inner: httpx.BaseTransport, *, max_response_bytes: int) -> Adapter:
        """An instance translating for ``inner``, the transport to the native system."""
        try:
            adapter = self.cls(inner, max_response_bytes=max_response_bytes)
        except Exception as exc:
            raise UsageError(f"adapter {self.name}: could not be created ({type(exc).__name__}: {exc})") from None
        adapter.name = self.name
        return adapter

    def text(self) -> str:
        """How the terminal and the report name it: ``NAME version V (sha256 …)``."""
        return describe_record(self.record)


def describe_record(record: Any) -> str:
    """``NAME version V (sha256 HEX)`` of a recorded adapter."""
    from conformance.results.result import adapter_text

    return adapter_text({"adapter": record})


def load(name: str, *, phase: str | None = None) -> LoadedAdapter:
    """The installed adapter called ``name``; a :class:`UsageError` naming the installed ones otherwise."""
    entries = installed()
    entry = entries.get(name)
    if entry is None:
        raise UsageError(f"unknown adapter {name!r}: installed adapters: {_installed_text()}")
    try:
        cls = entry.load()
    except Exception as exc:
        raise UsageError(f"adapter {name} ({entry.value}) could not be loaded: {type(exc).__name__}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise UsageError(
            f"adapter {name} ({entry.value}) is not an adapter: expected a subclass of conformance.adapters.Adapter"
        )
    distribution = _distribution(entry)
    version = str(cls.version or (distribution or {}).get("version") or "").strip()
    if not version:
        raise UsageError(f"adapter {name} ({entry.value}) declares no version (set the class attribute version)")
    for what, value in (("name", name), ("version", version)):
        if not _TOKEN.match(value):
            raise UsageError(
                f"adapter {name!r} ({entry.value}): its {what} {value!r} is not a plain token "
                "(letters, digits, . _ + - and up to 64 characters)"
            )
    phases = tuple(cls.phases or ())
    if phase is not None and phase not in phases:
        raise UsageError(
            f"adapter {name} maps phases {', '.join(phases) or '(none)'} only; it cannot be used for phase {phase}"
        )
    record = {
        "name": name,
        "version": version,
        "sha256": source_digest(cls),
        "entry_point": entry.value,
        "distribution": distribution,
    }
    return LoadedAdapter(cls, record)


def _distribution(entry: metadata.EntryPoint) -> dict[str, str] | None:
    dist = getattr(entry, "dist", None)
    if dist is None:
        return None
    return {"name": str(dist.metadata["Name"]), "version": str(dist.version)}


def source_files(cls: type) -> list[Path]:
    """The source files of an adapter: its module, or every ``.py`` file of its package (sorted)."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None) or inspect.getsourcefile(cls)
    if not path:
        raise UsageError(f"adapter {cls.__qualname__}: its source file cannot be found (a built-in or frozen module)")
    source = Path(path).resolve()
    if source.name == "__init__.py":
        return sorted(p for p in source.parent.rglob("*.py") if "__pycache__" not in p.parts)
    return [source]


def source_digest(cls: type) -> str:
    """sha256 of the adapter's source: of the file itself, or over (relative path, sha256) of each package file."""
    files = source_files(cls)
    try:
        if len(files) == 1 and files[0].name != "__init__.py":
            return hashlib.sha256(files[0].read_bytes()).hexdigest()
        root = files[0].parent
        digest = hashlib.sha256()
        for path in files:
            digest.update(
                f"{path.relative_to(root).as_posix()}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode()
            )
        return digest.hexdigest()
    except OSError as exc:
        raise UsageError(f"adapter {cls.__qualname__}: cannot read its source ({exc})") from None


def describe_installed() -> list[dict[str, Any]]:
    """Every installed adapter with its record, or the reason it cannot be used (``ics-conformance adapters``)."""
    out: list[dict[str, Any]] = []
    for name in sorted(installed()):
        try:
            loaded = load(name)
        except UsageError as exc:
            out.append({"name": name, "error": str(exc)})
            continue
        out.append(dict(loaded.record, description=loaded.cls.description, phases=list(loaded.cls.phases)))
    return out
