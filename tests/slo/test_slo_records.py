"""Finished jobs and attempts become SLI samples exactly as the metrics would count them."""

from __future__ import annotations

import pytest

from hpcbridge.slo import (
    FinishedAttempt,
    FinishedJob,
    GpuUtilizationSample,
    SliSample,
    build_samples,
    build_samples_by_slo,
    default_slos,
)
from hpcbridge.slo._records import metric_events

SLOS = {slo.name: slo for slo in default_slos()}


def _job(
    job_id: str,
    outcome: str = "succeeded",
    failure_class: str = "",
    *,
    workload_class: str = "critical",
    attempts: tuple[FinishedAttempt, ...] = (),
    queue_wait_s: float | None = None,
) -> FinishedJob:
    return FinishedJob(
        job_id=job_id,
        project="climate",
        workload_class=workload_class,
        outcome=outcome,
        failure_class=failure_class,
        finished_at=1000.0,
        queue_wait_s=queue_wait_s,
        started_at=400.0 if queue_wait_s is not None else None,
        attempts=attempts,
    )


def _verdicts(samples: list[SliSample]) -> list[tuple[str, bool]]:
    return [(s.job_id, s.good) for s in samples]


@pytest.mark.parametrize(
    ("outcome", "failure_class", "platform", "job_success"),
    [
        ("succeeded", "", [True], [True]),
        ("failed", "node_failure", [False], [False]),
        ("failed", "preempted", [False], [False]),
        ("failed", "lost", [False], [False]),
        ("failed", "backend_unavailable", [False], [False]),
        ("failed", "app_error", [True], [False]),
        ("failed", "oom", [True], [False]),
        ("failed", "timeout", [True], [False]),
        ("failed", "checksum_mismatch", [True], [False]),
        ("cancelled", "cancelled", [], []),
    ],
)
def test_platform_versus_job_success(
    outcome: str, failure_class: str, platform: list[bool], job_success: list[bool]
) -> None:
    jobs = [_job("j", outcome, failure_class)]
    assert [s.good for s in build_samples(SLOS["platform-success"], jobs)] == platform
    assert [s.good for s in build_samples(SLOS["job-success-critical"], jobs)] == job_success


def test_job_success_selects_its_workload_class() -> None:
    jobs = [_job("a", "failed", "app_error", workload_class="batch"), _job("b")]
    assert _verdicts(build_samples(SLOS["job-success-critical"], jobs)) == [("b", True)]


def test_retries_cannot_hide_failures_at_the_attempt_level() -> None:
    attempts = (
        FinishedAttempt(1, "failed", "node_failure", 500.0, backend="slurm"),
        FinishedAttempt(2, "failed", "preempted", 700.0, partition_kind="spot"),
        FinishedAttempt(3, "succeeded", "", 1000.0),
    )
    jobs = [_job("j", attempts=attempts)]
    assert [s.good for s in build_samples(SLOS["platform-success"], jobs)] == [True]
    attempt_samples = build_samples(SLOS["attempt-platform-success"], jobs)
    assert [(s.time, s.good, s.failure_class) for s in attempt_samples] == [
        (500.0, False, "node_failure"),
        (700.0, False, "preempted"),
        (1000.0, True, ""),
    ]


def test_preemption_counts_regular_partitions_only() -> None:
    attempts = (
        FinishedAttempt(1, "failed", "preempted", 500.0, partition_kind="spot"),
        FinishedAttempt(2, "failed", "preempted", 600.0, partition_kind="regular"),
        FinishedAttempt(3, "cancelled", "cancelled", 700.0),
        FinishedAttempt(4, "succeeded", "", 800.0),
    )
    samples = build_samples(SLOS["preemption-regular"], [_job("j", attempts=attempts)])
    assert [(s.time, s.good) for s in samples] == [(500.0, True), (600.0, False), (800.0, True)]


def test_queue_wait_threshold() -> None:
    jobs = [_job("fast", queue_wait_s=3600), _job("slow", queue_wait_s=3601), _job("none")]
    samples = build_samples(
        SLOS["queue-wait-priority"],
        [
            FinishedJob(
                j.job_id,
                j.project,
                "priority",
                j.outcome,
                j.failure_class,
                j.finished_at,
                j.queue_wait_s,
                j.started_at,
            )
            for j in jobs
        ],
    )
    assert [(s.job_id, s.good, s.time) for s in samples] == [
        ("fast", True, 400.0),
        ("slow", False, 400.0),
    ]


def test_checkpoint_overhead_is_weighted_by_seconds() -> None:
    attempts = (
        FinishedAttempt(
            1, "succeeded", "", 1000.0, run_s=600.0, checkpoint_durations_s=(10.0, 20.0)
        ),
    )
    samples = build_samples(SLOS["checkpoint-overhead"], [_job("j", attempts=attempts)])
    assert [(s.good, s.weight) for s in samples] == [(False, 30.0), (True, 570.0)]


def test_gpu_band_time_slices() -> None:
    readings = [
        GpuUtilizationSample(60.0 * i, "climate", "training", ratio, job_id="g")
        for i, ratio in enumerate((0.2, 0.6, 0.7, 0.8, 0.95))
    ]
    samples = build_samples(SLOS["gpu-utilization-band"], [], readings)
    assert [s.good for s in samples] == [False, True, True, True, False]


def test_metric_events_follow_the_contract() -> None:
    attempts = (FinishedAttempt(1, "failed", "preempted", 500.0, backend="slurm", run_s=100.0),)
    events = metric_events(_job("j", "failed", "preempted", attempts=attempts, queue_wait_s=5))
    series = {event.series for _, event in events}
    assert series >= {
        "hpcbridge_jobs_finished_total",
        "hpcbridge_attempts_finished_total",
        "hpcbridge_queue_wait_seconds_count",
        "hpcbridge_run_seconds_total",
        "hpcbridge_preemptions_total",
    }
    preemption = next(e for _, e in events if e.series == "hpcbridge_preemptions_total")
    assert dict(preemption.labels) == {
        "project": "climate",
        "workload_class": "critical",
        "partition_kind": "regular",
    }


def test_samples_by_slo_are_sorted() -> None:
    jobs = [
        FinishedJob(f"j{i}", "p", "critical", "succeeded", "", finished_at=float(t))
        for i, t in enumerate((300, 100, 200))
    ]
    by_slo = build_samples_by_slo(default_slos(), jobs)
    assert set(by_slo) == set(SLOS)
    assert [s.time for s in by_slo["platform-success"]] == [100.0, 200.0, 300.0]
