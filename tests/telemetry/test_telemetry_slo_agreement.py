"""The collector (for Prometheus) and the SLO adapter (for the built-in evaluator) read the
event log the same way: the increments the SLO module derives from ``FinishedJob`` records
add up to exactly what the collector exports."""

from __future__ import annotations

from collections import defaultdict

from prometheus_client import CollectorRegistry

from hpcbridge.slo import FinishedJobFeed, finished_jobs, runbook_for
from hpcbridge.slo import _metrics as slo_metrics
from hpcbridge.slo._records import metric_events
from hpcbridge.store import Store
from hpcbridge.telemetry import StoreCollector
from tests.telemetry._sim import Sim
from tests.telemetry.conftest import samples

_MIX = [
    ["succeeded"],
    ["app_error"],
    ["node_failure", "succeeded"],
    ["preempted", "lost", "timeout"],
    ["cancelled"],
    ["oom"],
]


def _fill(sim: Sim, count: int) -> None:
    for i in range(count):
        sim.job(
            _MIX[i % len(_MIX)],
            workload_class=("batch", "critical")[i % 2],
            checkpoints_s=(0.5, 3.0) if i % 3 == 0 else (),
            licence_wait_s=(120.0, 4000.0)[i % 2] if i % 4 == 0 else None,
        )


def test_adapter_and_collector_agree(sim: Sim, store: Store) -> None:
    _fill(sim, 30)
    # A job still running shows in the collector's queue wait already: another project.
    sim.job(["succeeded"], finish=False, project="elsewhere")
    jobs = finished_jobs(store)
    assert len(jobs) == 30
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
    for job in jobs:
        for _, event in metric_events(job):
            expected[(event.series, tuple(sorted(event.labels.items())))] += event.value
    registry = CollectorRegistry()
    registry.register(StoreCollector(store))
    exported: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
    for (name, labels), value in samples(registry).items():
        # The SLO contract has no partition_kind on attempts: sum it away.
        kept = tuple(kv for kv in labels if kv[0] != "partition_kind")
        exported[(name, kept if name == slo_metrics.ATTEMPTS_FINISHED else labels)] += value
    assert {name for name, _ in expected} >= set(slo_metrics.counter_series())
    for key, value in expected.items():
        single = (slo_metrics.QUEUE_WAIT, slo_metrics.LICENCE_WAIT, slo_metrics.CHECKPOINT_DURATION)
        if key[0] in single:
            continue  # single observations; their _count and _sum are compared
        assert exported[key] == value, key


def test_feed_returns_each_finished_job_once(sim: Sim, store: Store) -> None:
    feed = FinishedJobFeed(store, chunk_size=4)
    assert feed.poll() == []
    first = sim.job(["node_failure", "succeeded"], run_s=20)
    running = sim.job(["succeeded"], finish=False)
    [job] = feed.poll()
    assert job.job_id == first and job.outcome == "succeeded"
    assert [(a.number, a.outcome, a.failure_class) for a in job.attempts] == [
        (1, "failed", "node_failure"),
        (2, "succeeded", ""),
    ]
    assert job.queue_wait_s == 30.0 and job.attempts[1].run_s == 20
    assert feed.poll() == []
    assert running not in {j.job_id for j in finished_jobs(store)}


def test_runbook_per_failure_class() -> None:
    assert runbook_for("node_failure") == "node-failure"
    assert runbook_for("lost") == "node-failure"
    assert runbook_for("app_error") == "triage"
    assert runbook_for(None) == "triage"
