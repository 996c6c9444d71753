"""Data preflight before anything is stored: inputs exist and can be read, how many bytes
they are, whether they fit where they go, and how long copying them should take."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hpcbridge.spec import JobSpec
from hpcbridge.staging._errors import StagingError
from hpcbridge.staging._plan import plan_in
from hpcbridge.staging._urls import locate

ASSUMED_BPS = {"file": 500e6, "local": 500e6}
"""Rough throughput per protocol for the estimate (bytes/s); others use DEFAULT_BPS."""
DEFAULT_BPS = 100e6
HEADROOM = 1.05
"""Inputs must fit with 5 % to spare: a full disk fails every job on it, not only this one."""


@dataclass(frozen=True, slots=True)
class DataPreflight:
    files: int = 0
    bytes_total: int = 0
    bytes_free: int | None = None
    estimated_s: float = 0.0
    problems: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> dict[str, object]:
        return {
            "files": self.files,
            "bytes_total": self.bytes_total,
            "bytes_free": self.bytes_free,
            "estimated_s": round(self.estimated_s, 1),
        }

    def describe(self) -> str:
        mib = self.bytes_total / (1 << 20)
        free = "" if self.bytes_free is None else f", {self.bytes_free / (1 << 30):.1f} GiB free"
        return (
            f"inputs: {self.files} files, {mib:.1f} MiB{free}, about "
            f"{max(1, round(self.estimated_s))}s to stage"
        )


def preflight(spec: JobSpec, data_dir: Path) -> DataPreflight:
    """Every data problem of ``spec`` (``field: why; fix``), and what staging will cost."""
    problems: list[str] = []
    try:
        tasks = plan_in(spec.stage_in, data_dir)
    except StagingError as exc:
        return DataPreflight(problems=(_line(exc),))
    for n, entry in enumerate(spec.stage_out):
        try:
            locate(entry.dest, data_dir, writable=True)
        except StagingError as exc:
            problems.append(f"stage_out[{n}].dest: {_line(exc)}")
    total = sum(t.size or 0 for t in tasks)
    estimated = sum((t.size or 0) / ASSUMED_BPS.get(t.source.protocol, DEFAULT_BPS) for t in tasks)
    free = _free_bytes(data_dir)
    if free is not None and total * HEADROOM > free:
        problems.append(
            f"stage_in: {total / (1 << 20):.1f} MiB of inputs do not fit in the "
            f"{free / (1 << 20):.1f} MiB free under {data_dir.parent}; free space or stage less"
        )
    return DataPreflight(len(tasks), total, free, estimated, tuple(problems))


def _line(exc: StagingError) -> str:
    return exc.message if exc.hint is None else f"{exc.message}; {exc.hint}"


def _free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return None


def check_data(spec: JobSpec, data_dir: Path) -> list[str]:
    """The problems of :func:`preflight` alone, for a submission's checks."""
    return list(preflight(spec, data_dir).problems)
