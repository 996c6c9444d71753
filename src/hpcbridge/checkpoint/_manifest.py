"""The manifest: what a checkpoint contains, and how to tell when it has been damaged.

The manifest carries a SHA-256 of its own canonical body, so a flipped bit in the manifest
itself is caught as surely as one in a data file.

Version 2 (written now) always names ``sha256-tree-8MiB``, which any machine can verify
with the standard library; version 1 named ``sha256`` or ``blake3`` (see ``_hashing``).
Both versions are read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ._errors import CorruptCheckpointError
from ._hashing import TREE

MANIFEST_NAME = "manifest.json"
FORMAT = "hpcbridge.checkpoint"
VERSION = 2
ALGORITHMS = {1: ("sha256", "blake3"), 2: (TREE,)}
"""The algorithms each readable manifest version may name."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a checkpoint: POSIX path relative to the checkpoint directory."""

    path: str
    size: int
    digest: str


@dataclass(frozen=True, slots=True)
class Manifest:
    step: int
    created: float
    algorithm: str
    files: tuple[FileEntry, ...]
    job_id: str | None = None
    attempt: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    version: int = VERSION

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "step": self.step,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "created": self.created,
            "algorithm": self.algorithm,
            "files": [{"path": f.path, "size": f.size, "digest": f.digest} for f in self.files],
            "total_bytes": self.total_bytes,
            "metadata": dict(self.metadata),
        }

    def to_json(self) -> bytes:
        body = self.body()
        document = {**body, "manifest_digest": _self_digest(body)}
        return (json.dumps(document, indent=1, allow_nan=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse and check a manifest; raise :class:`CorruptCheckpointError` with a reason."""
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptCheckpointError(f"manifest is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise CorruptCheckpointError("manifest is not a JSON object")
        if document.get("format") != FORMAT:
            raise CorruptCheckpointError(f"manifest format is not {FORMAT!r}")
        version = document.get("version")
        if version not in ALGORITHMS or isinstance(version, bool):
            raise CorruptCheckpointError(f"manifest version {version!r} is not supported")
        stated = document.pop("manifest_digest", None)
        if stated != _self_digest(document):
            raise CorruptCheckpointError("manifest checksum mismatch")
        try:
            manifest = cls(
                step=_int(document["step"]),
                created=float(document["created"]),
                algorithm=str(document["algorithm"]),
                files=tuple(_entry(item) for item in document["files"]),
                job_id=_optional_str(document["job_id"]),
                attempt=None if document["attempt"] is None else _int(document["attempt"]),
                metadata=dict(document["metadata"]),
                version=_int(version),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptCheckpointError(f"manifest has a malformed field: {exc!r}") from None
        if manifest.algorithm not in ALGORITHMS[manifest.version]:
            raise CorruptCheckpointError(
                f"manifest version {manifest.version} cannot name algorithm {manifest.algorithm!r}"
            )
        if manifest.total_bytes != document.get("total_bytes"):
            raise CorruptCheckpointError("manifest total_bytes disagrees with its files")
        return manifest


def _self_digest(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a non-negative integer")
    return value


def _optional_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _entry(item: object) -> FileEntry:
    if not isinstance(item, dict):
        raise TypeError("file entry is not an object")
    path, digest = item["path"], item["digest"]
    if not isinstance(path, str) or not isinstance(digest, str):
        raise TypeError("file path and digest must be strings")
    check_relative(path)
    return FileEntry(path=path, size=_int(item["size"]), digest=digest)


def check_relative(path: str) -> str:
    """Refuse paths that could escape the checkpoint directory or shadow the manifest."""
    pure = PurePosixPath(path)
    if (
        not path
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
        or "\\" in path
        or "\0" in path
    ):
        raise ValueError(f"{path!r} is not a plain relative path")
    if path == MANIFEST_NAME:
        raise ValueError(f"{MANIFEST_NAME!r} is reserved for the SDK")
    return path


def finite_json(obj: object) -> bytes:
    """Serialise user JSON strictly: NaN and infinity would not round-trip elsewhere."""
    try:
        return json.dumps(obj, allow_nan=False).encode()
    except ValueError as exc:
        raise ValueError(f"not strictly JSON-serialisable: {exc}") from None
