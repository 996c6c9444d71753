"""How long recent jobs of a licence pool waited ``held``: the preflight's estimate."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping

from hpcbridge.states import JobState
from hpcbridge.store import Event, JobFilter, Store

RECENT_JOBS = 20
"""Jobs of a pool the estimate is the median of."""
_SCANNED = 500
"""Newest jobs looked at to find them (jobs of other pools are skipped)."""


def held_s(events: Iterable[Event], pool: str) -> float | None:
    """Seconds the job waited held for ``pool`` (0 if it never did); None while it has
    not been released to the queue yet."""
    waited, since = 0.0, None
    for event in events:
        if event.to_state is JobState.HELD and pool in event.data.get("licences", {}):
            since = event.time
        elif event.from_state is JobState.HELD and since is not None:
            waited += event.time - since
            since = None
        if event.to_state is JobState.QUEUED and since is None:
            return waited
    return None


def recent_waits(store: Store, pool: str) -> list[float]:
    """Held seconds of the latest jobs that asked ``pool`` for licences, newest first."""
    waits: list[float] = []
    for job in store.newest_jobs(JobFilter(limit=_SCANNED)):
        licences = job.spec.get("licences")
        if job.is_array_parent or not isinstance(licences, Mapping) or pool not in licences:
            continue
        wait = held_s(store.events(job.job_id), pool)
        if wait is not None:
            waits.append(wait)
        if len(waits) >= RECENT_JOBS:
            break
    return waits


def wait_estimates(store: Store, pools: Iterable[str]) -> dict[str, float]:
    """Median held seconds per pool over its recent jobs (pools without any are left out)."""
    found = {pool: recent_waits(store, pool) for pool in pools}
    return {pool: statistics.median(waits) for pool, waits in found.items() if waits}
