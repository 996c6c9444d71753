"""Quotas checked at submission (each project's own, see ``hpcbridge.policy``):
submissions per minute and requested core-hours per rolling day. (Running jobs per project
are limited where jobs start, in the reconciler: work beyond that quota waits in the queue
with a reason that says so.)

Requested core-hours are nodes x tasks per node x CPUs per task x walltime, times the
tasks of an array; a job without a walltime counts as one hour.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from hpcbridge.errors import QuotaExceededError
from hpcbridge.policy import Quotas
from hpcbridge.spec import parse_duration_s
from hpcbridge.store import Job, JobFilter, Store

MINUTE_S = 60.0
DAY_S = 86_400.0
_DEFAULT_WALLTIME_S = 3600.0
_PAGE = 500


def requested_core_hours(document: Mapping[str, Any], tasks: int = 0) -> float:
    """Core-hours a job (its stored or submitted spec document) asks for at most."""
    resources = document.get("resources") or {}
    cores = 1
    for key in ("nodes", "tasks_per_node", "cpus_per_task"):
        value = resources.get(key, 1) if isinstance(resources, Mapping) else 1
        cores *= value if isinstance(value, int) and value > 0 else 1
    walltime = resources.get("walltime") if isinstance(resources, Mapping) else None
    try:
        walltime_s = parse_duration_s(walltime) if walltime is not None else _DEFAULT_WALLTIME_S
    except ValueError:
        walltime_s = _DEFAULT_WALLTIME_S
    return cores * walltime_s / 3600 * max(tasks, 1)


def check_submission(
    store: Store, quotas: Quotas, project: str, document: Mapping[str, Any], tasks: int, now: float
) -> None:
    """QuotaExceededError (with when to retry) if this submission would pass a quota."""
    if quotas.submissions_per_minute is not None:
        _check_rate(store, quotas.submissions_per_minute, project, now)
    if quotas.core_hours_per_day is not None:
        _check_core_hours(store, quotas.core_hours_per_day, project, document, tasks, now)


def _check_rate(store: Store, limit: int, project: str, now: float) -> None:
    recent = store.newest_jobs(
        JobFilter(projects=frozenset({project}), top_level_only=True, limit=limit)
    )
    if len(recent) < limit or recent[-1].created_at <= now - MINUTE_S:
        return
    retry = recent[-1].created_at + MINUTE_S - now
    raise QuotaExceededError(
        f"project {project!r} submitted {limit} jobs in the last minute, its quota",
        retry_after_s=_whole(retry),
    )


def _check_core_hours(
    store: Store,
    limit: float,
    project: str,
    document: Mapping[str, Any],
    tasks: int,
    now: float,
) -> None:
    wanted = requested_core_hours(document, tasks)
    if wanted > limit:
        raise QuotaExceededError(
            f"the job asks for {wanted:.1f} core-hours, more than project {project!r} may "
            f"use in a day ({limit:g})",
            retry_after_s=DAY_S,
            hint="ask for less walltime or fewer CPUs, or split the work",
        )
    day = [
        (job.created_at, requested_core_hours(job.spec, job.task_count))
        for job in _since(store, project, now - DAY_S)
    ]
    used = sum(hours for _, hours in day)
    total = used + wanted
    if total <= limit:
        return
    for created_at, hours in sorted(day):  # the oldest leave the window first
        used -= hours
        if used + wanted <= limit:
            retry = created_at + DAY_S - now
            break
    else:
        retry = DAY_S
    raise QuotaExceededError(
        f"project {project!r} asked for {total:.1f} core-hours in the last day with "
        f"this job, over its quota of {limit:g}",
        retry_after_s=_whole(retry),
    )


def _since(store: Store, project: str, since: float) -> Iterator[Job]:
    """The project's top-level jobs created after ``since``, newest first, page by page."""
    query = JobFilter(projects=frozenset({project}), top_level_only=True, limit=_PAGE)
    while True:
        page = store.newest_jobs(query)
        for job in page:
            if job.created_at <= since:
                return
            yield job
        if len(page) < _PAGE:
            return
        query = JobFilter(
            projects=query.projects,
            top_level_only=True,
            limit=_PAGE,
            before=(page[-1].created_at, page[-1].job_id),
        )


def _whole(seconds: float) -> float:
    return float(max(1, math.ceil(seconds)))
