"""The store collector: the SLO metric contract, values, bounded series, monotonic counters."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from hpcbridge.slo import _metrics as slo_metrics
from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import Event, Store
from hpcbridge.telemetry import LABELS, ReconcilerStats, StoreCollector, exported_series
from hpcbridge.telemetry import _names as names
from tests.telemetry._sim import Sim
from tests.telemetry.conftest import samples, value


def _registry(store: Store, **kwargs: Any) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(StoreCollector(store, **kwargs))
    return registry


def test_every_slo_series_is_exported_with_its_labels() -> None:
    for name, labels in slo_metrics.METRIC_LABELS.items():
        assert name in LABELS, name
        assert set(labels) <= set(LABELS[name]), name
    for name, bounds in slo_metrics.HISTOGRAM_BUCKETS.items():
        assert set(bounds) <= set(names.HISTOGRAM_BUCKETS[name])
    assert set(slo_metrics.counter_series()) <= exported_series()


def test_finished_jobs_and_attempts(sim: Sim, store: Store) -> None:
    sim.job(["succeeded"], run_s=100)
    sim.job(["node_failure", "succeeded"], run_s=50, cpus=4)
    sim.job(["app_error"], exit_codes=[3])
    sim.job(["preempted", "preempted"], partition_kind="spot")
    sim.job(["cancelled"])
    registry = _registry(store)

    def jobs(**labels: str) -> float:
        return value(registry, "hpcbridge_jobs_finished_total", **labels)

    assert jobs(outcome="succeeded", failure_class="") == 2
    assert jobs(outcome="failed", failure_class="app_error") == 1
    assert jobs(outcome="failed", failure_class="preempted") == 1
    assert jobs(outcome="cancelled", failure_class="cancelled") == 1
    assert jobs() == 5

    def attempts(**labels: str) -> float:
        return value(registry, "hpcbridge_attempts_finished_total", **labels)

    assert attempts() == 7
    assert attempts(outcome="failed", failure_class="node_failure", backend="local") == 1
    assert attempts(failure_class="preempted", partition_kind="spot") == 2
    assert value(registry, "hpcbridge_preemptions_total", partition_kind="spot") == 2
    assert value(registry, "hpcbridge_preemptions_total", partition_kind="regular") == 0
    assert value(registry, "hpcbridge_run_seconds_total") == 100 + 2 * 50 + 4 * 100
    # node_failure: 50 s x 4 cores; app_error, two preemptions, cancelled: 100 s x 1 core each
    lost = value(registry, "hpcbridge_lost_core_seconds_total")
    assert lost == 50 * 4 + 4 * 100
    assert value(registry, "hpcbridge_queue_wait_seconds_count") == 5
    assert value(registry, "hpcbridge_queue_wait_seconds_sum") == 5 * 30
    assert value(registry, "hpcbridge_queue_wait_seconds_bucket", le="60.0") == 5
    assert value(registry, "hpcbridge_time_to_recover_seconds_count") == 2
    assert value(registry, "hpcbridge_time_to_recover_seconds_sum") == 2 * (10 + 30)
    assert value(registry, "hpcbridge_job_makespan_seconds_count", outcome="succeeded") == 2


def test_failure_classes_start_at_zero_for_every_label_set(sim: Sim, store: Store) -> None:
    sim.job(["succeeded"], project="climate", workload_class="critical")
    exported = samples(_registry(store))
    for outcome, failure_class in names.OUTCOME_CLASSES:
        key = (
            "hpcbridge_jobs_finished_total",
            tuple(
                sorted(
                    {
                        "project": "climate",
                        "workload_class": "critical",
                        "outcome": outcome,
                        "failure_class": failure_class,
                    }.items()
                )
            ),
        )
        assert key in exported, key
    lost = [k for k in exported if k[0] == "hpcbridge_attempts_finished_total"]
    assert any(("failure_class", "node_failure") in labels for _, labels in lost)


def test_no_job_id_or_user_in_any_label(sim: Sim, store: Store) -> None:
    ids = {sim.job(["succeeded"]), sim.job(["lost"])}
    for (_, labels), _value in samples(_registry(store)).items():
        for key, label_value in labels:
            assert key not in ("job_id", "user")
            assert label_value not in ids


def test_series_count_stays_flat_as_jobs_grow(sim: Sim, store: Store) -> None:
    mix = [["succeeded"], ["app_error"], ["node_failure", "succeeded"], ["timeout"], ["lost"]]
    for i in range(50):
        sim.job(mix[i % len(mix)], workload_class=("batch", "critical")[i % 2])
    registry = _registry(store)
    after_50 = len(samples(registry))
    with store.batch():  # one transaction: the store's speed is not under test here
        for i in range(500):
            sim.job(mix[i % len(mix)], workload_class=("batch", "critical")[i % 2])
    after_550 = len(samples(registry))
    assert after_550 == after_50
    assert value(registry, "hpcbridge_jobs_finished_total") == 550


def test_counters_are_monotonic_across_scrapes_and_restarts(sim: Sim, store: Store) -> None:
    registry = _registry(store)
    sim.job(["succeeded"])
    first = samples(registry)
    sim.job(["node_failure", "app_error"])
    second = samples(registry)
    for key, before in first.items():
        if key[0].endswith(("_total", "_count", "_sum", "_bucket")):
            assert second[key] >= before, key
    restarted = samples(_registry(store))  # a new process folds the same event log
    assert restarted == second


class _CountingStore:
    """Delegates to a store and counts the events it hands out."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.events_read = 0

    def all_events(self, *, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        found = self.inner.all_events(after_seq=after_seq, limit=limit)
        self.events_read += len(found)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_each_scrape_reads_only_new_events(sim: Sim, store: Store) -> None:
    for _ in range(20):
        sim.job(["succeeded"])
    counting = _CountingStore(store)
    registry = _registry(counting, chunk_size=7)
    samples(registry)
    total = len(store.all_events())
    assert counting.events_read == total
    samples(registry)
    assert counting.events_read == total
    sim.job(["app_error"])
    samples(registry)
    assert counting.events_read == len(store.all_events())


def test_jobs_by_state_counts_active_jobs(sim: Sim, store: Store) -> None:
    sim.job(["succeeded"], finish=False)
    sim.job(["node_failure", "succeeded"], finish=False)
    sim.job(["succeeded"])
    registry = _registry(store)
    assert value(registry, "hpcbridge_jobs", state="running") == 2
    assert value(registry, "hpcbridge_jobs", state="queued") == 0
    assert value(registry, "hpcbridge_node_running_attempts", node="node1") == 2


def test_checkpoint_durations_from_ingested_events(sim: Sim, store: Store) -> None:
    sim.job(["succeeded"], checkpoints_s=(0.4, 2.0, 40.0))
    registry = _registry(store)
    assert value(registry, "hpcbridge_checkpoint_duration_seconds_count") == 3
    assert value(registry, "hpcbridge_checkpoint_duration_seconds_bucket", le="2.5") == 2


def test_checkpoint_write_throughput_is_bytes_over_duration(sim: Sim, store: Store) -> None:
    sim.job(["succeeded"], checkpoints_s=(0.4, 2.0, 40.0))  # 2 GB each
    registry = _registry(store)
    name = "hpcbridge_storage_throughput_bytes_per_second"
    assert value(registry, f"{name}_count", operation="checkpoint_write") == 3
    assert value(registry, f"{name}_sum", operation="checkpoint_write") == pytest.approx(
        2e9 / 0.4 + 2e9 / 2.0 + 2e9 / 40.0
    )
    assert value(registry, f"{name}_bucket", operation="checkpoint_write", le="100000000.0") == 1


def test_fabric_latency_from_the_probe(sim: Sim, store: Store) -> None:
    job_id = sim.job(["succeeded"], finish=False)
    for rtt in (4e-5, 3e-4):
        store.add_event(job_id, "fabric_latency", now=sim.now, attempt=1, data={"rtt_s_p50": rtt})
    store.add_event(job_id, "fabric_latency", now=sim.now, attempt=1, data={"rtt_s_p50": "x"})
    registry = _registry(store)
    assert value(registry, "hpcbridge_fabric_latency_seconds_count") == 2
    assert value(registry, "hpcbridge_fabric_latency_seconds_bucket", le="5e-05") == 1


def test_reconciler_stats_are_exported(store: Store) -> None:
    stats = ReconcilerStats()
    with stats.polling("local"):
        pass
    with pytest.raises(RuntimeError), stats.polling("slurm"):
        raise RuntimeError("sacct timed out")
    stats.record_nodes("slurm", {"idle": 3, "drained": 1, "down": 1})
    stats.record_cycle(0.02, now=1234.0, errors=2, unavailable_backends=["slurm"])
    registry = _registry(store, stats=stats)
    assert value(registry, "hpcbridge_backend_up", backend="local") == 1
    assert value(registry, "hpcbridge_backend_up", backend="slurm") == 0
    assert value(registry, "hpcbridge_backend_poll_errors_total", backend="slurm") == 1
    assert value(registry, "hpcbridge_backend_poll_duration_seconds_count") == 2
    assert value(registry, "hpcbridge_backend_nodes", state="drained") == 1
    assert value(registry, "hpcbridge_reconciler_cycles_total") == 1
    assert value(registry, "hpcbridge_reconciler_errors_total") == 2
    assert value(registry, "hpcbridge_reconciler_last_cycle_timestamp_seconds") == 1234.0


def test_exposition_is_valid_text(sim: Sim, store: Store) -> None:
    sim.job(["succeeded"])
    text = generate_latest(_registry(store, stats=ReconcilerStats())).decode()
    assert "# TYPE hpcbridge_jobs_finished_total counter" in text
    assert "# TYPE hpcbridge_queue_wait_seconds histogram" in text
    assert 'hpcbridge_queue_wait_seconds_bucket{le="3600.0"' in text or 'le="3600.0"' in text


@pytest.mark.parametrize("chunk_size", [5, 50, 5000])
def test_any_chunk_size_folds_the_same_values(sim: Sim, store: Store, chunk_size: int) -> None:
    with store.batch():
        for i in range(120):
            sim.job([["succeeded"], ["lost", "succeeded"], ["oom"]][i % 3])
        for _ in range(40):
            sim.job(["succeeded"], finish=False)
    reference = samples(_registry(store))
    assert samples(_registry(store, chunk_size=chunk_size)) == reference


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 5000])
def test_an_attempt_ending_after_its_job_counts_at_any_chunk_size(
    sim: Sim, store: Store, chunk_size: int
) -> None:
    job_id = sim.job(["succeeded"], finish=False)
    job = store.get_job(job_id)
    store.transition(
        job_id,
        JobState.CANCELLED,
        expected_version=job.version,
        now=sim.now + 5,
        failure_class=FailureClass.CANCELLED,
    )
    data = {"failure_class": "cancelled", "run_s": 5, "backend": "local"}
    store.add_event(job_id, "attempt_failed", now=sim.now + 6, attempt=1, data=data)
    registry = _registry(store, chunk_size=chunk_size)
    assert value(registry, "hpcbridge_attempts_finished_total", outcome="cancelled") == 1
    assert value(registry, "hpcbridge_run_seconds_total") == 5
    assert value(registry, "hpcbridge_jobs_finished_total", outcome="cancelled") == 1


def test_label_sets_born_after_start_up_show_zero_once(sim: Sim, store: Store) -> None:
    sim.job(["succeeded"], project="old")
    registry = _registry(store)
    assert value(registry, "hpcbridge_jobs_finished_total", project="old") == 1
    sim.job(["lost"], project="new")
    sim.job(["succeeded"], project="old")
    sim.job(["succeeded"], project="old", backend="slurm")
    # One scrape at zero, so that rate() sees the first increments of the new series.
    first, second = samples(registry), samples(registry)
    assert value(first, "hpcbridge_jobs_finished_total", project="new") == 0
    assert value(first, "hpcbridge_attempts_finished_total", project="new") == 0
    assert value(first, "hpcbridge_queue_wait_seconds_count", project="new") == 0
    assert value(first, "hpcbridge_attempts_finished_total", backend="slurm") == 0
    assert value(first, "hpcbridge_jobs_finished_total", project="old") == 3
    assert value(first, "hpcbridge_attempts_finished_total", project="old", backend="local") == 2
    assert value(second, "hpcbridge_jobs_finished_total", project="new") == 1
    assert value(second, "hpcbridge_attempts_finished_total", backend="slurm") == 1
    assert value(second, "hpcbridge_queue_wait_seconds_count", project="new") == 1
