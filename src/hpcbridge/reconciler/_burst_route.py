"""The burst policy's inputs, gathered before it decides: the scheduler's cached start
estimate (from the submission's ``sbatch --test-only``), the jobs of this store still
waiting in the same place (queue depth), the rate card's prices on both sides, the burst
budgets' use and the input size from staging. ``decide_burst`` then only does arithmetic.
A ``residency`` tag (``residency: onprem``) counts as the spec's ``burst.residency``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hpcbridge.cost import Budget, CardBook, burst_use, estimate
from hpcbridge.policy import BurstBudgetLeft, BurstInputs
from hpcbridge.spec import JobSpec
from hpcbridge.states import JobState
from hpcbridge.store import JobFilter, Store

POWER_UP_S = 60.0
"""A powered-down cloud node's resume and boot until the job starts (seen: about 25-45 s)."""
_WAITING = (JobState.ACCEPTED, JobState.STAGING_IN, JobState.QUEUED, JobState.HELD)


def estimate_start(text: str | None) -> float | None:
    """The epoch seconds of a start estimate ``2026-12-06 02:00:00 on n1 (1 CPU)`` (the
    scheduler's local time); None when absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").timestamp()
    except ValueError:
        return None


def queue_depth(store: Store, spec: JobSpec) -> int:
    """Jobs of this store on the same backend and cluster not yet running."""
    jobs = store.list_jobs(JobFilter(states=frozenset(_WAITING)))
    return sum(1 for job in jobs if job.backend == spec.backend and job.cluster == spec.cluster)


def burst_inputs(
    spec: JobSpec,
    *,
    store: Store,
    cards: CardBook,
    budgets: Sequence[Budget],
    start_estimate: str | None,
    egress_bytes: int,
    cluster: str,
    now: float,
    power_up_s: float = POWER_UP_S,
) -> BurstInputs:
    burst = spec.burst
    starts = estimate_start(start_estimate)
    onprem = estimate(spec, cards, cluster=cluster, partition=spec.placement.partition, at=now)
    cloud = estimate(spec, cards, cluster=cluster, partition=burst.partition, at=now)
    uses = burst_use(store, cards, budgets, spec, partition=burst.partition, now=now)
    return BurstInputs(
        eligible=burst.eligible,
        wait_threshold_s=burst.wait_threshold_s,
        onprem_wait_s=None if starts is None else max(starts - now, 0.0),
        burst_wait_s=power_up_s,
        partition=burst.partition,
        onprem_cost=onprem.amount if onprem else None,
        burst_cost=cloud.amount if cloud else None,
        currency=next((e.currency for e in (cloud, onprem) if e is not None), ""),
        egress_bytes=egress_bytes,
        egress_price_gb=cloud.egress_gb_price if cloud else 0.0,
        max_egress_gb=burst.max_egress_gb,
        job_cap=burst.budget_cap,
        residency=(*burst.residency, *_tagged(spec)),
        budgets=tuple(
            BurstBudgetLeft(u.budget.name, u.budget.period, u.used, u.limit, u.budget.owner)
            for u in uses
        ),
        queue_depth=queue_depth(store, spec),
    )


def _tagged(spec: JobSpec) -> tuple[str, ...]:
    """A ``residency`` tag counts as the spec's own residency."""
    return tuple(r.strip() for r in spec.tags.get("residency", "").split(",") if r.strip())
