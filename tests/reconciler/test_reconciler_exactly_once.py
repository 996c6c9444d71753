"""Each attempt is submitted once, whatever a backend call raises, and recorded once.

Regression tests for duplicates found with the loop tests' ``FakeBackend``: an unexpected
exception in one submission made the next cycle submit the batch's other jobs again; a
cancel landing during a submission that started at once recorded ``attempt_submitted``
twice; an error from reading sbatch's reply made the array fallback resubmit each task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.reconciler.test_reconciler_arrays import ArrayBackend
from tests.reconciler.test_reconciler_loop import Clock, FakeBackend, World

from hpcbridge.backends import AttemptRef, Deferred, LaunchRequest, Submitted
from hpcbridge.errors import ArrayShapeError, FencedError, UncertainSubmissionError
from hpcbridge.reconciler import StoreLease
from hpcbridge.states import AttemptState, JobState
from hpcbridge.store import JobFilter, JobId, MemoryStore


@dataclass
class FlakyBackend(FakeBackend):
    """Raises ``error`` from ``submit`` for the jobs in ``failing`` (after, or instead of,
    handing the job to the scheduler), and runs ``during_submit`` inside the call."""

    failing: dict[str, Exception] = field(default_factory=dict)
    reached_scheduler: bool = False
    during_submit: Callable[[LaunchRequest], None] | None = None

    def submit(self, request: LaunchRequest) -> Submitted | Deferred:
        if self.during_submit is not None:
            self.during_submit(request)
        error = self.failing.pop(request.job_id, None)
        if error is not None and not self.reached_scheduler:
            raise error
        outcome = super().submit(request)
        if error is not None:
            raise error  # the scheduler has it, but the answer is lost
        return outcome


def submissions(backend: FakeBackend) -> Counter[str]:
    return Counter(r.job_id for r in backend.submitted)


@pytest.fixture
def flaky(tmp_path: Path) -> World:
    return World(MemoryStore(), FlakyBackend(), Clock(), tmp_path / "checkpoints")


@pytest.mark.parametrize("reached", [False, True])
@pytest.mark.parametrize("error", [RuntimeError("bug"), KeyError("x"), TimeoutError()])
def test_an_unexpected_exception_submits_no_job_twice(
    flaky: World, error: Exception, reached: bool
) -> None:
    backend = flaky.backend
    assert isinstance(backend, FlakyBackend)
    backend.reached_scheduler = reached
    for job_id in ("j1", "j2", "j3"):
        flaky.add(job_id)
    backend.failing["j2"] = error
    reconciler = flaky.reconciler()
    reconciler.cycle()
    reason = flaky.store.get_job("j2").reason or ""
    assert f"unexpected {type(error).__name__} during submission" in reason
    for _ in range(3):
        reconciler.cycle()
    assert submissions(backend) == {"j1": 1, "j2": 1, "j3": 1}
    for job_id in ("j1", "j2", "j3"):
        [attempt] = flaky.store.attempts(JobId(job_id))
        assert attempt.state is AttemptState.RUNNING
        assert flaky.state(job_id) is JobState.RUNNING
    # j2 was looked for before its second try, and only j2
    assert set(backend.finds) == {flaky.token("j2")}


def test_an_uncertain_submission_is_looked_for_by_a_restarted_reconciler_too(
    flaky: World,
) -> None:
    backend = flaky.backend
    assert isinstance(backend, FlakyBackend)
    backend.reached_scheduler = True
    flaky.add("j1")
    backend.failing["j1"] = UncertainSubmissionError("sbatch printed nothing")
    flaky.reconciler().cycle()
    flaky.reconciler().cycle()  # a new process: nothing known but the store
    assert submissions(backend) == {"j1": 1}
    [attempt] = flaky.store.attempts(JobId("j1"))
    assert (attempt.state, attempt.native_id) == (AttemptState.RUNNING, "n1")


def test_a_cancel_during_a_submission_records_it_once(flaky: World) -> None:
    backend = flaky.backend
    assert isinstance(backend, FlakyBackend)
    flaky.add("j1")

    def cancel(request: LaunchRequest) -> None:
        job = flaky.store.get_job(request.job_id)
        flaky.store.update_job(
            job.job_id, expected_version=job.version, now=flaky.clock.now, cancel_requested=True
        )

    backend.during_submit = cancel
    reconciler = flaky.reconciler()
    report = reconciler.cycle()
    assert report.errors == []
    backend.during_submit = None
    events = flaky.store.events(JobId("j1"))
    assert [e.kind for e in events].count("attempt_submitted") == 1
    assert flaky.state("j1") is JobState.RUNNING
    reconciler.cycle()  # the cancel request is honoured
    assert backend.kills == [(flaky.token("j1"), backend.kills[0][1])]


@dataclass
class ReplyLostArrayBackend(ArrayBackend):
    """Takes the array, then fails to read the scheduler's answer (a parse error)."""

    def submit_array(
        self, requests: Sequence[LaunchRequest], *, throttle: int | None = None
    ) -> list[Submitted]:
        super().submit_array(requests, throttle=throttle)
        raise ValueError("sbatch printed 'Submitted batch job', not a job id")


