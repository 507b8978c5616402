"""Reading a bundle safely, from its directory or its zip, without extracting it.

Both forms give the same view: names relative to the bundle root, sizes, and content in
chunks, with limits on member count and size; anything an extractor could turn into a
file other than the one named (links, unsafe paths, duplicates) is reported as a
:class:`Bad` member.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from conformance.certificate.bundle import MANIFEST
from conformance.errors import UsageError

# Reading limits for untrusted bundles.
MAX_MEMBERS = 20_000
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
_CHUNK = 1024 * 1024


class Source:
    """Uniform read access to a bundle directory or zip (paths relative to the bundle root)."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def size(self, rel: str) -> int:
        raise NotImplementedError

    def chunks(self, rel: str) -> Iterator[bytes]:
        raise NotImplementedError

    def read(self, rel: str, limit: int) -> bytes:
        data = bytearray()
        for chunk in self.chunks(rel):
            data += chunk
            if len(data) > limit:
                raise Bad(rel, f"larger than {limit} bytes")
        return bytes(data)

    def close(self) -> None:
        pass


class Bad(Exception):
    """A member of the bundle that fails a check: ``rel`` names it, ``problem`` says why."""

    def __init__(self, rel: str, problem: str) -> None:
        super().__init__(f"{rel}: {problem}")
        self.rel, self.problem = rel, problem


class DirSource(Source):
    def __init__(self, root: Path) -> None:
        self.root = root
        self._names: list[str] = []
        self._unsafe: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for entry in sorted(dirnames + filenames):
                full = Path(dirpath) / entry
                rel = full.relative_to(root).as_posix()
                mode = full.lstat().st_mode
                if stat.S_ISLNK(mode):
                    self._unsafe.append((rel, "is a symbolic link"))
                elif stat.S_ISREG(mode):
                    self._names.append(rel)
                elif not stat.S_ISDIR(mode):
                    self._unsafe.append((rel, "is not a regular file"))
            if len(self._names) > MAX_MEMBERS:
                raise UsageError(f"{root}: more than {MAX_MEMBERS} files; not a bundle")

    def names(self) -> list[str]:
        if self._unsafe:
            raise Bad(*self._unsafe[0])
        return sorted(self._names)

    def size(self, rel: str) -> int:
        return (self.root / rel).lstat().st_size

    def chunks(self, rel: str) -> Iterator[bytes]:
        with open(self.root / rel, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk


class ZipSource(Source):
    def __init__(self, path: Path) -> None:
        try:
            self.archive = zipfile.ZipFile(path)
            infos = self.archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise UsageError(f"{path}: not a readable zip archive ({exc})") from exc
        if len(infos) > MAX_MEMBERS:
            raise UsageError(f"{path}: more than {MAX_MEMBERS} members; not a bundle")
        if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
            raise UsageError(f"{path}: declares more than {MAX_TOTAL_BYTES} bytes uncompressed; refusing (zip bomb?)")
        self.infos: dict[str, zipfile.ZipInfo] = {}
        self._unsafe: list[tuple[str, str]] = []
        # The bundle root: the folder holding manifest.json (normally the one top-level folder).
        roots = sorted(i.filename[: -len(MANIFEST)] for i in infos if i.filename.rsplit("/", 1)[-1] == MANIFEST)
        prefix = roots[0] if len(roots) == 1 else ""
        for info in infos:
            raw = info.filename
            if info.is_dir():
                continue
            rel = raw[len(prefix) :] if raw.startswith(prefix) else raw
            problem = unsafe_member(raw, info)
            if problem is None and not raw.startswith(prefix):
                problem = f"outside the bundle folder {prefix.rstrip('/')!r} (extra file)"
            if problem:
                self._unsafe.append((raw, problem))
            elif rel in self.infos:
                self._unsafe.append((rel, "appears twice in the zip"))
            else:
                self.infos[rel] = info

    def names(self) -> list[str]:
        if self._unsafe:
            raise Bad(*self._unsafe[0])
        return sorted(self.infos)

    def size(self, rel: str) -> int:
        return self.infos[rel].file_size

    def chunks(self, rel: str) -> Iterator[bytes]:
        info = self.infos[rel]
        if info.file_size > MAX_FILE_BYTES:
            raise Bad(rel, f"larger than {MAX_FILE_BYTES} bytes")
        total = 0
        try:
            with self.archive.open(info) as handle:
                while chunk := handle.read(_CHUNK):
                    total += len(chunk)
                    if total > info.file_size:
                        raise Bad(rel, "expands beyond its declared size (zip bomb?)")
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise Bad(rel, f"unreadable in the zip ({exc})") from exc

    def close(self) -> None:
        self.archive.close()


def unsafe_member(name: str, info: zipfile.ZipInfo) -> str | None:
    if "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "unsafe path in the zip"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "unsafe path in the zip"
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def open_source(path: Path) -> Source:
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such bundle (a directory or .zip)")
    if path.is_dir():
        return DirSource(path)
    if path.is_file():
        return ZipSource(path)
    raise UsageError(f"{path}: not a directory or a zip file")


def sha256_of(source: Source, rel: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in source.chunks(rel):
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise Bad(rel, f"larger than {MAX_FILE_BYTES} bytes")
        digest.update(chunk)
    return digest.hexdigest(), size
