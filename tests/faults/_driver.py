"""A control plane that keeps crashing: cycles under faults, restarts after each Crash, and
the check of what happened against what was recorded."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcbridge.reconciler import Policy, Reconciler
from hpcbridge.states import AttemptState, JobState
from hpcbridge.store import JobFilter, SqlStore

from ._inject import Crash, FaultPlan, FaultyBackend, FaultyStore, with_array_submit


@dataclass
class Driver:
    """Reconciler cycles against a real backend and an SQLite store, under ``plan``."""

    url: str
    backend_name: str
    make_backend: Callable[[], Any]
    bury: Callable[[Any], None]
    """What the death of the process takes with it from a backend instance."""
    plan: FaultPlan
    root: Path
    lost_grace_s: float = 30.0
    queue_dies_with_process: bool = False
    """The backend's queue of attempts not started yet lives in this process (local)."""
    sent: Counter[str] = field(default_factory=Counter)
    crashes: int = 0
    failed_cycles: int = 0
    _store: SqlStore | None = None
    _backend: Any = None
    _reconciler: Reconciler | None = None

    def start(self) -> None:
        self._store = SqlStore(self.url)
        self._backend = self.make_backend()
        scope = f"life {self.crashes}: " if self.queue_dies_with_process else ""
        backend = with_array_submit(FaultyBackend(self._backend, self.plan, self.sent, scope))
        self._reconciler = Reconciler(
            FaultyStore(self._store, self.plan),
            {self.backend_name: backend},
            policy=Policy(lost_grace_s=self.lost_grace_s),
            checkpoints_dir=self.root / "checkpoints",
        )

    def cycle(self) -> None:
        assert self._reconciler is not None
        try:
            self._reconciler.cycle()
        except Crash:
            self.crashes += 1
            self.restart()
        except Exception:  # a cycle that failed as a whole: a supervisor loop retries
            self.failed_cycles += 1

    def restart(self) -> None:
        self.bury(self._backend)
        if self._store is not None:
            self._store.close()
        self.start()

    def run_until_done(self, timeout_s: float, pause_s: float = 0.05) -> None:
        """Cycle under faults until every job is finished, then without faults if needed."""
        deadline = time.monotonic() + timeout_s
        while not self.all_done():
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs still active after {timeout_s}s: {self.active()}")
            self.cycle()
            time.sleep(pause_s)

    def all_done(self) -> bool:
        return not self.active()

    def active(self) -> list[str]:
        store = SqlStore(self.url)
        try:
            return [j.job_id for j in store.active_jobs()]
        finally:
            store.close()

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        if self._store is not None:
            self._store.close()


def check_truth(url: str, runs: Mapping[str, list[int]], sent: Counter[str]) -> list[str]:
    """Every way the record and reality disagree (empty: none).

    ``runs``: for each job id, the attempt numbers whose program ran to its end, as the
    programs themselves wrote them down."""
    problems: list[str] = []
    resent = {token: n for token, n in sent.items() if n > 1}
    if resent:
        problems.append(f"duplicate submissions: {resent}")
    store = SqlStore(url)
    try:
        jobs = store.list_jobs(JobFilter())
        for job in jobs:
            if job.is_array_parent:
                continue
            ran = runs.get(job.job_id, [])
            twice = {n: c for n, c in Counter(ran).items() if c > 1}
            if twice:
                problems.append(f"{job.job_id}: attempts executed more than once: {twice}")
            attempts = {a.number: a for a in store.attempts(job.job_id)}
            if job.state is not JobState.SUCCEEDED:
                problems.append(f"{job.job_id}: ended {job.state.value} ({job.reason})")
            succeeded = [a for a in attempts.values() if a.state is AttemptState.SUCCEEDED]
            if len(succeeded) != (1 if job.state is JobState.SUCCEEDED else 0):
                problems.append(f"{job.job_id}: {len(succeeded)} attempts recorded succeeded")
            for number in ran:
                attempt = attempts.get(number)
                if attempt is None:
                    problems.append(f"{job.job_id}: attempt {number} ran, no record of it")
                elif attempt.started_at is None:
                    problems.append(f"{job.job_id}: attempt {number} ran, recorded as not")
            for attempt in succeeded:
                if attempt.number not in ran:
                    problems.append(
                        f"{job.job_id}: attempt {attempt.number} recorded succeeded, never ran"
                    )
        parents = [j for j in jobs if j.is_array_parent]
        for parent in parents:
            if parent.state is not JobState.SUCCEEDED:
                problems.append(f"array {parent.job_id}: ended {parent.state.value}")
    finally:
        store.close()
    return problems
