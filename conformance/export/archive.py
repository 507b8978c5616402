"""Safe access to an export: a directory or a zip archive, never extracted to disk.

Only regular files at the top level (or under one common top-level folder of a zip)
are readable. Symlinks, special files, sub-folders, path-traversal or absolute zip
entries, nested archives and duplicate entries are never opened; they are reported as
``problems`` (unexpected files, ICS-1A-EXP-002). Zip members are streamed and bounded
by size and compression-ratio limits (zip bombs); an archive that cannot be read at all
raises :class:`~conformance.errors.InconclusiveError` (exit 3).
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from conformance.errors import InconclusiveError, UsageError

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Resource limits applied to every export read."""

    max_line_bytes: int = 16 * MIB
    max_member_bytes: int = 64 * 1024 * MIB
    max_total_bytes: int = 256 * 1024 * MIB
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 8 * MIB  # members smaller than this are not ratio-checked
    max_entries: int = 10_000
    max_manifest_bytes: int = 16 * MIB


@dataclass(frozen=True)
class Problem:
    """An archive entry that was refused (not read)."""

    name: str
    message: str


@dataclass(frozen=True)
class SourceSpec:
    """Picklable description of an export, re-opened by worker processes."""

    kind: str  # "directory" | "zip"
    path: str
    prefix: str = ""


@dataclass
class ExportSource:
    """An opened export: its readable members and the entries refused."""

    spec: SourceSpec
    members: dict[str, int] = field(default_factory=dict)  # name -> uncompressed size
    problems: list[Problem] = field(default_factory=list)

    def open(self, name: str) -> BinaryIO:
        """Open member ``name`` for binary streaming (caller closes)."""
        return open_member(self.spec, name)


def _unsafe_name(name: str) -> str | None:
    if "\x00" in name:
        return "entry name contains a NUL byte"
    if "\\" in name:
        return "entry name contains a backslash"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path entry refused"
    if ".." in PurePosixPath(name).parts:
        return "path traversal ('..') entry refused"
    return None


def _open_directory(path: Path, limits: Limits) -> ExportSource:
    source = ExportSource(SourceSpec("directory", str(path)))
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise InconclusiveError(f"{path}: export directory unreadable: {exc.strerror or exc}") from None
    if len(entries) > limits.max_entries:
        raise InconclusiveError(f"{path}: {len(entries)} entries exceed the limit of {limits.max_entries}")
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            source.problems.append(Problem(entry.name, f"unreadable entry: {exc.strerror or exc}"))
            continue
        if stat.S_ISLNK(st.st_mode):
            source.problems.append(Problem(entry.name, "symbolic link refused (not followed)"))
        elif stat.S_ISDIR(st.st_mode):
            source.problems.append(Problem(entry.name + "/", "unexpected folder in the export (not read)"))
        elif not stat.S_ISREG(st.st_mode):
            source.problems.append(Problem(entry.name, "not a regular file (device, pipe or socket) refused"))
        elif entry.name.lower().endswith(".zip"):
            source.problems.append(Problem(entry.name, "nested archive refused (not opened)"))
        else:
            source.members[entry.name] = st.st_size
    return source


def _open_zip(path: Path, limits: Limits) -> ExportSource:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise InconclusiveError(f"{path}: unreadable zip archive: {exc}") from None
    if len(infos) > limits.max_entries:
        raise InconclusiveError(f"{path}: {len(infos)} zip entries exceed the limit of {limits.max_entries}")
    files = [i for i in infos if not i.is_dir()]
    tops = {i.filename.split("/", 1)[0] for i in files if "/" in i.filename}
    prefix = ""
    if files and len(tops) == 1 and all("/" in i.filename for i in files):
        prefix = next(iter(tops)) + "/"
    source = ExportSource(SourceSpec("zip", str(path), prefix))
    total = 0
    for info in infos:
        name = info.filename
        unsafe = _unsafe_name(name)
        if unsafe:
            source.problems.append(Problem(name, unsafe))
            continue
        if info.is_dir():
            if name.rstrip("/") + "/" != prefix:
                source.problems.append(Problem(name, "unexpected folder in the export (not read)"))
            continue
        mode = (info.external_attr >> 16) & 0o170000
        if mode == stat.S_IFLNK:
            source.problems.append(Problem(name, "symbolic link entry refused (not followed)"))
            continue
        if mode not in (0, stat.S_IFREG):
            source.problems.append(Problem(name, "not a regular file entry refused"))
            continue
        local = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        if "/" in local:
            source.problems.append(Problem(name, "unexpected file in a sub-folder (not read)"))
            continue
        if local.lower().endswith(".zip"):
            source.problems.append(Problem(name, "nested archive refused (not opened)"))
            continue
        if info.flag_bits & 0x1:
            source.problems.append(Problem(name, "encrypted entry refused"))
            continue
        if local in source.members:
            source.problems.append(Problem(name, "duplicate entry refused (the first one is read)"))
            continue
        if info.file_size > limits.max_member_bytes:
            raise InconclusiveError(
                f"{path}: {name} declares {info.file_size} bytes, over the limit of {limits.max_member_bytes} (zip bomb?)"
            )
        if info.file_size >= limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise InconclusiveError(
                f"{path}: {name} expands {info.file_size / max(info.compress_size, 1):.0f}x, over the ratio limit of "
                f"{limits.max_ratio:.0f}x (zip bomb?)"
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise InconclusiveError(f"{path}: archive expands to more than {limits.max_total_bytes} bytes (zip bomb?)")
        source.members[local] = info.file_size
    return source


def open_export(path: str | os.PathLike[str], limits: Limits | None = None) -> ExportSource:
    """Inspect the export at ``path`` (directory or zip) without reading any record."""
    limits = limits or Limits()
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise UsageError(f"{p}: no such export (expected a directory or a .zip file)")
    if p.is_dir():
        return _open_directory(p, limits)
    if not p.is_file():
        raise InconclusiveError(f"{p}: not a directory or a regular file")
    try:
        with open(p, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise InconclusiveError(f"{p}: unreadable: {exc.strerror or exc}") from None
    if magic[:2] != b"PK":
        raise InconclusiveError(f"{p}: not a zip archive (and not a directory)")
    return _open_zip(p, limits)


class _ZipMember(io.RawIOBase):
    """A zip member stream that also closes its archive."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        self._archive = archive
        self._stream = archive.open(name)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # io.RawIOBase takes any writable buffer
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._archive.close()
            super().close()


def open_member(spec: SourceSpec, name: str) -> BinaryIO:
    """Open member ``name`` of the export described by ``spec`` (binary, streaming)."""
    if spec.kind == "directory":
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(os.path.join(spec.path, name), flags)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{name}: not a regular file")
        return os.fdopen(fd, "rb", buffering=0)
    archive = zipfile.ZipFile(spec.path)
    try:
        return _ZipMember(archive, spec.prefix + name)  # type: ignore[return-value]  # a RawIOBase read like a BinaryIO
    except BaseException:
        archive.close()
        raise


@contextmanager
def member(spec: SourceSpec, name: str) -> Iterator[BinaryIO]:
    """Context manager around :func:`open_member`."""
    stream = open_member(spec, name)
    try:
        yield stream
    finally:
        stream.close()
