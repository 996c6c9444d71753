"""The backend port: what the reconciler asks of every scheduler.

A backend is a few plain functions around one place that runs processes: ``check`` what
it cannot honour, ``submit`` one attempt, ``poll`` all active attempts in one batched call,
``find`` an orphan by its token after a crash, ``cancel`` and ``kill``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """Everything a backend needs to start one attempt of one job (or array task)."""

    job_id: str
    attempt: int
    token: str
    spec: JobSpec
    env: Mapping[str, str]
    """HPCBRIDGE_* variables the control plane adds (job id, attempt, checkpoint dir...)."""


@dataclass(frozen=True, slots=True)
class AttemptRef:
    """An attempt the backend was asked to run, as the store remembers it."""

    job_id: str
    attempt: int
    token: str
    native_id: str | None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Submitted:
    native_id: str
    details: Mapping[str, Any] = field(default_factory=dict)
    running: bool = False
    """True when the attempt started at once (the local executor), not merely queued."""


@dataclass(frozen=True, slots=True)
class Deferred:
    """The backend has no room now; the job stays queued with ``reason``."""

    reason: str


class Phase(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the scheduler does not know it (yet, or any more)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the backend saw of one attempt in one poll."""

    phase: Phase
    reason: str | None = None
    failure_class: FailureClass | None = None
    exit_code: int | None = None
    signal: int | None = None
    nodes: tuple[str, ...] = ()
    started_at: float | None = None
    ended_at: float | None = None
    rss_mb: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    name: str

    def check(self, spec: JobSpec) -> list[str]:
        """Problems (``field: why``) that stop this backend from honouring ``spec``."""
        ...

    def submit(self, request: LaunchRequest) -> Submitted | Deferred: ...

    def find(self, ref: AttemptRef) -> Submitted | None:
        """The submission carrying ``ref.token`` if it reached the scheduler, else None."""
        ...

    def poll(self, refs: Sequence[AttemptRef], now: float) -> dict[str, Observation]:
        """Observations keyed by token, from one batched look at the scheduler."""
        ...

    def kill(self, ref: AttemptRef, failure_class: FailureClass, now: float) -> None:
        """Stop an attempt on the control plane's own decision (walltime, memory, cancel)."""
        ...

    def log_paths(self, ref: AttemptRef) -> tuple[Path | None, Path | None]:
        """stdout and stderr of an attempt, where this machine can read them."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    state: str
    partitions: tuple[str, ...] = ()
    drained: bool = False
    reason: str | None = None


@runtime_checkable
class NodeControl(Protocol):
    """Backends that can take a node out of service (Slurm's drain) implement this too."""

    def nodes(self) -> list[NodeInfo]: ...

    def drain(self, node: str, reason: str) -> None: ...

    def resume(self, node: str) -> None: ...


@runtime_checkable
class ArraySubmit(Protocol):
    """Backends with native arrays (Slurm's ``--array``) submit an array's tasks at once.

    Tokens ``<key>.<index>`` sharing one key make ``index`` the native task index, so one
    submission carries many attempts and ``find`` still adopts each after a crash.
    """

    def submit_array(
        self, requests: Sequence[LaunchRequest], *, throttle: int | None = None
    ) -> list[Submitted]: ...


def array_token(key: str, index: int) -> str:
    return f"{key}.{index}"


def split_array_token(token: str) -> tuple[str, int] | None:
    """``(key, index)`` of an array-task token ``<key>.<index>``, else None."""
    key, dot, index = token.rpartition(".")
    if dot and key and index.isdigit():
        return key, int(index)
    return None


class WakeUp(Protocol):
    """Called by a backend when something changed, so the reconciler need not wait a full
    period; ``settled`` when nothing it was given is still waiting or running, so that a
    pause between busy cycles can end at once (the last results are all in)."""

    def __call__(self, *, settled: bool = False) -> None: ...
