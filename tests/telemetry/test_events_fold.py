"""The one event fold (``hpcbridge.events``): what it tells, in which order, and the
records it closes, read through ``EventReader`` from a real store."""

from __future__ import annotations

from typing import Any

import pytest

from hpcbridge.events import (
    EventFold,
    EventReader,
    FinishedAttempt,
    FinishedJob,
    FoldListener,
    JobLabels,
)
from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import Event, JobId, NewJob, Store, new_job_id
from tests.telemetry._sim import Sim

S = JobState


class Recorder(FoldListener):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.finished: list[FinishedJob] = []

    def job_accepted(self, labels: JobLabels) -> None:
        self.calls.append(("accepted", labels.project))

    def state_changed(self, labels: JobLabels, source: str | None, target: str) -> None:
        self.calls.append(("state", source, target))

    def job_started(self, labels: JobLabels, queue_wait_s: float) -> None:
        self.calls.append(("started", queue_wait_s))

    def job_recovered(self, labels: JobLabels, failure_class: str, recover_s: float) -> None:
        self.calls.append(("recovered", failure_class, recover_s))

    def attempt_finished(
        self, labels: JobLabels, attempt: FinishedAttempt, lost_core_s: float
    ) -> None:
        self.calls.append(("attempt", attempt.number, attempt.outcome, lost_core_s))

    def checkpoint_saved(
        self, labels: JobLabels, duration_s: float | None, bytes_written: float
    ) -> None:
        self.calls.append(("checkpoint", duration_s, bytes_written))

    def fabric_latency(self, labels: JobLabels, rtt_s: float) -> None:
        self.calls.append(("fabric", rtt_s))

    def job_finished(self, labels: JobLabels, job: FinishedJob, makespan_s: float) -> None:
        self.calls.append(("finished", job.outcome, job.failure_class, makespan_s))
        self.finished.append(job)


def _read(store: Store, chunk_size: int = 5000) -> Recorder:
    recorder = Recorder()
    EventReader(store, EventFold(recorder), chunk_size=chunk_size).read()
    return recorder


def test_a_retried_job_in_order(sim: Sim, store: Store) -> None:
    sim.job(["node_failure", "succeeded"], cpus=4, queue_s=30, run_s=50, backoff_s=10)
    assert _read(store).calls == [
        ("accepted", "climate"),
        ("state", None, "accepted"),
        ("state", "accepted", "queued"),
        ("state", "queued", "running"),
        ("started", 30.0),
        ("attempt", 1, "failed", 50 * 4.0),
        ("state", "running", "retry_wait"),
        ("state", "retry_wait", "queued"),
        ("state", "queued", "running"),
        ("recovered", "node_failure", 10 + 30.0),
        ("attempt", 2, "succeeded", 0.0),
        ("state", "running", "succeeded"),
        ("finished", "succeeded", "", 30 + 50 + 10 + 30 + 50.0),
    ]


def test_saves_copied_after_their_attempt_ended_belong_to_it(sim: Sim, store: Store) -> None:
    # The reconciler copies the job's events when the attempt has ended (as the sim does).
    sim.job(["preempted", "succeeded"], checkpoints_s=(2.0, 3.0))
    [job] = _read(store).finished
    assert [a.checkpoint_durations_s for a in job.attempts] == [(2.0, 3.0), (2.0, 3.0)]


def _job(store: Store, *, now: float = 1000.0, task_count: int = 0) -> JobId:
    job_id = new_job_id()
    new = NewJob(job_id, "n", "p", "batch", "local", {}, task_count=task_count)
    store.create_jobs([new], now=now, actor="t")
    return job_id


def test_saves_before_the_attempt_ended_and_saves_without_a_duration(store: Store) -> None:
    job_id = _job(store)
    job = store.transition(job_id, S.RUNNING, expected_version=1, now=1010.0, attempt=1)
    store.add_event(job_id, "checkpoint_saved", now=1020.0, attempt=1, data={"duration_s": 4})
    store.add_event(job_id, "checkpoint_saved", now=1030.0, attempt=1, data={"bytes": 10})
    store.add_event(job_id, "attempt_succeeded", now=1040.0, attempt=1, data={"run_s": 30})
    store.add_event(job_id, "checkpoint_saved", now=1035.0, attempt=1, data={"duration_s": 1})
    store.transition(job_id, S.SUCCEEDED, expected_version=job.version, now=1040.0)
    recorder = _read(store)
    assert [c for c in recorder.calls if c[0] == "checkpoint"] == [
        ("checkpoint", 4.0, 0.0),
        ("checkpoint", None, 10.0),
        ("checkpoint", 1.0, 0.0),
    ]
    [finished] = recorder.finished
    assert finished.attempts[0].checkpoint_durations_s == (4.0, 1.0)


def test_array_parents_are_only_followed(store: Store) -> None:
    parent = _job(store, task_count=2)
    job = store.transition(parent, S.RUNNING, expected_version=1, now=1001.0)
    store.add_event(parent, "attempt_failed", now=1002.0, attempt=1, data={})
    store.transition(parent, S.FAILED, expected_version=job.version, now=1003.0)
    assert _read(store).calls == [("accepted", "p")]


def test_the_reconcilers_time_to_recover_wins(store: Store) -> None:
    job_id = _job(store)
    job = store.transition(job_id, S.RUNNING, expected_version=1, now=1010.0, attempt=1)
    data = {"failure_class": "lost", "run_s": 5, "lost_core_hours": 0.5}
    store.add_event(job_id, "attempt_failed", now=1015.0, attempt=1, data=data)
    job = store.transition(job_id, S.QUEUED, expected_version=job.version, now=1015.0)
    recovered = {"time_to_recover_s": 7.5}
    store.transition(
        job_id, S.RUNNING, expected_version=job.version, now=1100.0, attempt=2, data=recovered
    )
    calls = _read(store).calls
    assert ("attempt", 1, "failed", 0.5 * 3600) in calls
    assert ("recovered", "lost", 7.5) in calls


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 5000])
def test_events_after_the_end_are_told_at_any_chunk_size(store: Store, chunk_size: int) -> None:
    """A cancelled job whose attempt's end lands after the job's: the attempt still counts,
    wherever the chunks of a read (or two scrapes) fall."""
    job_id = _job(store)
    job = store.transition(job_id, S.RUNNING, expected_version=1, now=1010.0, attempt=1)
    store.transition(
        job_id,
        S.CANCELLED,
        expected_version=job.version,
        now=1020.0,
        failure_class=FailureClass.CANCELLED,
    )
    data = {"failure_class": "cancelled", "run_s": 10}
    store.add_event(job_id, "attempt_failed", now=1021.0, attempt=1, data=data)
    store.add_event(job_id, "fabric_latency", now=1021.0, attempt=1, data={"rtt_s_p50": 1e-4})
    recorder = _read(store, chunk_size)
    assert recorder.calls[-3:] == [
        ("finished", "cancelled", "cancelled", 20.0),
        ("attempt", 1, "cancelled", 10.0),
        ("fabric", 1e-4),
    ]
    [finished] = recorder.finished
    assert finished.attempts == ()


def test_events_without_labels_are_only_counted() -> None:
    """A job the fold does not follow and no labels for it (deleted): counted, not told."""
    recorder = Recorder()
    fold = EventFold(recorder)
    fold.apply(Event(seq=7, job_id=JobId("jgone"), time=1.0, kind="attempt_failed", attempt=1))
    fold.apply(Event(seq=8, job_id=JobId("jgone"), time=1.0, kind="kill", attempt=1))
    assert (fold.events, fold.seq, recorder.calls) == (2, 8, [])
