"""The real Reconciler and a MemoryStore driving the Slurm backend, cycle by cycle."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hpcbridge.backends.slurm import SlurmBackend
from hpcbridge.client import Client
from hpcbridge.policy import QuarantinePolicy
from hpcbridge.reconciler import CycleReport, Policy, Reconciler
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.states import JobState
from hpcbridge.store import Attempt, Job, JobId, MemoryStore

if TYPE_CHECKING:
    from .conftest import SlurmCluster

CYCLE_PAUSE_S = 0.5


def slurm_spec(**fields: Any) -> JobSpec:
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "itest",
        "command": ["true"],
        "backend": "slurm",
        "retry": {"max_attempts": 1},
    }
    document.update(fields)
    return load_spec_document(document)


class Rig:
    def __init__(
        self,
        backend: SlurmBackend,
        root: Path,
        *,
        lost_grace_s: float = 60.0,
        quarantine: QuarantinePolicy | None = None,
        cluster: SlurmCluster | None = None,
    ) -> None:
        self.backend = backend
        self.cluster = cluster
        """The test cluster the backend drives, where the fixture says."""
        self.store = MemoryStore()
        self.checkpoints = root / "checkpoints"
        self.reconciler = Reconciler(
            self.store,
            {"slurm": backend},
            policy=Policy(lost_grace_s=lost_grace_s),
            checkpoints_dir=root / "checkpoints",
            quarantine=quarantine,
        )
        self.reports: list[CycleReport] = []
        self.tolerate_errors = False

    def submit(self, spec: JobSpec) -> JobId:
        """A job, or an array with its tasks, stored as the client stores them."""
        rows = Client._rows_for(spec, None)
        self.store.create_jobs(rows, now=time.time(), actor="test")
        return rows[0].job_id

    def cycle(self) -> CycleReport:
        report = self.reconciler.cycle()
        self.reports.append(report)
        assert self.tolerate_errors or not report.errors, report.errors
        return report

    def until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self.cycle()
            if condition():
                return
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
            time.sleep(CYCLE_PAUSE_S)

    def job(self, job_id: JobId) -> Job:
        return self.store.get_job(job_id)

    def attempts(self, job_id: JobId) -> list[Attempt]:
        return self.store.attempts(job_id)

    def wait_state(self, job_id: JobId, states: set[JobState], timeout_s: float = 60.0) -> Job:
        self.until(
            lambda: self.job(job_id).state in states,
            timeout_s,
            f"job {job_id} to reach {sorted(states)} (now {self.job(job_id)})",
        )
        return self.job(job_id)

    def wait_done(self, job_id: JobId, timeout_s: float = 60.0) -> Job:
        return self.wait_state(
            job_id, {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}, timeout_s
        )

    def cancel(self, job_id: JobId) -> None:
        job = self.job(job_id)
        if not job.state.terminal:
            self.store.update_job(
                job_id, expected_version=job.version, now=time.time(), cancel_requested=True
            )

    def native_ids(self) -> list[str]:
        return [
            attempt.native_id
            for job in self.store.list_jobs()
            for attempt in self.store.attempts(job.job_id)
            if attempt.native_id
        ]
