"""The cycle's licence bookkeeping, done before deciding so that ``decide()`` stays pure.

Licences in use are those of this store's jobs queued, running or lost (the scheduler
holds them, or they were released to it); each job released in this cycle takes its share
before the next one is decided, so one cycle never hands out more than the pool has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog

from hpcbridge.policy import LicenceMonitor, PoolHealth
from hpcbridge.reconciler._actions import Action, Transition
from hpcbridge.reconciler._licence_wait import LicenceNeed
from hpcbridge.spec import JobSpec
from hpcbridge.states import JobState
from hpcbridge.store import Job

log = structlog.get_logger("hpcbridge.reconciler")

# A lost job may still run where the scheduler cannot be asked: its licences stay counted.
_HOLDING = (JobState.QUEUED, JobState.RUNNING, JobState.LOST)
_WAITING = (JobState.ACCEPTED, JobState.STAGING_IN, JobState.RETRY_WAIT, JobState.HELD)


class LicenceBook:
    def __init__(self, monitor: LicenceMonitor | None) -> None:
        self._monitor = monitor
        self._free: Counter[str] = Counter()
        self._health: dict[str, PoolHealth] = {}

    def begin(self, jobs: Iterable[Job], spec_of: Callable[[Job], JobSpec], now: float) -> None:
        """Count licences in use and check the pools waiting jobs ask of (checks start
        processes: call this outside any transaction)."""
        self._free.clear()
        self._health = {}
        if self._monitor is None or not self._monitor.pools:
            return
        used: Counter[str] = Counter()
        wanted: set[str] = set()
        for job in jobs:
            if job.is_array_parent or (job.state not in _HOLDING and job.state not in _WAITING):
                continue  # a parent's tasks hold its licences
            for pool, count in self._requested(job, spec_of).items():
                if job.state in _HOLDING:
                    used[pool] += count
                else:
                    wanted.add(pool)
        if not wanted:
            return
        self._health = self._monitor.health(sorted(wanted), now)
        for pool, health in self._health.items():
            self._free[pool] = max(0, health.capacity - used[pool])

    def needs(self, job: Job, spec: JobSpec) -> tuple[LicenceNeed, ...]:
        """What ``decide()`` needs to know of the managed pools ``job`` asks of."""
        if job.is_array_parent or job.state not in _WAITING or not self._health:
            return ()
        assert self._monitor is not None
        found = []
        for pool, count in sorted(spec.licences.items()):
            health = self._health.get(pool)
            if health is None:
                continue
            grace = self._monitor.pools[pool].unavailable_grace_s
            found.append(
                LicenceNeed(
                    pool,
                    count,
                    self._free[pool],
                    health.total,
                    health.capacity,
                    health.down_since,
                    grace,
                )
            )
        return tuple(found)

    def decided(self, needs: Sequence[LicenceNeed], actions: Sequence[Action]) -> None:
        """A job released to the queue takes its licences from what later jobs see."""
        if needs and any(
            isinstance(a, Transition) and a.target is JobState.QUEUED for a in actions
        ):
            for need in needs:
                self._free[need.pool] = max(0, self._free[need.pool] - need.count)

    def _requested(self, job: Job, spec_of: Callable[[Job], JobSpec]) -> Mapping[str, int]:
        assert self._monitor is not None
        try:
            licences = spec_of(job).licences
        except Exception:  # an unreadable spec fails in decide; it holds nothing here
            return {}
        return {p: n for p, n in licences.items() if p in self._monitor.pools}
