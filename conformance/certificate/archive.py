"""Reading a bundle safely, from its directory or its zip, without extracting it.

Both forms give the same view: names relative to the bundle root, sizes, and content in
chunks, with limits on member count and size. A bundle zip is read **strictly**, so that
what ``verify`` checks is exactly what any extractor (``unzip``, 7-Zip, Windows Explorer,
a streaming reader, Python's ``zipfile``) would write to disk. Refused, as a :class:`Bad`
member naming the problem:

- the structure: data before the first entry or between entries, a local entry the
  central directory does not reference (streaming extractors read those), a local header
  whose name, flags, method, CRC or sizes differ from its central directory record,
  anything after the end record (an archive comment), ZIP64, split archives, data
  descriptors, encryption, compression other than stored or deflate;
- extra fields that rename a member or could: the Info-ZIP Unicode Path (0x7075) and
  Unicode Comment (0x6375) fields, and any extra field other than the timestamp and
  owner fields (0x5455, 0x7875, 0x000a);
- the names: directory entries, names outside the one bundle folder, anything but the
  portable characters ``A-Z a-z 0-9 . _ -`` and ``/`` between components, ``.``/``..``
  or empty components, a component ending in a dot or named like a Windows device
  (``CON``, ``NUL``, ``COM1`` ...), the same name twice, names that differ only in case,
  a name that is both a file and a folder; links and other non-regular files.

A bundle directory is held to the same name rules (links and special files refused), so
the department may verify either the zip or the directory extracted from it, with the
same result.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from conformance.certificate.bundle import MANIFEST
from conformance.errors import UsageError

# Reading limits for untrusted bundles.
MAX_MEMBERS = 20_000
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
_CHUNK = 1024 * 1024

_PORTABLE = re.compile(r"[A-Za-z0-9._-]+")
_DEVICE = re.compile(r"(?i)(con|prn|aux|nul|com[0-9]|lpt[0-9]|conin\$|conout\$)(\..*)?")
_MAX_COMPONENT = 200

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_LOCAL_SIG, _CENTRAL_SIG, _END_SIG, _ZIP64_LOCATOR_SIG = 0x04034B50, 0x02014B50, 0x06054B50, 0x07064B50
#: Extra fields that only carry times or owners (written by Info-ZIP's zip and by Windows tools).
_HARMLESS_EXTRA = {0x5455: "extended timestamp", 0x7875: "Info-ZIP Unix owner", 0x000A: "NTFS times"}
_RENAMING_EXTRA = {0x7075: "Info-ZIP Unicode Path", 0x6375: "Info-ZIP Unicode Comment", 0x0001: "ZIP64"}
#: General-purpose flag bits a bundle member may carry: deflate options (1, 2) and UTF-8 names (11).
_ALLOWED_FLAGS = 0x0002 | 0x0004 | 0x0800


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


# --------------------------------------------------------------------------- names


def name_problem(rel: str) -> str | None:
    """Why ``rel`` (a ``/``-separated path) could be extracted differently by some tool, or None."""
    if not rel:
        return "empty name"
    if rel.endswith("/"):
        return "is a directory entry (a bundle zip holds files only)"
    if "\\" in rel or ":" in rel:
        return "unsafe path (backslash or colon: a Windows path separator, drive or stream)"
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            return "unsafe path (empty, '.' or '..' component)"
        if not _PORTABLE.fullmatch(part):
            return "name uses characters outside A-Z a-z 0-9 . _ - (extractors may write it differently)"
        if part.endswith("."):
            return "name component ends with a dot (Windows drops it, so extractors disagree)"
        if _DEVICE.fullmatch(part):
            return "name component is a Windows device name"
        if len(part) > _MAX_COMPONENT:
            return f"name component longer than {_MAX_COMPONENT} characters"
    return None


def collisions(names: Iterable[str]) -> tuple[str, str] | None:
    """The first ``(name, problem)`` where names collide once extracted: same name, case only, file vs folder."""
    files: dict[str, str] = {}
    folders: dict[str, str] = {}
    ordered = list(names)
    for name in ordered:
        key = name.casefold()
        if key in files:
            other = files[key]
            return name, "appears twice in the bundle" if other == name else f"differs from {other!r} only in case"
        files[key] = name
        parts = name.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            seen = folders.setdefault(folder.casefold(), folder)
            if seen != folder:
                return name, f"folder {folder!r} differs from {seen!r} only in case"
    for key, name in files.items():
        if key in folders:
            return name, "is both a file and a folder of other members"
    return None


# --------------------------------------------------------------------------- directory


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
                    problem = name_problem(rel)
                    if problem:
                        self._unsafe.append((rel, problem))
                    self._names.append(rel)
                elif not stat.S_ISDIR(mode):
                    self._unsafe.append((rel, "is not a regular file"))
                elif (problem := name_problem(rel + "/x")) is not None:
                    self._unsafe.append((rel, problem))
            if len(self._names) > MAX_MEMBERS:
                raise UsageError(f"{root}: more than {MAX_MEMBERS} files; not a bundle")
        clash = collisions(sorted(self._names))
        if clash:
            self._unsafe.append(clash)

    def names(self) -> list[str]:
        if self._unsafe:
            raise Bad(*self._unsafe[0])
        return sorted(self._names)

    def size(self, rel: str) -> int:
        return (self.root / rel).lstat().st_size

    def chunks(self, rel: str) -> Iterator[bytes]:
        fd = os.open(self.root / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk


# --------------------------------------------------------------------------- zip


@dataclass(frozen=True)
class _Entry:
    """One central directory record, as the bytes say (not as zipfile interprets them)."""

    name: bytes
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    offset: int
    mode: int
    dos_attributes: int


class ZipStructureError(Exception):
    """The zip's bytes admit more than one reading; ``member`` names the entry when there is one."""

    def __init__(self, member: str, problem: str) -> None:
        super().__init__(f"{member}: {problem}")
        self.member, self.problem = member, problem


