"""The reconciler cycle against a MemoryStore and a programmable in-memory backend.

``FakeBackend`` implements the Backend protocol: ``submit`` starts (or, when ``running`` is
False, queues) an attempt or answers Deferred when all ``slots`` are taken; ``poll`` answers
what the test programmed per token (``finish``/``program``); ``find`` knows the submissions
listed in ``known``. Time comes from a ``Clock`` the test moves, never from sleeping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.backends import (
    AttemptRef,
    Backend,
    Deferred,
    LaunchRequest,
    Observation,
    Phase,
    Submitted,
)
from hpcbridge.client import Client
from hpcbridge.errors import ConflictError, TransientBackendError
from hpcbridge.reconciler import Policy, Reconciler
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import Job, JobFilter, JobId, MemoryStore, NewJob, task_job_id

S = JobState
LOST_GRACE_S = 30.0


@dataclass
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeBackend:
    """An in-memory scheduler whose answers the test programs."""

    slots: int | None = None
    running: bool = True
    name: str = "fake"
    submitted: list[LaunchRequest] = field(default_factory=list)
    polls: list[list[str]] = field(default_factory=list)
    finds: list[str] = field(default_factory=list)
    kills: list[tuple[str, FailureClass]] = field(default_factory=list)
    known: dict[str, Submitted] = field(default_factory=dict)
    observations: dict[str, Observation] = field(default_factory=dict)
    poll_error: Exception | None = None

    def check(self, spec: JobSpec) -> list[str]:
        return []

    def live(self) -> list[str]:
        return [
            t
            for t, seen in self.observations.items()
            if seen.phase in (Phase.PENDING, Phase.RUNNING)
        ]

    def submit(self, request: LaunchRequest) -> Submitted | Deferred:
        if self.slots is not None and len(self.live()) >= self.slots:
            return Deferred(f"full: {len(self.live())} of {self.slots} slots in use")
        self.submitted.append(request)
        native_id = f"n{len(self.submitted)}"
        outcome = Submitted(native_id=native_id, details={"slot": native_id}, running=self.running)
        self.known[request.token] = outcome
        phase = Phase.RUNNING if self.running else Phase.PENDING
        self.observations[request.token] = Observation(phase, nodes=("node1",), started_at=None)
        return outcome

    def find(self, ref: AttemptRef) -> Submitted | None:
        self.finds.append(ref.token)
        return self.known.get(ref.token)

    def poll(self, refs: Sequence[AttemptRef], now: float) -> dict[str, Observation]:
        self.polls.append([ref.token for ref in refs])
        if self.poll_error is not None:
            raise self.poll_error
        return {
            ref.token: self.observations.get(ref.token, Observation(Phase.UNKNOWN)) for ref in refs
        }

    def kill(self, ref: AttemptRef, failure_class: FailureClass, now: float) -> None:
        self.kills.append((ref.token, failure_class))

    def log_paths(self, ref: AttemptRef) -> tuple[Path | None, Path | None]:
        return None, None

    def close(self) -> None:
        return None

    # -- programming ---------------------------------------------------------------------

    def program(self, token: str, seen: Observation) -> None:
        self.observations[token] = seen

    def finish(
        self, token: str, failure: FailureClass | None = None, exit_code: int = 0, **fields: Any
    ) -> None:
        fields.setdefault("started_at", 1.0)
        self.observations[token] = Observation(
            Phase.SUCCEEDED if failure is None else Phase.FAILED,
            failure_class=failure,
            exit_code=exit_code,
            nodes=("node1",),
            **fields,
        )


def spec_document(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "loop",
        "command": ["run"],
        "backend": "fake",
    }
    document.update(fields)
    return load_spec_document(document).to_document()


@dataclass
class World:
    store: MemoryStore
    backend: FakeBackend
    clock: Clock
    checkpoints: Path

    def reconciler(self, **options: Any) -> Reconciler:
        backends: dict[str, Backend] = {"fake": self.backend}
        return Reconciler(
            self.store,
            backends,
            policy=Policy(lost_grace_s=LOST_GRACE_S),
            checkpoints_dir=self.checkpoints,
            clock=self.clock,
            **options,
        )

    def add(self, job_id: str, *, priority: int = 0, **spec_fields: Any) -> Job:
        [job] = self.store.create_jobs(
            [
                NewJob(
                    job_id=JobId(job_id),
                    name="loop",
                    project="p",
                    workload_class="batch",
                    backend="fake",
                    spec=spec_document(priority=priority, **spec_fields),
                    priority=priority,
                )
            ],
            now=self.clock.now,
            actor="test",
        )
        self.clock.advance(1)
        return job

    def add_array(self, parent: str, tasks: int, throttle: int | None = None) -> None:
        array: dict[str, Any] = {"indices": f"0-{tasks - 1}"}
        if throttle is not None:
            array["throttle"] = throttle
        parent_id = JobId(parent)
        rows = [
            NewJob(
                job_id=parent_id,
                name="arr",
                project="p",
                workload_class="batch",
                backend="fake",
                spec=spec_document(array=array),
                task_count=tasks,
            )
        ]
        rows += [
            NewJob(
                job_id=task_job_id(parent_id, i),
                name="arr",
                project="p",
                workload_class="batch",
                backend="fake",
                spec=spec_document(array=array),
                parent_id=parent_id,
                task_index=i,
            )
            for i in range(tasks)
        ]
        self.store.create_jobs(rows, now=self.clock.now, actor="test")

    def state(self, job_id: str) -> JobState:
        return self.store.get_job(job_id).state

    def token(self, job_id: str) -> str:
        return self.store.attempts(JobId(job_id))[-1].token


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(MemoryStore(), FakeBackend(), Clock(), tmp_path / "checkpoints")


# -- the happy path ----------------------------------------------------------------------------


def test_a_job_runs_to_success(world: World) -> None:
    world.add("j1")
    reconciler = world.reconciler()
    report = reconciler.cycle()
    assert (report.active_jobs, report.submitted, report.errors) == (1, 1, [])
    assert world.state("j1") is S.RUNNING
    [request] = world.backend.submitted
    assert request.job_id == "j1"
    assert request.attempt == 1
    assert request.env["HPCBRIDGE_JOB_ID"] == "j1"
    assert request.env["HPCBRIDGE_ATTEMPT"] == "1"
    [attempt] = world.store.attempts(JobId("j1"))
    assert (attempt.state, attempt.native_id, attempt.token) == (
        AttemptState.RUNNING,
        "n1",
        request.token,
    )
    world.backend.finish(request.token)
    reconciler.cycle()
    job = world.store.get_job("j1")
    assert (job.state, job.exit_code, job.failure_class) == (S.SUCCEEDED, 0, None)
    moves = [
        (e.from_state, e.to_state)
        for e in world.store.events(JobId("j1"))
        if e.kind == "transition"
    ]
    assert moves == [(S.ACCEPTED, S.QUEUED), (S.QUEUED, S.RUNNING), (S.RUNNING, S.SUCCEEDED)]
    assert world.store.attempts(JobId("j1"))[0].state is AttemptState.SUCCEEDED
    assert reconciler.cycle().active_jobs == 0


def test_one_poll_per_backend_per_cycle(world: World) -> None:
    for i in range(12):
        world.add(f"j{i:02d}")
    reconciler = world.reconciler()
    reconciler.cycle()
    assert len(world.backend.submitted) == 12
    world.backend.polls.clear()
    reconciler.cycle()
    reconciler.cycle()
    assert len(world.backend.polls) == 2
    assert all(len(tokens) == 12 for tokens in world.backend.polls)


def test_a_retry_gets_a_new_attempt_after_the_backoff(world: World) -> None:
    world.add("j1", retry={"backoff": {"initial": "60s", "jitter": 0}})
    reconciler = world.reconciler()
    reconciler.cycle()
    first = world.token("j1")
    world.backend.finish(first, FailureClass.NODE_FAILURE, exit_code=1)
    reconciler.cycle()
    job = world.store.get_job("j1")
    assert job.state is S.RETRY_WAIT
    assert job.next_attempt_at == world.clock.now + 60
    world.clock.advance(59)
    reconciler.cycle()
    assert world.state("j1") is S.RETRY_WAIT
    world.clock.advance(1)
    reconciler.cycle()
    assert world.state("j1") is S.RUNNING
    attempts = world.store.attempts(JobId("j1"))
    assert [a.number for a in attempts] == [1, 2]
    assert attempts[1].token != first
    assert world.store.get_job("j1").attempt_count == 2
    assert world.backend.submitted[-1].env["HPCBRIDGE_ATTEMPT"] == "2"


def test_walltime_kill_is_ordered_once(world: World) -> None:
    world.add("j1", resources={"walltime": "10s"})
    reconciler = world.reconciler()
    reconciler.cycle()
    world.clock.advance(11)
    reconciler.cycle()
    assert world.backend.kills == [(world.token("j1"), FailureClass.TIMEOUT)]
    reconciler.cycle()
    assert len(world.backend.kills) == 1
    world.backend.finish(world.token("j1"), FailureClass.TIMEOUT, exit_code=143)
    reconciler.cycle()
    job = world.store.get_job("j1")
    assert (job.state, job.failure_class) == (S.FAILED, FailureClass.TIMEOUT)
    assert any(e.kind == "kill" for e in world.store.events(JobId("j1")))


def test_cancel_kills_then_records(world: World) -> None:
    world.add("j1")
    reconciler = world.reconciler()
    reconciler.cycle()
    job = world.store.get_job("j1")
    world.store.update_job(
        job.job_id, expected_version=job.version, now=world.clock.now, cancel_requested=True
    )
    reconciler.cycle()
    reconciler.cycle()
    assert world.backend.kills == [(world.token("j1"), FailureClass.CANCELLED)]
    world.backend.finish(world.token("j1"), FailureClass.CANCELLED, exit_code=143)
    reconciler.cycle()
    assert world.state("j1") is S.CANCELLED


# -- capacity, priority and throttles --------------------------------------------------------------


def test_deferral_keeps_jobs_queued_in_priority_order(world: World) -> None:
    world.backend.slots = 1
    world.add("low", priority=0)
    world.add("mid", priority=5)
    world.add("high", priority=10)
    reconciler = world.reconciler()
    reconciler.cycle()
    assert [r.job_id for r in world.backend.submitted] == ["high"]
    assert world.state("mid") is S.QUEUED
    assert world.state("low") is S.QUEUED
    assert world.store.get_job("mid").reason is not None
    assert "full" in (world.store.get_job("mid").reason or "")
    for expected in ["mid", "low"]:
        reconciler.cycle()
        assert world.backend.submitted[-1].job_id != expected  # still full
        world.backend.finish(world.backend.submitted[-1].token)
        reconciler.cycle()
        assert world.backend.submitted[-1].job_id == expected
    assert [r.job_id for r in world.backend.submitted] == ["high", "mid", "low"]
    assert all(len(world.store.attempts(JobId(j))) == 1 for j in ("high", "mid", "low"))


def test_array_throttle_is_respected(world: World) -> None:
    world.add_array("arr", tasks=6, throttle=2)
    reconciler = world.reconciler()
    peak = 0
    for _ in range(30):
        reconciler.cycle()
        live = [
            t
            for t in world.store.list_jobs(JobFilter(parent_id=JobId("arr")))
            if t.state is S.RUNNING
        ]
        peak = max(peak, len(live))
        assert len(live) <= 2
        for task in live[:1]:
            world.backend.finish(world.token(task.job_id))
        if world.state("arr").terminal:
            break
    assert peak == 2
    assert world.state("arr") is S.SUCCEEDED
    assert len(world.backend.submitted) == 6


def test_array_throttle_counts_tasks_the_scheduler_still_holds(world: World) -> None:
    """A batch scheduler accepts a task before it runs it: those count against the throttle.

    Today only tasks in state running count, so with a backend that queues (Slurm) every
    cycle submits ``throttle`` more tasks and all of them may start together.
    """
    world.backend.running = False
    world.add_array("arr", tasks=6, throttle=2)
    reconciler = world.reconciler()
    for _ in range(5):
        reconciler.cycle()
    assert len(world.backend.submitted) <= 2


def test_array_parent_follows_its_tasks(world: World) -> None:
    world.add_array("arr", tasks=3)
    reconciler = world.reconciler()
    reconciler.cycle()
    reconciler.cycle()
    assert world.state("arr") is S.RUNNING
    tokens = [world.token(f"arr.{i}") for i in range(3)]
    world.backend.finish(tokens[0])
    world.backend.finish(tokens[1])
    world.backend.finish(tokens[2], FailureClass.APP_ERROR, exit_code=2)
    reconciler.cycle()
    reconciler.cycle()
    parent = world.store.get_job("arr")
    assert parent.state is S.FAILED
    assert parent.reason == "1 of 3 tasks failed"


# -- one job's trouble stays its own --------------------------------------------------------------


class TroubledStore(MemoryStore):
    """A MemoryStore whose transitions of one job fail with a chosen exception."""

    def __init__(self, victim: str, error: Exception) -> None:
        super().__init__()
        self.victim = victim
        self.error = error

    def transition(self, job_id: JobId, target: JobState, **kwargs: Any) -> Job:
        if job_id == self.victim:
            raise self.error
        return super().transition(job_id, target, **kwargs)


@pytest.mark.parametrize("error", [ConflictError("changed meanwhile"), RuntimeError("boom")])
def test_one_jobs_error_does_not_stop_the_others(tmp_path: Path, error: Exception) -> None:
    world = World(TroubledStore("j2", error), FakeBackend(), Clock(), tmp_path)
    for job_id in ("j1", "j2", "j3"):
        world.add(job_id)
    report = world.reconciler().cycle()
    assert world.state("j1") is S.RUNNING
    assert world.state("j3") is S.RUNNING
    assert world.state("j2") is S.ACCEPTED
    assert [r.job_id for r in world.backend.submitted] == ["j1", "j3"]
    if isinstance(error, ConflictError):
        assert report.errors == []  # a conflict is normal: decided again next cycle
    else:
        assert report.errors == ["j2: boom"]


def test_an_unreadable_stored_spec_fails_only_that_job(world: World) -> None:
    world.add("j1")
    world.store.create_jobs(
        [
            NewJob(
                job_id=JobId("bad"),
                name="bad",
                project="p",
                workload_class="batch",
                backend="fake",
                spec={"apiVersion": "hpcbridge/v1", "kind": "Job"},
            )
        ],
        now=world.clock.now,
        actor="test",
    )
    world.reconciler().cycle()
    bad = world.store.get_job("bad")
    assert (bad.state, bad.failure_class) == (S.FAILED, FailureClass.SPEC_ERROR)
    assert "stored spec is invalid" in (bad.reason or "")
    assert world.state("j1") is S.RUNNING


def test_an_unreadable_spec_that_changed_meanwhile_does_not_abort_the_cycle(
    tmp_path: Path,
) -> None:
    """Failing the unreadable job can itself conflict; the other jobs must still progress.

    Today the ConflictError raised while failing it escapes the except clause, aborts the
    cycle and (with SQL) rolls back every other job's decisions.
    """
    world = World(
        TroubledStore("bad", ConflictError("changed meanwhile")), FakeBackend(), Clock(), tmp_path
    )
    world.add("j1")
    world.store.create_jobs(
        [
            NewJob(
                job_id=JobId("bad"),
                name="bad",
                project="p",
                workload_class="batch",
                backend="fake",
                spec={"apiVersion": "hpcbridge/v1", "kind": "Job"},
            )
        ],
        now=world.clock.now,
        actor="test",
    )
    world.reconciler().cycle()
    assert world.state("j1") is S.RUNNING


def test_a_transient_poll_error_fails_no_job(world: World) -> None:
    for job_id in ("j1", "j2"):
        world.add(job_id)
    reconciler = world.reconciler()
    reconciler.cycle()
    world.backend.poll_error = TransientBackendError("squeue timed out", argv=["squeue"])
    for _ in range(5):
        world.clock.advance(LOST_GRACE_S)
        report = reconciler.cycle()
        assert report.unavailable_backends == ["fake"]
        assert report.errors == []
    assert world.state("j1") is S.RUNNING
    assert world.state("j2") is S.RUNNING
    assert world.backend.kills == []
    world.backend.poll_error = None
    reconciler.cycle()
    assert {world.state("j1"), world.state("j2")} == {S.RUNNING}


def test_unknown_is_lost_only_after_the_grace_period(world: World) -> None:
    world.add("j1")
    reconciler = world.reconciler()
    reconciler.cycle()
    world.backend.program(world.token("j1"), Observation(Phase.UNKNOWN))
    reconciler.cycle()
    world.clock.advance(LOST_GRACE_S - 1)
    reconciler.cycle()
    assert world.state("j1") is S.RUNNING
    world.clock.advance(2)
    reconciler.cycle()
    job = world.store.get_job("j1")
    assert (job.state, job.failure_class) == (S.RETRY_WAIT, FailureClass.LOST)
    moves = [e.to_state for e in world.store.events(JobId("j1")) if e.kind == "transition"]
    assert moves[-2:] == [S.LOST, S.RETRY_WAIT]
    assert world.store.attempts(JobId("j1"))[0].failure_class is FailureClass.LOST


# -- crashes between writing and telling the scheduler ----------------------------------------


def prepared_job(world: World) -> str:
    """A job as a crashed control plane left it: queued, with a prepared attempt row."""
    job = world.add("j1")
    job = world.store.transition(
        job.job_id, S.QUEUED, expected_version=job.version, now=world.clock.now
    )
    attempt = world.store.create_attempt(
        job.job_id, backend="fake", token="tok-crash", now=world.clock.now, details={}
    )
    world.store.update_job(
        job.job_id, expected_version=job.version, now=world.clock.now, attempt_count=attempt.number
    )
    return attempt.token


def test_an_orphan_is_adopted_not_submitted_twice(world: World) -> None:
    token = prepared_job(world)
    world.backend.known[token] = Submitted(native_id="n-orphan", running=True)
    world.backend.program(token, Observation(Phase.RUNNING, nodes=("node1",)))
    report = world.reconciler().cycle()
    assert world.backend.finds == [token]
    assert world.backend.submitted == []
    assert report.submitted == 1
    [attempt] = world.store.attempts(JobId("j1"))
    assert (attempt.native_id, attempt.state, attempt.token) == (
        "n-orphan",
        AttemptState.RUNNING,
        token,
    )
    assert world.state("j1") is S.RUNNING


def test_a_prepared_attempt_the_scheduler_never_saw_is_submitted_once(world: World) -> None:
    token = prepared_job(world)
    reconciler = world.reconciler()
    reconciler.cycle()
    assert world.backend.finds == [token]
    assert [r.token for r in world.backend.submitted] == [token]
    reconciler.cycle()
    assert len(world.backend.submitted) == 1
    assert len(world.store.attempts(JobId("j1"))) == 1


def test_a_fresh_reconciler_never_asks_find_for_its_own_attempts(world: World) -> None:
    world.backend.slots = 1
    world.add("j1")
    world.add("j2")
    reconciler = world.reconciler()
    reconciler.cycle()
    reconciler.cycle()
    assert world.backend.finds == []
    assert len(world.backend.submitted) == 1


def test_success_without_a_start_time_is_not_run_again(world: World) -> None:
    """A scheduler that queues, then reports success with no start time (decide() bug)."""
    world.backend.running = False
    world.add("j1")
    reconciler = world.reconciler()
    reconciler.cycle()
    world.backend.finish(world.token("j1"), started_at=None)
    for _ in range(3):
        reconciler.cycle()
    assert world.state("j1") is S.SUCCEEDED
    assert len(world.backend.submitted) == 1


def test_a_scheduler_requeue_opens_an_attempt_on_the_same_native_job(world: World) -> None:
    world.add("j1")
    reconciler = world.reconciler()
    reconciler.cycle()
    first = world.token("j1")
    world.backend.program(first, Observation(Phase.RUNNING, nodes=("node1",), started_at=1.0))
    reconciler.cycle()
    world.clock.advance(30)
    world.backend.program(
        first,
        Observation(
            Phase.PENDING, reason="preempted; requeued", failure_class=FailureClass.PREEMPTED
        ),
    )
    reconciler.cycle()
    ended, follower = world.store.attempts(JobId("j1"))
    assert (ended.state, ended.failure_class) == (AttemptState.FAILED, FailureClass.PREEMPTED)
    assert (follower.state, follower.native_id) == (AttemptState.SUBMITTED, ended.native_id)
    assert follower.details["slot"] == ended.details["slot"]
    assert world.state("j1") is S.QUEUED
    assert len(world.backend.submitted) == 1  # the scheduler requeued it: no new submission
    world.clock.advance(10)
    world.backend.program(
        follower.token, Observation(Phase.RUNNING, nodes=("node2",), started_at=2.0)
    )
    reconciler.cycle()
    assert world.state("j1") is S.RUNNING
    [recovered] = [e for e in world.store.events(JobId("j1")) if "time_to_recover_s" in e.data]
    assert recovered.data["recovered_from"] == "preempted"
    world.backend.finish(follower.token)
    reconciler.cycle()
    assert world.state("j1") is S.SUCCEEDED
    assert world.store.get_job("j1").attempt_count == 2


def test_task_specs_built_from_a_sibling_equal_fully_validated_ones(world: World) -> None:
    sweep = load_spec_document(
        spec_document(
            command=["run", "--x", "{x}", "--i", "{index}"],
            env={"X": "{x}"},
            array={"params": {"x": [1, 2, 3]}},
        )
    )
    world.store.create_jobs(Client._rows_for(sweep, None), now=world.clock.now, actor="t")
    reconciler = world.reconciler()
    tasks = [j for j in world.store.list_jobs() if j.parent_id is not None]
    assert len(tasks) == 3
    for task in tasks:
        assert reconciler.spec_of(task) == load_spec_document(task.spec)
    assert {reconciler.spec_of(t).command for t in tasks} == {
        ("run", "--x", str(x), "--i", str(i)) for i, x in enumerate([1, 2, 3])
    }
    # A task whose shared part differs (an older stored version, say) is validated itself.
    odd = dataclasses.replace(
        tasks[0], job_id=JobId(f"{tasks[0].job_id}x"), spec={**tasks[0].spec, "priority": 7}
    )
    assert reconciler.spec_of(odd).priority == 7


def test_a_backend_that_takes_several_submissions_at_once_gets_them_all(world: World) -> None:
    world.backend.parallel_submissions = 4  # type: ignore[attr-defined]
    world.backend.running = False
    for i in range(10):
        world.add(f"j{i}")
    report = world.reconciler().cycle()
    assert report.submitted == 10
    assert sorted(r.job_id for r in world.backend.submitted) == [f"j{i}" for i in range(10)]
    for i in range(10):
        [attempt] = world.store.attempts(JobId(f"j{i}"))
        assert attempt.state is AttemptState.SUBMITTED
        assert world.backend.known[attempt.token].native_id == attempt.native_id