@dataclass
class MixedShapeArrayBackend(ArrayBackend):
    def submit_array(
        self, requests: Sequence[LaunchRequest], *, throttle: int | None = None
    ) -> list[Submitted]:
        raise ArrayShapeError("array tasks differ")


def test_an_error_after_the_array_reached_the_scheduler_resubmits_no_task(
    tmp_path: Path,
) -> None:
    world = World(MemoryStore(), ReplyLostArrayBackend(), Clock(), tmp_path)
    world.add_array("arr", tasks=5)
    reconciler = world.reconciler()
    reconciler.cycle()
    reason = world.store.get_job("arr.0").reason or ""
    assert "unexpected ValueError during submission" in reason, reason
    reconciler.cycle()
    reconciler.cycle()
    backend = world.backend
    assert isinstance(backend, ArrayBackend)
    assert backend.submitted == []  # no one-by-one fallback
    assert len(backend.arrays) == 1
    tasks = world.store.list_jobs(JobFilter(parent_id=JobId("arr")))
    for task in tasks:
        [attempt] = world.store.attempts(task.job_id)
        assert attempt.state is AttemptState.SUBMITTED  # adopted by its token


def test_tasks_that_cannot_share_an_array_go_one_by_one_without_a_lookup(
    tmp_path: Path,
) -> None:
    world = World(MemoryStore(), MixedShapeArrayBackend(), Clock(), tmp_path)
    world.add_array("arr", tasks=3)
    world.reconciler().cycle()
    backend = world.backend
    assert sorted(r.job_id for r in backend.submitted) == ["arr.0", "arr.1", "arr.2"]
    assert backend.finds == []  # nothing had been sent: no need to look


class BrokenFind(FakeBackend):
    def find(self, ref: AttemptRef) -> Submitted | None:
        raise OSError("the scheduler's socket vanished")


def test_an_exception_while_looking_is_recorded_and_nothing_is_submitted(
    tmp_path: Path,
) -> None:
    world = World(MemoryStore(), BrokenFind(), Clock(), tmp_path)
    world.add("j1")
    store = world.store
    job = store.get_job("j1")
    # An attempt prepared by an earlier process: it must be looked for first.
    store.create_attempt(job.job_id, backend="fake", token="t-old", now=1.0, details={})
    store.transition(job.job_id, JobState.QUEUED, expected_version=job.version, now=1.0)
    world.reconciler().cycle()
    assert world.backend.submitted == []
    reason = world.store.get_job("j1").reason or ""
    assert "unexpected OSError during submission" in reason, reason


# -- a replaced leader ---------------------------------------------------------------------------


def test_a_reconciler_without_time_left_on_its_lease_calls_no_scheduler(flaky: World) -> None:
    flaky.add("j1")
    leading = [False]
    reconciler = flaky.reconciler(may_act=lambda: leading[0])
    reconciler.cycle()
    assert flaky.backend.submitted == []
    assert "renew its lease" in (flaky.store.get_job("j1").reason or "")
    leading[0] = True
    reconciler.cycle()
    assert submissions(flaky.backend) == {"j1": 1}
    assert flaky.backend.finds == []  # nothing had been sent: no need to look


def test_a_fenced_write_ends_the_cycle_and_the_successor_adopts(flaky: World) -> None:
    """The old leader's submission reached the scheduler, then its lease was taken over:
    its record is refused, and the new leader adopts the launch by its token."""
    store = flaky.store
    flaky.add("j1")
    old = StoreLease(store, holder="old", ttl_s=30, clock=flaky.clock)
    assert old.try_acquire()
    backend = flaky.backend
    assert isinstance(backend, FlakyBackend)

    def take_over(request: LaunchRequest) -> None:
        flaky.clock.advance(31)  # the old leader stalled past its lease
        assert StoreLease(store, holder="new", ttl_s=30, clock=flaky.clock).try_acquire()

    backend.during_submit = take_over
    with pytest.raises(FencedError), old.fenced():
        flaky.reconciler().cycle()
    backend.during_submit = None
    [attempt] = store.attempts(JobId("j1"))
    assert attempt.native_id is None  # the old leader could not record it
    flaky.reconciler().cycle()  # the new leader
    assert submissions(backend) == {"j1": 1}
    [attempt] = store.attempts(JobId("j1"))
    assert (attempt.native_id, attempt.state) == ("n1", AttemptState.RUNNING)