def _extra_problem(extra: bytes) -> str | None:
    position = 0
    while position < len(extra):
        if position + 4 > len(extra):
            return "truncated extra field"
        ident, length = struct.unpack_from("<HH", extra, position)
        position += 4 + length
        if position > len(extra):
            return "truncated extra field"
        if ident in _RENAMING_EXTRA:
            return f"carries an {_RENAMING_EXTRA[ident]} extra field (0x{ident:04x}): extractors that honour it write another name"
        if ident not in _HARMLESS_EXTRA:
            return f"carries an unknown extra field 0x{ident:04x} (bundle zips carry none)"
    return None


def _shown(name: bytes) -> str:
    return name.decode("utf-8", errors="backslashreplace")


def read_structure(handle: BinaryIO, size: int) -> list[_Entry]:
    """Parse and cross-check every header of the zip in ``handle``; :class:`ZipStructureError` if ambiguous."""
    if size < _END.size:
        raise zipfile.BadZipFile("too short to be a zip archive")
    handle.seek(size - _END.size)
    end = handle.read(_END.size)
    sig, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment = _END.unpack(end)
    if sig != _END_SIG or comment != 0:
        handle.seek(max(0, size - _END.size - 0xFFFF))
        if b"PK\x05\x06" not in handle.read():
            raise zipfile.BadZipFile("no end-of-central-directory record")
        raise ZipStructureError(
            "(zip)", "does not end with a bare end-of-central-directory record (archive comment or trailing data)"
        )
    if size >= _END.size + 20:
        handle.seek(size - _END.size - 20)
        if struct.unpack("<I", handle.read(4))[0] == _ZIP64_LOCATOR_SIG:
            raise ZipStructureError("(zip)", "is a ZIP64 archive (bundle zips are not)")
    if disk or cd_disk or on_disk != total:
        raise ZipStructureError("(zip)", "is a split (multi-disk) archive")
    if cd_offset + cd_size != size - _END.size:
        raise ZipStructureError("(zip)", "has data between the central directory and the end record")
    if total > MAX_MEMBERS:
        raise UsageError(f"zip declares more than {MAX_MEMBERS} members; not a bundle")
    handle.seek(cd_offset)
    directory = handle.read(cd_size)
    entries: list[_Entry] = []
    position = 0
    for _ in range(total):
        if position + _CENTRAL.size > len(directory):
            raise ZipStructureError("(zip)", "central directory shorter than its entry count")
        fields = _CENTRAL.unpack_from(directory, position)
        (sig, _made, _needed, flags, method, _time, _date, crc, compressed, length) = fields[:10]
        name_len, extra_len, comment_len, disk_start, _internal, external, offset = fields[10:]
        if sig != _CENTRAL_SIG:
            raise ZipStructureError("(zip)", "damaged central directory")
        start = position + _CENTRAL.size
        name = directory[start : start + name_len]
        extra = directory[start + name_len : start + name_len + extra_len]
        position = start + name_len + extra_len + comment_len
        if position > len(directory):
            raise ZipStructureError("(zip)", "central directory entry runs past its end")
        shown = _shown(name)
        if comment_len:
            raise ZipStructureError(shown, "carries an entry comment (bundle zips carry none)")
        if disk_start:
            raise ZipStructureError(shown, "lives on another disk (split archive)")
        problem = _extra_problem(extra)
        if problem:
            raise ZipStructureError(shown, problem)
        if flags & 0x1:
            raise ZipStructureError(shown, "is encrypted")
        if flags & 0x8:
            raise ZipStructureError(
                shown, "uses a data descriptor (streaming extractors cannot trust its header sizes)"
            )
        if flags & ~_ALLOWED_FLAGS:
            raise ZipStructureError(shown, f"carries unexpected general-purpose flags 0x{flags:04x}")
        if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ZipStructureError(shown, f"compressed with method {method} (bundles use stored or deflate)")
        entries.append(_Entry(name, flags, method, crc, compressed, length, offset, external >> 16, external & 0xFF))
    if position != len(directory):
        raise ZipStructureError("(zip)", "central directory holds more than its entry count (hidden entries)")
    if sum(e.size for e in entries) > MAX_TOTAL_BYTES:
        raise UsageError(f"zip declares more than {MAX_TOTAL_BYTES} bytes uncompressed; refusing (zip bomb?)")
    # Walk the local headers: they must follow one another from offset 0 and end where the
    # central directory begins, each matching its central record. Anything else is data a
    # streaming extractor would read and verify would not.
    expected = 0
    for entry in sorted(entries, key=lambda e: e.offset):
        shown = _shown(entry.name)
        if entry.offset != expected:
            what = "overlaps the previous entry" if entry.offset < expected else "is preceded by unreferenced data"
            raise ZipStructureError(
                shown, f"{what} (a local entry the central directory does not reference, or a prefix)"
            )
        handle.seek(entry.offset)
        header = handle.read(_LOCAL.size)
        if len(header) != _LOCAL.size:
            raise ZipStructureError(shown, "local header runs past the end of the zip")
        sig, _needed, flags, method, _time, _date, crc, compressed, length, name_len, extra_len = _LOCAL.unpack(header)
        if sig != _LOCAL_SIG:
            raise ZipStructureError(shown, "central directory points at no local header")
        name = handle.read(name_len)
        extra = handle.read(extra_len)
        if name != entry.name:
            raise ZipStructureError(shown, f"its local header names it {_shown(name)!r} (extractors disagree)")
        if (flags, method, crc, compressed, length) != (
            entry.flags,
            entry.method,
            entry.crc,
            entry.compressed,
            entry.size,
        ):
            raise ZipStructureError(
                shown, "its local header and central directory record disagree (flags, method, CRC or sizes)"
            )
        problem = _extra_problem(extra)
        if problem:
            raise ZipStructureError(shown, f"(local header) {problem}")
        expected = entry.offset + _LOCAL.size + name_len + extra_len + entry.compressed
    if expected != cd_offset:
        raise ZipStructureError(
            "(zip)", "has data between the last entry and the central directory (a local entry it does not reference)"
        )
    return entries


