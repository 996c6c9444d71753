"""Each cluster's partitions, nodes and licences, asked at most every ``FACTS_TTL_S``.

Preflight asks before every submission, and every CLI command is a new process: the facts
are kept in memory and in ``<home>/slurm/<cluster>.facts.json``, so that a burst of
submissions costs slurmctld three queries a minute, not three per job.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path

from hpcbridge.backends.slurm._preflight import ClusterFacts, collect
from hpcbridge.backends.slurm._transport import Transport

FACTS_TTL_S = 60.0
"""How old cached facts may be: partitions, nodes and licences change rarely."""


class FactsCache:
    def __init__(self, directory: Path, ttl_s: float = FACTS_TTL_S) -> None:
        self._directory = directory
        self._ttl_s = ttl_s
        self._facts: dict[str, ClusterFacts] = {}
        self._lock = threading.Lock()

    def get(self, cluster: str, transport: Transport, now: float) -> ClusterFacts:
        """Fresh enough facts of ``cluster``; asks it (three queries) when they are not."""
        with self._lock:
            facts = self._facts.get(cluster) or self._read(cluster)
            if facts is not None and 0 <= now - facts.taken_at < self._ttl_s:
                self._facts[cluster] = facts
                return facts
        facts = collect(
            cluster, transport.partitions(), transport.nodes(), transport.licences(), now
        )
        with self._lock:
            self._facts[cluster] = facts
        self._write(facts)
        return facts

    def _path(self, cluster: str) -> Path:
        return self._directory / f"{cluster}.facts.json"

    def _read(self, cluster: str) -> ClusterFacts | None:
        try:
            return ClusterFacts.from_json(json.loads(self._path(cluster).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none yet, or unreadable: ask the cluster

    def _write(self, facts: ClusterFacts) -> None:
        """Atomically (several processes share the file); a cache that cannot be written
        only costs the next process its own queries."""
        with contextlib.suppress(OSError):
            self._directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self._directory, suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump(facts.to_json(), handle)
                os.replace(temp, self._path(facts.cluster))
            except OSError:
                os.unlink(temp)
                raise
