"""Cost per successful result beside the SLOs: all spend of a group over its successes."""

from __future__ import annotations

from hpcbridge.events import FinishedAttempt, FinishedJob
from hpcbridge.slo import cost_per_result


def _job(job_id: str, outcome: str, *costs: tuple[str, float]) -> FinishedJob:
    attempts = tuple(
        FinishedAttempt(number=i + 1, outcome=o, failure_class="", finished_at=1.0, cost=c)
        for i, (o, c) in enumerate(costs)
    )
    return FinishedJob(job_id, "p", "batch", outcome, "", 1.0, attempts=attempts)


def test_a_preempted_then_successful_job_costs_both_attempts() -> None:
    jobs = [
        _job("j1", "succeeded", ("failed", 2.0), ("succeeded", 3.0)),
        _job("j2", "succeeded", ("succeeded", 1.0)),
        _job("j3", "failed", ("failed", 4.0)),
    ]
    (group,) = cost_per_result(jobs)
    assert (group.spend, group.waste, group.results, group.jobs) == (10.0, 6.0, 2, 3)
    assert group.cost_per_result == 5.0
    assert group.to_dict()["cost_per_result"] == 5.0
