"""The manifest of a job's staged files: what each path must contain, with its digest.

Written atomically (temp file, fsync, rename) next to the data, read back by a resumed
stage and by the job wrapper on the node (``hpcbridge.checkpoint.verify_inputs``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION = 1
INPUTS = "inputs.json"
OUTPUTS = "outputs.json"


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    """Where the bytes are now: an absolute local path or a URL."""
    source: str
    size: int
    digest: str
    """``<algorithm>:<hex>``"""

    @property
    def algorithm(self) -> str:
        return self.digest.partition(":")[0]


def manifest_dir(data_dir: Path) -> Path:
    return data_dir / ".hpcbridge"


def write_manifest(
    path: Path, kind: str, files: Iterable[FileRecord], *, unsynced_boot: str | None = None
) -> None:
    """``unsynced_boot``: the files were left to this boot's writeback, not synced (the
    node's check then tells a crash's torn copy from a changed one)."""
    # One line per file, each encoded by the C encoder (``indent`` takes the pure-Python
    # one, which cost more than copying a 4 KiB file).
    lines = ",\n".join(
        json.dumps({"path": f.path, "source": f.source, "size": f.size, "digest": f.digest})
        for f in sorted(files, key=lambda f: f.path)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        boot = "" if unsynced_boot is None else f', "unsynced_boot": {json.dumps(unsynced_boot)}'
        f.write(
            f'{{"version": {VERSION}, "kind": {json.dumps(kind)}{boot}, "files": [\n{lines}\n]}}\n'
        )
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_manifest(path: Path) -> list[FileRecord]:
    """The files of a manifest; none where it is missing or unreadable (stage again)."""
    try:
        document: dict[str, Any] = json.loads(path.read_text())
        return [FileRecord(**entry) for entry in document["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
