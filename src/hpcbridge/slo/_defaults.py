"""The SLOs hpcbridge ships with, and why (see docs/slo.md for the long form)."""

from __future__ import annotations

from typing import Any

from hpcbridge.slo import _metrics as m
from hpcbridge.slo._model import TICKET_WINDOWS, SloDefinition
from hpcbridge.states import INFRASTRUCTURE_FAILURES

PLATFORM_BAD_CLASSES: tuple[str, ...] = tuple(sorted(c.value for c in INFRASTRUCTURE_FAILURES))
"""Failure classes charged to the platform: node_failure, preempted, lost, backend_unavailable.

timeout, oom and app_error follow from what the job asked for or did; staging_error and
checksum_mismatch are usually a wrong URL or expected checksum. They count in job-success
SLOs (the user's view), not in platform-success ones.
"""

_TICKET_ONLY: dict[str, Any] = {"page": (), "ticket": TICKET_WINDOWS}


def _ratio(
    total: dict[str, Any], *, bad: dict[str, Any] | None = None, good: dict[str, Any] | None = None
) -> dict[str, Any]:
    ratio: dict[str, Any] = {"total": total}
    if bad is not None:
        ratio["bad"] = bad
    if good is not None:
        ratio["good"] = good
    return {"ratio": ratio}


_NOT_CANCELLED = {"outcome": "cancelled"}

DEFAULT_SLO_DOCUMENTS: tuple[dict[str, Any], ...] = (
    {
        "name": "platform-success",
        "description": "Logical jobs not failed by the platform (node, preemption, lost, "
        "backend), all classes",
        "sli": _ratio(
            {"metric": m.JOBS_FINISHED, "where_not": _NOT_CANCELLED},
            bad={"metric": m.JOBS_FINISHED, "where": {"failure_class": PLATFORM_BAD_CLASSES}},
        ),
        "objective": 0.99,
        "runbook": "triage",
    },
    {
        "name": "attempt-platform-success",
        "description": "Attempts not ended by the platform; retries cannot hide failures here",
        "sli": _ratio(
            {"metric": m.ATTEMPTS_FINISHED, "where_not": _NOT_CANCELLED},
            bad={"metric": m.ATTEMPTS_FINISHED, "where": {"failure_class": PLATFORM_BAD_CLASSES}},
        ),
        "objective": 0.97,
        "alerting": _TICKET_ONLY,
        "runbook": "node-failure",
    },
    {
        "name": "job-success-critical",
        "description": "Critical-class jobs that succeed, whatever the cause of failure",
        "workload_class": "critical",
        "sli": _ratio(
            {"metric": m.JOBS_FINISHED, "where_not": _NOT_CANCELLED},
            good={"metric": m.JOBS_FINISHED, "where": {"outcome": "succeeded"}},
        ),
        "objective": 0.99,
        "runbook": "triage",
    },
    {
        "name": "queue-wait-priority",
        "description": "Priority-class jobs that start within 1 h of being queued (p95 < 1 h)",
        "workload_class": "priority",
        "sli": {"threshold": {"metric": m.QUEUE_WAIT, "le": 3600}},
        "objective": 0.95,
        "runbook": "scheduler-misconfiguration",
    },
    {
        "name": "licence-wait",
        "description": "Waits in held for licences of a managed pool that end within 30 min "
        "(F4: licences run out and stall the queue)",
        "sli": {"threshold": {"metric": m.LICENCE_WAIT, "le": 1800}},
        "objective": 0.95,
        "runbook": "licence-exhaustion",
    },
    {
        "name": "preemption-regular",
        "description": "Attempts not preempted on regular (non-spot) partitions",
        "sli": _ratio(
            {"metric": m.ATTEMPTS_FINISHED, "where_not": _NOT_CANCELLED},
            bad={"metric": m.PREEMPTIONS, "where": {"partition_kind": "regular"}},
        ),
        "objective": 0.95,
        "alerting": _TICKET_ONLY,
        "runbook": "preemption",
    },
    {
        "name": "checkpoint-overhead",
        "description": "Time spent checkpointing stays under 5% of run time",
        "sli": _ratio(
            {"metric": m.RUN_SECONDS},
            bad={"metric": f"{m.CHECKPOINT_DURATION}_sum"},
        ),
        "objective": 0.95,
        "alerting": _TICKET_ONLY | {"min_bad_events": 600},
        "runbook": "storage-slowdown",
    },
    {
        "name": "gpu-utilization-band",
        "description": "GPU utilisation of running jobs stays within 60-80%",
        "sli": {"band": {"metric": m.GPU_UTILIZATION, "min": 0.6, "max": 0.8}},
        "objective": 0.75,
        "alerting": _TICKET_ONLY | {"min_bad_events": 30},
        "runbook": "fabric-degradation",
    },
)


def default_slos() -> list[SloDefinition]:
    """The built-in SLOs (objectives over 30 days)."""
    return [SloDefinition.model_validate(doc) for doc in DEFAULT_SLO_DOCUMENTS]
