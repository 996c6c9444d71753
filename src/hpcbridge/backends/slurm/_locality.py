"""Node-local input caches on a Slurm cluster: the job script's step and what nodes hold.

With ``node_cache_dir`` set for a cluster, a single-node job with staged inputs runs
``hpcbridge.checkpoint.node_cache`` on its node before ``verify_inputs`` (the step renders
from two variables, so the script stays one line longer). Each run reports what its node
holds in the attempt's status directory; ``Holdings`` keeps the newest report per node in
``<home>/slurm/<cluster>.node_cache.json`` for placement (``_placement``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpcbridge.checkpoint.node_cache import DIR_VARIABLE, MAX_BYTES_VARIABLE, REPORT

MANIFEST_VARIABLE = "HPCBRIDGE_INPUT_MANIFEST"
NODE_CACHE_VARIABLE = DIR_VARIABLE


def node_cache_env(directory: str | None, max_gb: float, nodes: int) -> dict[str, str]:
    """The variables that turn the node cache step on, for a job on ``nodes`` nodes."""
    if not directory or nodes != 1:  # a multi-node job's ranks read the shared copy
        return {}
    return {DIR_VARIABLE: directory, MAX_BYTES_VARIABLE: str(int(max_gb * (1 << 30)))}


def node_cache_step(env: Mapping[str, str]) -> list[str]:
    """The job script line that runs the node cache before the command (outermost wrapper:
    it runs first, then execs into ``verify_inputs``, which checks the linked copies)."""
    if MANIFEST_VARIABLE not in env or DIR_VARIABLE not in env:
        return []
    return [
        'set -- "${HPCBRIDGE_PYTHON:-python3}" -m hpcbridge.checkpoint.node_cache '
        '"$HPCBRIDGE_INPUT_MANIFEST" "${HPCBRIDGE_STATUS_DIR:-}" -- "$@"'
    ]


def inputs_of(manifest: str | os.PathLike[str]) -> dict[str, int]:
    """digest -> bytes of a staged input manifest; empty where it cannot be read."""
    try:
        files = json.loads(Path(manifest).read_text())["files"]
        return {str(entry["digest"]): int(entry["size"]) for entry in files}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def read_report(status_dir: str) -> dict[str, Any] | None:
    """The node cache report of one attempt, once its node wrote one."""
    try:
        report = json.loads(Path(status_dir, REPORT).read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


class Holdings:
    """node -> {digest: bytes} its cache held at its newest report, kept in a file that
    every process of the installation shares (written atomically)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def read(self) -> dict[str, dict[str, int]]:
        return {node: entry["holds"] for node, entry in self._entries().items()}

    def _entries(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def learn(self, report: Mapping[str, Any]) -> None:
        node, holds, at = report.get("node"), report.get("holds"), report.get("at", 0.0)
        if not isinstance(node, str) or not isinstance(holds, dict):
            return  # a run whose cache could not be used reports no holdings
        with self._lock:
            entries = self._entries()
            if entries.get(node, {}).get("at", 0.0) > at:
                return  # a newer report of that node is already known
            entries[node] = {"at": at, "holds": holds}
            with contextlib.suppress(OSError):  # costs placement, never a job
                self._path.parent.mkdir(parents=True, exist_ok=True)
                fd, temp = tempfile.mkstemp(dir=self._path.parent, suffix=".tmp")
                with os.fdopen(fd, "w") as handle:
                    json.dump(entries, handle)
                os.replace(temp, self._path)
