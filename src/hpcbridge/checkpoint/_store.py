"""The on-disk layout and how a checkpoint is verified before anyone may load it.

<dir>/step-00000042/manifest.json    committed checkpoints; the name carries the step
<dir>/.tmp-step-00000043-...         a save in progress (or a crashed one): never read
<dir>/.trash-...                     being deleted: never read
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._errors import CorruptCheckpointError
from ._hashing import can_verify, digest_bytes, hash_file
from ._manifest import MANIFEST_NAME, FileEntry, Manifest

Verify = Literal["full", "size"]

STEP_PREFIX = "step-"
TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
_STEP_NAME = re.compile(r"step-(\d{8,})(?:\.([1-9]\d*))?")


def step_name(step: int, generation: int = 0) -> str:
    """``step-00000042``; saving a step again uses ``.1``, ``.2``... since a rename onto an
    existing directory cannot be atomic, and moving the old one aside first would leave a
    moment with neither."""
    name = f"{STEP_PREFIX}{step:08d}"
    return f"{name}.{generation}" if generation else name


@dataclass(frozen=True, order=True, slots=True)
class Entry:
    step: int
    generation: int
    path: Path


def committed(directory: Path) -> list[Entry]:
    """Committed checkpoint directories, oldest first."""
    found: list[Entry] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return found
    for entry in entries:
        match = _STEP_NAME.fullmatch(entry.name)
        if match and entry.is_dir(follow_symlinks=False):
            generation = int(match.group(2) or 0)
            found.append(Entry(int(match.group(1)), generation, Path(entry.path)))
    found.sort()
    return found


@dataclass(frozen=True, slots=True)
class Skipped:
    """A checkpoint that :meth:`Checkpointer.latest_valid` refused, and why."""

    path: Path
    step: int
    reason: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A committed checkpoint that passed verification.

    ``verified`` says how far: ``"size"`` also where ``"full"`` was asked for but the
    manifest's digests cannot be computed here (BLAKE3 of manifest version 1 without the
    ``blake3`` package); :meth:`Checkpointer.latest_valid` reports that with a warning.
    """

    path: Path
    manifest: Manifest
    verified: Verify
    skipped: tuple[Skipped, ...] = field(default=())
    """Newer checkpoints that were refused on the way to this one."""

    @property
    def step(self) -> int:
        return self.manifest.step

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.manifest.metadata)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(entry.path for entry in self.manifest.files)

    def entry(self, name: str) -> FileEntry:
        for candidate in self.manifest.files:
            if candidate.path == name:
                return candidate
        raise KeyError(f"checkpoint {self.path.name} has no file {name!r}")

    def file(self, name: str) -> Path:
        """Path of a file listed in the manifest (``KeyError`` for anything else)."""
        return self.path / self.entry(name).path

    def read_bytes(self, name: str) -> bytes:
        """The file's bytes, checked against the manifest again after reading them (only
        their size where the manifest's digests cannot be computed here)."""
        entry = self.entry(name)
        data = (self.path / entry.path).read_bytes()
        algorithm = self.manifest.algorithm
        if len(data) != entry.size or (
            can_verify(algorithm) and digest_bytes(algorithm, data) != entry.digest
        ):
            raise CorruptCheckpointError(f"{self.path.name}/{name} changed after verification")
        return data

    def read_json(self, name: str = "state.json") -> Any:
        return json.loads(self.read_bytes(name))


def verify(path: Path, mode: Verify) -> tuple[Manifest, Verify]:
    """Check a committed checkpoint as far as ``mode`` asks and this machine can; return
    the manifest and how far it got, or raise :class:`CorruptCheckpointError` with a reason.
    """
    try:
        raw = (path / MANIFEST_NAME).read_bytes()
    except FileNotFoundError:
        raise CorruptCheckpointError("missing manifest") from None
    except OSError as exc:
        raise CorruptCheckpointError(f"manifest unreadable: {exc}") from None
    manifest = Manifest.from_json(raw)
    match = _STEP_NAME.fullmatch(path.name)
    if match is None or int(match.group(1)) != manifest.step:
        raise CorruptCheckpointError(f"manifest step {manifest.step} does not match the name")
    for entry in manifest.files:
        target = path / entry.path
        try:
            size = os.stat(target, follow_symlinks=False).st_size
        except FileNotFoundError:
            raise CorruptCheckpointError(f"file missing: {entry.path}") from None
        if size != entry.size:
            raise CorruptCheckpointError(
                f"size mismatch: {entry.path} (expected {entry.size}, found {size})"
            )
    if mode == "size" or not can_verify(manifest.algorithm):
        return manifest, "size"
    for entry in manifest.files:
        size, digest = hash_file(path / entry.path, manifest.algorithm)
        if size != entry.size or digest != entry.digest:
            raise CorruptCheckpointError(f"checksum mismatch: {entry.path}")
    return manifest, "full"


def walk_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Every regular file under ``root`` as ``(posix relative path, path)``, sorted."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            path = base / name
            yield path.relative_to(root).as_posix(), path


def temp_owner(name: str) -> tuple[int | None, str, int] | None:
    """Parse ``.tmp-step-<n>-a<attempt>-<host>-<pid>-<rand>`` into (attempt, host, pid)."""
    parts = name.split("-")
    if not name.startswith(TEMP_PREFIX) or len(parts) != 7:
        return None
    _, _, _, attempt, host, pid, _ = parts
    try:
        return (int(attempt[1:]) or None, host, int(pid))
    except ValueError:
        return None


def host_tag() -> str:
    return hashlib.sha256(os.uname().nodename.encode()).hexdigest()[:8]
