"""What the fold knows of a job (its labels) and what it hands on when one finishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from hpcbridge.store import Job


class JobLabels(NamedTuple):
    """What the fold needs of a job record.

    While a whole history is read every job's labels are kept, and a ``Job`` would keep
    its spec and tags too: a tuple of scalars is the small form.
    """

    project: str
    workload_class: str
    backend: str
    parent: bool
    created_at: float
    cores: int = 1
    gpus: int = 0

    @property
    def base(self) -> tuple[str, str]:
        """(project, workload_class): the labels every job-level series starts with."""
        return (self.project, self.workload_class)

    @classmethod
    def of(cls, job: Job) -> JobLabels:
        resources = job.spec.get("resources")
        cores, gpus = 1, 0
        if isinstance(resources, dict):  # read for every job of a history: no Mapping ABC
            cores = (
                _count(resources, "nodes", 1)
                * _count(resources, "tasks_per_node", 1)
                * _count(resources, "cpus_per_task", 1)
            )
            gpus = _count(resources, "gpus", 0)
        return cls(
            job.project,
            job.workload_class,
            job.backend,
            job.is_array_parent,
            job.created_at,
            max(cores, 1),
            gpus,
        )


def _count(resources: dict[str, Any], key: str, default: int) -> int:
    value = resources.get(key, default)
    return value if type(value) is int else default


@dataclass(frozen=True, slots=True)
class FinishedAttempt:
    """One scheduler submission that ended (retries are attempts too)."""

    number: int
    outcome: str
    failure_class: str
    finished_at: float
    backend: str = "local"
    partition_kind: str = "regular"
    run_s: float = 0.0
    cost: float = 0.0
    """Its charge under the rate card in force (0 without one)."""
    checkpoint_durations_s: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class FinishedJob:
    """A logical job that reached a terminal state, with all its attempts."""

    job_id: str
    project: str
    workload_class: str
    outcome: str
    failure_class: str
    finished_at: float
    queue_wait_s: float | None = None
    started_at: float | None = None
    attempts: tuple[FinishedAttempt, ...] = ()
    licence_waits: tuple[tuple[float, float], ...] = ()
    """(when it ended, seconds) of each wait in ``held`` for licences of managed pools."""