class ZipSource(Source):
    def __init__(self, path: Path) -> None:
        self._unsafe: list[tuple[str, str]] = []
        self.infos: dict[str, zipfile.ZipInfo] = {}
        self.archive: zipfile.ZipFile | None = None
        try:
            size = path.stat().st_size
            with open(path, "rb") as handle:
                entries = read_structure(handle, size)
            self.archive = zipfile.ZipFile(path)
            infos = self.archive.infolist()
        except ZipStructureError as exc:
            member = (
                exc.member.split("/", 1)[1] if exc.member.count("/") and not exc.member.startswith("/") else exc.member
            )
            self._unsafe.append((member or exc.member, exc.problem))
            return
        except (zipfile.BadZipFile, OSError, ValueError, struct.error) as exc:
            raise UsageError(f"{path}: not a readable zip archive ({exc})") from exc
        by_offset = {info.header_offset: info for info in infos}
        if len(infos) != len(entries) or set(by_offset) != {e.offset for e in entries}:
            self._unsafe.append(("(zip)", "Python's zipfile reads a different set of entries than the headers hold"))
            return
        decoded: list[tuple[_Entry, str | None]] = []
        for entry in sorted(entries, key=lambda e: e.offset):
            try:
                decoded.append((entry, entry.name.decode("ascii")))
            except UnicodeDecodeError:
                decoded.append((entry, None))
        plain = [name for _, name in decoded if name is not None]
        root = self._root(plain) if plain else ""

        def rel(name: str) -> str:  # problems are named relative to the bundle folder, as for a directory
            return name[len(root) + 1 :] if name.startswith(root + "/") and len(name) > len(root) + 1 else name

        members: dict[str, zipfile.ZipInfo] = {}
        for entry, name in decoded:
            if name is None:
                shown = _shown(entry.name)
                shown = shown[len(root) + 1 :] if shown.startswith(root + "/") else shown
                self._unsafe.append((shown, "name is not plain ASCII (extractors may decode it differently)"))
                continue
            info = by_offset[entry.offset]
            if info.filename != name:
                self._unsafe.append((rel(name), f"zipfile reads its name as {info.filename!r}"))
                continue
            problem = name_problem(name)
            kind = stat.S_IFMT(entry.mode)
            if problem is None and kind and kind != stat.S_IFREG:
                problem = "is a symbolic link" if kind == stat.S_IFLNK else "is not a regular file"
            if problem is None and entry.dos_attributes & 0x10:
                problem = "is marked as a directory"
            if problem:
                self._unsafe.append((rel(name), problem))
                continue
            if name in members:
                self._unsafe.append((rel(name), "appears twice in the zip"))
                continue
            members[name] = info
        clash = collisions(rel(name) for name in members)
        if clash:
            self._unsafe.append(clash)
        for name, info in members.items():
            if "/" not in name or name.split("/", 1)[0] != root:
                self._unsafe.append((name, f"outside the bundle folder {root!r} of the zip (extra file)"))
            else:
                self.infos[rel(name)] = info

    @staticmethod
    def _root(names: list[str]) -> str:
        """The folder holding manifest.json (else the first folder)."""
        holding = [n.split("/", 1)[0] for n in names if n.count("/") == 1 and n.endswith("/" + MANIFEST)]
        return holding[0] if holding else names[0].split("/", 1)[0]

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
        if self.archive is None:  # pragma: no cover - names() refused the zip before any read
            raise Bad(rel, "the zip was refused")
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
        if self.archive is not None:
            self.archive.close()


def unsafe_member(name: str, info: zipfile.ZipInfo) -> str | None:
    """Why a zip member could be extracted as something other than the named file, or None."""
    problem = name_problem(name)
    if problem:
        return problem
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
