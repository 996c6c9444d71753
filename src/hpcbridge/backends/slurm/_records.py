"""What the parsers make of Slurm's outputs: plain frozen records, whatever the transport."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Source = Literal["queue", "accounting"]


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One Slurm job (or array task) as squeue/REST ``/jobs`` or sacct/``/slurmdb`` saw it."""

    key: str
    """hpcbridge's native id: ``123``, or ``14_5`` for task 5 of array job 14."""
    job_id: int
    """Slurm's own id of this record (a running array task has its own)."""
    name: str
    state: str
    """Base state in capitals: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ..."""
    source: Source
    reason: str = ""
    """Slurm's reason code (``Licenses``, ``Resources``...), empty for ``None``."""
    array_job_id: int | None = None
    array_task_id: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    nodes: tuple[str, ...] = ()
    partition: str = ""
    user: str = ""
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    elapsed_s: float | None = None
    time_limit_s: float | None = None
    restarts: int = 0
    requeue: bool | None = None
    licences: Mapping[str, int] = field(default_factory=dict)
    alloc_tres: Mapping[str, str] = field(default_factory=dict)
    mem_per_node_mb: float | None = None
    """Memory granted per node (allocated TRES mem / nodes, else the request)."""
    max_rss_mb: float | None = None
    """Largest resident set of any task of any step."""
    cancelled_by: str | None = None
    """Who cancelled it (user name, or ``uid N``), when Slurm says."""
    batch_state: str = ""
    """State of the job's batch step (sacct only; empty when unknown)."""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeRecord:
    name: str
    state: str
    """Base state in lower case: idle, mixed, allocated, down, ..."""
    state_flags: tuple[str, ...]
    """DRAIN, NOT_RESPONDING, POWERED_DOWN, CLOUD, ..."""
    features: tuple[str, ...]
    gres: str
    gres_used: str
    cpus_alloc: int
    cpus_total: int
    mem_alloc_mb: int
    mem_total_mb: int
    reason: str
    partitions: tuple[str, ...]

    @property
    def drained(self) -> bool:
        return "DRAIN" in self.state_flags or self.state in ("drained", "draining")

    @property
    def summary(self) -> str:
        """State and flags as one word, like sinfo: ``idle+DRAIN``."""
        return "+".join((self.state, *self.state_flags))


@dataclass(frozen=True, slots=True)
class PartitionRecord:
    name: str
    state: str
    nodes: tuple[str, ...]
    total_cpus: int
    default: bool
    max_time_s: float | None
    pending: int = 0
    running: int = 0


# -- value parsers -------------------------------------------------------------------------

_LICENCE = re.compile(r"^([^:*@()]+)(?:@[^:*]+)?(?:[:*](\d+))?$")
_MEM = re.compile(r"^\s*([0-9.]+)\s*([KMGTP]?)([nc]?)\s*$", re.IGNORECASE)
_MEM_FACTOR_MB = {"": 1.0, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}


def parse_mem_mb(text: str | None, *, default_unit: str = "M") -> float | None:
    """``500M`` -> 500, ``1335912K`` -> 1304.6, ``2G`` -> 2048; empty -> None."""
    if not text:
        return None
    match = _MEM.match(text)
    if match is None:
        return None
    value, unit = float(match.group(1)), (match.group(2) or default_unit).upper()
    return value * _MEM_FACTOR_MB[unit]


def parse_tres(text: str | None) -> dict[str, str]:
    """``cpu=1,mem=500M,gres/gpu=1,license/fluent=3`` -> a dict of those strings."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


def parse_licences(text: str | None) -> dict[str, int]:
    """``fluent:3,abaqus*2`` (or ``fluent`` alone, meaning 1) -> ``{'fluent': 3, ...}``."""
    out: dict[str, int] = {}
    for item in (text or "").split(","):
        match = _LICENCE.match(item.strip())
        if match is None:
            continue
        name, count = match.group(1), int(match.group(2) or 1)
        out[name] = out.get(name, 0) + count
    return out


def parse_elapsed_s(text: str | None) -> float | None:
    """``1-02:03:04``, ``02:03:04``, ``03:04``, ``03:04.500`` -> seconds; other -> None."""
    if not text or text in ("UNLIMITED", "Partition_Limit", "INVALID", "NONE"):
        return None
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    if len(parts) == 1:  # bare minutes, as in Timelimit/--time
        seconds *= 60
    return days * 86400 + seconds


def parse_epoch(text: str | None) -> float | None:
    """A time printed with ``SLURM_TIME_FORMAT=%s``; ``Unknown``/``None``/0 -> None."""
    if not text or not text.strip().isdigit():
        return None
    value = float(text)
    return value or None


def wait_status(status: int | None) -> tuple[int | None, int | None]:
    """A raw wait(2) status (squeue/REST ``exit_code``) -> (exit code, signal)."""
    if status is None:
        return None, None
    low = status & 0x7F
    if low and low != 0x7F:
        return None, low
    return (status >> 8) & 0xFF, None


def tres_mem_per_node_mb(tres: Mapping[str, str]) -> float | None:
    mem = parse_mem_mb(tres.get("mem"))
    if mem is None:
        return None
    nodes = int(tres.get("node") or 1) or 1
    return mem / nodes
