"""Job-side status files: events.jsonl parsing and the GPU utilisation gauge."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry

from hpcbridge.states import AttemptState
from hpcbridge.store import Store
from hpcbridge.telemetry import (
    StoreCollector,
    ingestable_events,
    latest_gpu_utilization,
    read_status_events,
)
from tests.telemetry._sim import Sim
from tests.telemetry.conftest import samples, value


def _append(directory: Path, *lines: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "events.jsonl", "a") as handle:
        handle.write("".join(lines))


def test_read_status_events_skips_torn_and_foreign_lines(tmp_path: Path) -> None:
    _append(
        tmp_path,
        json.dumps({"type": "checkpoint_saved", "time": 5.0, "duration_s": 1.5, "job_id": "j"})
        + "\n",
        "not json\n",
        json.dumps([1, 2]) + "\n",
        json.dumps({"type": "gpu_sample", "time": 6, "utilization": 0.7}) + "\n",
        '{"type": "gpu_sample", "ti',  # still being written
    )
    events, offset = read_status_events(tmp_path)
    assert [(e.kind, e.time) for e in events] == [("checkpoint_saved", 5.0), ("gpu_sample", 6.0)]
    assert events[0].data == {"duration_s": 1.5}
    again, same = read_status_events(tmp_path, offset=offset)
    assert again == [] and same == offset
    assert [e.kind for e in ingestable_events(tmp_path)] == ["checkpoint_saved"]
    assert read_status_events(tmp_path / "missing") == ([], 0)


def test_latest_gpu_utilization_is_recent_and_clamped(tmp_path: Path) -> None:
    assert latest_gpu_utilization(tmp_path, since=0) is None
    _append(
        tmp_path,
        json.dumps({"type": "gpu_sample", "time": 10, "utilization": 0.5}) + "\n",
        json.dumps({"type": "checkpoint_saved", "time": 11, "duration_s": 1}) + "\n",
        json.dumps({"type": "gpu_sample", "time": 20, "utilization": 1.7}) + "\n",
    )
    assert latest_gpu_utilization(tmp_path, since=15) == 1.0
    assert latest_gpu_utilization(tmp_path, since=25) is None


def test_gpu_gauge_only_while_gpu_jobs_run(sim: Sim, store: Store, tmp_path: Path) -> None:
    now = 2_000_000_000.0
    registry = CollectorRegistry()
    registry.register(StoreCollector(store, clock=lambda: now))
    sim.job(["succeeded"], gpus=1, workload_class="training")  # finished: no reading
    gpu_jobs = [sim.job(["succeeded"], gpus=2, finish=False, workload_class="training")]
    gpu_jobs.append(sim.job(["succeeded"], gpus=1, finish=False, workload_class="training"))
    sim.job(["succeeded"], finish=False)  # a CPU job writing samples is ignored
    for i, job_id in enumerate([*gpu_jobs, sim.created[-1]]):
        [attempt] = store.attempts(job_id)
        assert attempt.state is AttemptState.RUNNING
        directory = tmp_path / job_id
        store.update_attempt(job_id, 1, details={"dir": str(directory)})
        sample = {"type": "gpu_sample", "time": now - 5, "utilization": 0.6 + 0.2 * i}
        _append(directory, json.dumps(sample) + "\n")
    gauge = value(registry, "hpcbridge_gpu_utilization_ratio", workload_class="training")
    assert abs(gauge - 0.7) < 1e-9
    names = {name for name, _ in samples(registry)}
    assert "hpcbridge_gpu_utilization_ratio" in names
    now += 1000  # samples are stale: no gauge at all rather than an old value
    names = {name for name, _ in samples(registry)}
    assert "hpcbridge_gpu_utilization_ratio" not in names
