"""The store contract: one suite, run against MemoryStore and SqlStore on a real SQLite file
and on a real PostgreSQL database (a schema of its own per test; see conftest.py).

Anything one implementation does and another does not is a bug in one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.config import Settings
from hpcbridge.errors import (
    ConflictError,
    FencedError,
    InvalidTransitionError,
    NotFoundError,
    StoreError,
)
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import (
    Job,
    JobFilter,
    JobId,
    Lease,
    MemoryStore,
    NewJob,
    SqlStore,
    Store,
    new_token,
    open_store,
    task_job_id,
)

S = JobState


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store
    if request.param == "sqlite":
        opened = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    elif request.param == "postgres":
        opened = SqlStore(request.getfixturevalue("postgres_url"))
    else:
        opened = MemoryStore()
    yield opened
    opened.close()


def new_job(job_id: str, **fields: Any) -> NewJob:
    values: dict[str, Any] = {
        "name": "job",
        "project": "proj",
        "workload_class": "batch",
        "backend": "local",
        "spec": {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": "job", "command": ["x"]},
    }
    values.update(fields)
    return NewJob(job_id=JobId(job_id), **values)


def create(store: Store, *jobs: NewJob, now: float = 100.0) -> list[Job]:
    return store.create_jobs(list(jobs), now=now, actor="tester")


def move(store: Store, job_id: str, *states: JobState, now: float = 200.0) -> Job:
    job = store.get_job(job_id)
    for state in states:
        job = store.transition(job.job_id, state, expected_version=job.version, now=now)
    return job


# -- creating and reading jobs ----------------------------------------------------------------


def test_create_returns_accepted_jobs_and_get_reads_them_back(store: Store) -> None:
    [job] = create(
        store, new_job("j1", tags={"team": "ml"}, priority=5, cluster="c1", idempotency_key="k1")
    )
    assert job.state is S.ACCEPTED
    assert job.version == 1
    assert job.created_at == job.updated_at == 100.0
    assert (job.tags, job.priority, job.cluster, job.idempotency_key) == (
        {"team": "ml"},
        5,
        "c1",
        "k1",
    )
    assert (job.attempt_count, job.cancel_requested, job.reason, job.failure_class) == (
        0,
        False,
        None,
        None,
    )
    assert store.get_job("j1") == job


def test_create_writes_an_accepted_event(store: Store) -> None:
    create(store, new_job("j1"), new_job("j2"))
    [event] = store.events(JobId("j1"))
    assert (event.kind, event.from_state, event.to_state, event.actor, event.time) == (
        "accepted",
        None,
        S.ACCEPTED,
        "tester",
        100.0,
    )


def test_an_array_parent_and_its_tasks(store: Store) -> None:
    parent = JobId("jp")
    create(
        store,
        new_job(parent, task_count=3),
        *[
            new_job(
                task_job_id(parent, i), parent_id=parent, task_index=i, task_params={"lr": str(i)}
            )
            for i in range(3)
        ],
    )
    assert store.get_job(parent).is_array_parent
    tasks = store.list_jobs(JobFilter(parent_id=parent))
    assert [t.job_id for t in tasks] == ["jp.0", "jp.1", "jp.2"]
    assert [t.task_index for t in tasks] == [0, 1, 2]
    assert tasks[1].task_params == {"lr": "1"}
    assert not tasks[0].is_array_parent
    assert store.count_children(parent) == {S.ACCEPTED: 3}
    move(store, "jp.0", S.QUEUED, S.RUNNING)
    move(store, "jp.1", S.CANCELLED)
    assert store.count_children(parent) == {S.ACCEPTED: 1, S.RUNNING: 1, S.CANCELLED: 1}
    assert store.count_children(JobId("jp.0")) == {}
    assert [j.job_id for j in store.list_jobs(JobFilter(top_level_only=True))] == ["jp"]


def test_list_filters(store: Store) -> None:
    create(store, new_job("a1", project="a", name="x"), now=1.0)
    create(store, new_job("a2", project="a", name="y"), now=2.0)
    create(store, new_job("b1", project="b", name="x"), now=3.0)
    move(store, "a2", S.QUEUED)
    move(store, "b1", S.FAILED)

    def ids(query: JobFilter) -> list[str]:
        return [j.job_id for j in store.list_jobs(query)]

    assert ids(JobFilter()) == ["a1", "a2", "b1"]
    assert ids(JobFilter(project="a")) == ["a1", "a2"]
    assert ids(JobFilter(name="x")) == ["a1", "b1"]
    assert ids(JobFilter(project="a", name="x")) == ["a1"]
    assert ids(JobFilter(states=frozenset({S.QUEUED, S.FAILED}))) == ["a2", "b1"]
    assert ids(JobFilter(states=frozenset())) == []
    assert ids(JobFilter(limit=2)) == ["a1", "a2"]
    assert ids(JobFilter(limit=0)) == []
    assert ids(JobFilter(project="nope")) == []
    assert [j.job_id for j in store.active_jobs()] == ["a1", "a2"]


def test_jobs_created_together_list_in_id_order(store: Store) -> None:
    create(store, new_job("c"), new_job("a"), new_job("b"))
    assert [j.job_id for j in store.list_jobs()] == ["a", "b", "c"]


def test_newest_jobs_are_the_last_created_newest_first(store: Store) -> None:
    create(store, new_job("a1", project="a"), now=1.0)
    create(store, new_job("b1", project="b"), now=2.0)
    create(store, new_job("a3", project="a"), new_job("a2", project="a"), now=3.0)
    move(store, "a2", S.QUEUED)

    def ids(query: JobFilter) -> list[str]:
        return [j.job_id for j in store.newest_jobs(query)]

    assert ids(JobFilter()) == ["a3", "a2", "b1", "a1"]
    assert ids(JobFilter(limit=2)) == ["a3", "a2"]
    assert ids(JobFilter(project="a", limit=3)) == ["a3", "a2", "a1"]
    assert ids(JobFilter(states=frozenset({S.ACCEPTED}), limit=2)) == ["a3", "b1"]
    assert ids(JobFilter(limit=0)) == []
    assert ids(JobFilter(limit=10)) == list(reversed([j.job_id for j in store.list_jobs()]))


def test_unknown_ids_raise_not_found(store: Store) -> None:
    create(store, new_job("j1"))
    unknown = JobId("nope")
    with pytest.raises(NotFoundError, match="no job 'nope'"):
        store.get_job(unknown)
    with pytest.raises(NotFoundError):
        store.transition(unknown, S.QUEUED, expected_version=1, now=1.0)
    with pytest.raises(NotFoundError):
        store.update_job(unknown, expected_version=1, now=1.0, priority=1)
    with pytest.raises(NotFoundError):
        store.create_attempt(unknown, backend="local", token="t", now=1.0, details={})
    with pytest.raises(NotFoundError):
        store.add_event(unknown, "note", now=1.0)
    with pytest.raises(NotFoundError, match="no attempt 7"):
        store.update_attempt(JobId("j1"), 7, state=AttemptState.RUNNING)
    assert store.attempts(unknown) == []
    assert store.events(unknown) == []


def test_duplicate_job_ids_are_refused(store: Store) -> None:
    create(store, new_job("j1"))
    with pytest.raises(StoreError):
        create(store, new_job("j2"), new_job("j1"))
    assert [j.job_id for j in store.list_jobs()] == ["j1"]


def test_idempotency_key_lookup(store: Store) -> None:
    create(store, new_job("j1", idempotency_key="key-1"), new_job("j2"))
    found = store.find_by_idempotency_key("key-1")
    assert found is not None
    assert found.job_id == "j1"
    assert store.find_by_idempotency_key("key-2") is None


def test_an_idempotency_key_names_one_job(store: Store) -> None:
    """SQL has a unique index on the key; the in-memory twin must refuse a reuse too."""
    create(store, new_job("j1", idempotency_key="key-1"))
    with pytest.raises(StoreError):
        create(store, new_job("j2", idempotency_key="key-1"))
    assert [j.job_id for j in store.list_jobs()] == ["j1"]


def test_a_task_needs_an_existing_parent(store: Store) -> None:
    """SQL enforces the parent foreign key; the in-memory twin must as well."""
    with pytest.raises(StoreError):
        create(store, new_job("orphan.0", parent_id=JobId("orphan"), task_index=0))
    assert store.list_jobs() == []


# -- transitions ------------------------------------------------------------------------------


def test_transition_updates_the_job_and_writes_one_event(store: Store) -> None:
    create(store, new_job("j1"))
    queued = move(store, "j1", S.QUEUED, now=150.0)
    failed = store.transition(
        JobId("j1"),
        S.FAILED,
        expected_version=queued.version,
        now=300.0,
        reason="exited with code 3",
        actor="reconciler",
        attempt=1,
        data={"extra": 1},
        failure_class=FailureClass.APP_ERROR,
        exit_code=3,
    )
    assert failed.state is S.FAILED
    assert failed.version == queued.version + 1 == 3
    assert (failed.updated_at, failed.finished_at) == (300.0, 300.0)
    assert (failed.reason, failed.failure_class, failed.exit_code) == (
        "exited with code 3",
        FailureClass.APP_ERROR,
        3,
    )
    assert store.get_job("j1") == failed
    last = store.events(JobId("j1"))[-1]
    assert (
        last.kind,
        last.from_state,
        last.to_state,
        last.reason,
        last.actor,
        last.attempt,
        last.time,
    ) == ("transition", S.QUEUED, S.FAILED, "exited with code 3", "reconciler", 1, 300.0)
    assert last.data == {"extra": 1, "failure_class": "app_error"}


def test_started_at_is_set_once(store: Store) -> None:
    create(store, new_job("j1"))
    running = move(store, "j1", S.QUEUED, S.RUNNING, now=10.0)
    assert running.started_at == 10.0
    assert running.finished_at is None
    again = move(store, "j1", S.QUEUED, S.RUNNING, now=20.0)
    assert again.started_at == 10.0


def test_forbidden_transition_writes_nothing(store: Store) -> None:
    [job] = create(store, new_job("j1"))
    events = store.events(JobId("j1"))
    with pytest.raises(InvalidTransitionError, match="cannot go from accepted to succeeded"):
        store.transition(job.job_id, S.SUCCEEDED, expected_version=1, now=1.0)
    assert store.get_job("j1") == job
    assert store.events(JobId("j1")) == events


def test_terminal_jobs_stay_terminal(store: Store) -> None:
    create(store, new_job("j1"))
    done = move(store, "j1", S.CANCELLED)
    for target in JobState:
        with pytest.raises(InvalidTransitionError):
            store.transition(done.job_id, target, expected_version=done.version, now=1.0)


def test_stale_version_raises_conflict_and_writes_nothing(store: Store) -> None:
    [job] = create(store, new_job("j1"))
    current = move(store, "j1", S.QUEUED)
    events = store.events(JobId("j1"))
    with pytest.raises(ConflictError, match="changed meanwhile"):
        store.transition(job.job_id, S.RUNNING, expected_version=job.version, now=1.0)
    with pytest.raises(ConflictError):
        store.update_job(job.job_id, expected_version=job.version, now=1.0, priority=9)
    assert store.get_job("j1") == current
    assert store.events(JobId("j1")) == events


def test_transition_refuses_fields_outside_the_whitelist(store: Store) -> None:
    [job] = create(store, new_job("j1"))
    with pytest.raises(StoreError, match="cannot update"):
        store.transition(job.job_id, S.QUEUED, expected_version=1, now=1.0, name="renamed")
    assert store.get_job("j1") == job
    assert len(store.events(JobId("j1"))) == 1


# -- update_job --------------------------------------------------------------------------------


def test_update_job_changes_whitelisted_fields_without_an_event(store: Store) -> None:
    [job] = create(store, new_job("j1"))
    updated = store.update_job(
        job.job_id,
        expected_version=1,
        now=5.0,
        reason="waiting",
        priority=7,
        cancel_requested=True,
        next_attempt_at=99.0,
        attempt_count=2,
    )
    assert (updated.version, updated.updated_at, updated.state) == (2, 5.0, S.ACCEPTED)
    assert (
        updated.reason,
        updated.priority,
        updated.cancel_requested,
        updated.next_attempt_at,
        updated.attempt_count,
    ) == ("waiting", 7, True, 99.0, 2)
    assert store.get_job("j1") == updated
    assert len(store.events(JobId("j1"))) == 1


@pytest.mark.parametrize(
    "field", ["state", "version", "name", "project", "spec", "backend", "parent_id", "token"]
)
def test_update_job_refuses_other_fields(store: Store, field: str) -> None:
    [job] = create(store, new_job("j1"))
    with pytest.raises(StoreError, match="cannot update"):
        store.update_job(job.job_id, expected_version=1, now=5.0, **{field: "x"})
    assert store.get_job("j1") == job


# -- attempts ----------------------------------------------------------------------------------


def test_attempts_are_numbered_per_job(store: Store) -> None:
    create(store, new_job("j1"), new_job("j2"))
    j1, j2 = JobId("j1"), JobId("j2")
    first = store.create_attempt(j1, backend="local", token="t1", now=1.0, details={"a": 1})
    second = store.create_attempt(j1, backend="local", token="t2", now=2.0, details={})
    other = store.create_attempt(j2, backend="slurm", token="t3", now=3.0, details={})
    assert (first.number, second.number, other.number) == (1, 2, 1)
    assert first.state is AttemptState.PREPARED
    assert (first.token, first.backend, first.created_at, first.details) == (
        "t1",
        "local",
        1.0,
        {"a": 1},
    )
    assert first.native_id is None
    assert store.attempts(j1) == [first, second]
    assert store.attempts(j2) == [other]


def test_update_attempt(store: Store) -> None:
    create(store, new_job("j1"))
    j1 = JobId("j1")
    store.create_attempt(j1, backend="local", token="t1", now=1.0, details={})
    updated = store.update_attempt(
        j1,
        1,
        state=AttemptState.FAILED,
        native_id="123",
        nodes=["n1", "n2"],
        submitted_at=2.0,
        started_at=3.0,
        ended_at=4.0,
        exit_code=137,
        signal=9,
        failure_class=FailureClass.OOM,
        reason="too big",
        details={"kill": {"at": 3.5}},
    )
    assert updated.nodes == ("n1", "n2")
    assert (
        updated.state,
        updated.native_id,
        updated.exit_code,
        updated.signal,
        updated.failure_class,
        updated.reason,
    ) == (AttemptState.FAILED, "123", 137, 9, FailureClass.OOM, "too big")
    assert (updated.submitted_at, updated.started_at, updated.ended_at) == (2.0, 3.0, 4.0)
    assert updated.details == {"kill": {"at": 3.5}}
    assert store.attempts(j1) == [updated]


@pytest.mark.parametrize("field", ["token", "backend", "created_at", "attempt_count"])
def test_update_attempt_refuses_other_fields(store: Store, field: str) -> None:
    create(store, new_job("j1"))
    attempt = store.create_attempt(JobId("j1"), backend="local", token="t1", now=1.0, details={})
    with pytest.raises(StoreError, match="cannot update"):
        store.update_attempt(JobId("j1"), 1, **{field: "x"})
    assert store.attempts(JobId("j1")) == [attempt]


def test_attempt_tokens_are_unique(store: Store) -> None:
    """The token finds an orphan after a crash, so two attempts may never share one."""
    create(store, new_job("j1"), new_job("j2"))
    store.create_attempt(JobId("j1"), backend="local", token="same", now=1.0, details={})
    with pytest.raises(StoreError):
        store.create_attempt(JobId("j2"), backend="local", token="same", now=2.0, details={})
    assert store.attempts(JobId("j2")) == []


def test_active_attempts(store: Store) -> None:
    create(store, new_job("j1"), new_job("j2"))
    j1, j2 = JobId("j1"), JobId("j2")
    for job_id in (j1, j1, j1, j2, j2):
        store.create_attempt(job_id, backend="local", token=new_token(), now=1.0, details={})
    store.update_attempt(j1, 1, state=AttemptState.FAILED)
    store.update_attempt(j1, 2, state=AttemptState.SUCCEEDED)
    store.update_attempt(j1, 3, state=AttemptState.RUNNING)
    store.update_attempt(j2, 1, state=AttemptState.SUBMITTED)
    active = {(a.job_id, a.number, a.state) for a in store.active_attempts()}
    assert active == {
        (j1, 3, AttemptState.RUNNING),
        (j2, 1, AttemptState.SUBMITTED),
        (j2, 2, AttemptState.PREPARED),
    }


# -- events ------------------------------------------------------------------------------------


def test_events_are_ordered_and_paged_by_seq(store: Store) -> None:
    create(store, new_job("j1"), new_job("j2"))
    j1, j2 = JobId("j1"), JobId("j2")
    store.add_event(j1, "note", now=1.0, reason="first", data={"n": 1}, actor="alice", attempt=2)
    store.add_event(j2, "note", now=2.0)
    move(store, "j1", S.QUEUED)
    everything = store.all_events()
    seqs = [e.seq for e in everything]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs) == 5
    mine = store.events(j1)
    assert [e.kind for e in mine] == ["accepted", "note", "transition"]
    note = mine[1]
    assert (note.reason, note.data, note.actor, note.attempt, note.time) == (
        "first",
        {"n": 1},
        "alice",
        2,
        1.0,
    )
    assert store.events(j1, after_seq=note.seq) == mine[2:]
    assert store.events(j1, after_seq=mine[-1].seq) == []
    assert store.all_events(after_seq=seqs[1]) == everything[2:]
    assert store.all_events(after_seq=seqs[1], limit=2) == everything[2:4]
    assert store.all_events(limit=1) == everything[:1]
    assert store.events(j2)[-1].data == {}


# -- retention ---------------------------------------------------------------------------------

KEEP = frozenset({"accepted", "transition"})


def test_finished_jobs_are_terminal_ones_finished_before_the_cutoff(store: Store) -> None:
    create(store, *(new_job(name) for name in ("old", "older", "recent", "active", "parent")))
    create(store, new_job("parent.0", parent_id=JobId("parent"), task_index=0))
    move(store, "older", S.QUEUED, S.RUNNING, S.FAILED, now=10.0)
    move(store, "old", S.CANCELLED, now=20.0)
    move(store, "parent.0", S.QUEUED, S.RUNNING, S.SUCCEEDED, now=30.0)
    move(store, "recent", S.QUEUED, S.RUNNING, S.SUCCEEDED, now=50.0)
    move(store, "active", S.QUEUED, S.RUNNING, now=1.0)
    found = store.finished_jobs(before=50.0)
    assert [j.job_id for j in found] == ["older", "old", "parent.0"]
    assert [j.finished_at for j in found] == [10.0, 20.0, 30.0]
    assert store.finished_jobs(before=10.0) == []


def test_delete_events_removes_exactly_what_count_events_counts(store: Store) -> None:
    create(store, new_job("j1"), new_job("j2"), now=1.0)
    j1, j2 = JobId("j1"), JobId("j2")
    store.add_event(j1, "attempt_submitted", now=2.0, attempt=1)
    store.add_event(j1, "kill", now=3.0, attempt=1)
    store.add_event(j1, "kill", now=9.0, attempt=1)  # inside the retention period
    store.add_event(j2, "kill", now=3.0)  # another job's
    move(store, "j1", S.CANCELLED, now=4.0)
    store.add_event(j2, "note", now=10.0)
    before = {e.seq: e for e in store.all_events()}

    counted = store.count_events([j1], before=5.0, keep_kinds=KEEP)
    assert counted == {"attempt_submitted": 1, "kill": 1}
    assert store.delete_events([j1], before=5.0, keep_kinds=KEEP) == 2
    after = {e.seq: e for e in store.all_events()}
    gone = [before[seq] for seq in sorted(set(before) - set(after))]
    assert [(e.job_id, e.kind, e.time) for e in gone] == [
        (j1, "attempt_submitted", 2.0),
        (j1, "kill", 3.0),
    ]
    assert all(before[seq] == event for seq, event in after.items())  # the rest as it was
    assert [e.kind for e in store.events(j1)] == ["accepted", "kill", "transition"]
    assert store.count_events([j1], before=5.0, keep_kinds=KEEP) == {}
    assert store.delete_events([j1], before=5.0, keep_kinds=KEEP) == 0
    assert store.delete_events([], before=5.0, keep_kinds=KEEP) == 0


def test_deleted_events_never_free_a_sequence_number(store: Store) -> None:
    create(store, new_job("j1"), now=1.0)
    j1 = JobId("j1")
    store.add_event(j1, "note", now=2.0)
    store.add_event(j1, "note", now=3.0)
    newest = store.all_events()[-1].seq
    # Everything may go but the newest event of the log, which would free its number.
    assert store.count_events([j1], before=100.0, keep_kinds=frozenset()) == {
        "accepted": 1,
        "note": 1,
    }
    assert store.delete_events([j1], before=100.0, keep_kinds=frozenset()) == 2
    assert [e.seq for e in store.all_events()] == [newest]
    store.add_event(j1, "note", now=4.0)
    assert store.all_events(after_seq=newest)[0].seq > newest


def test_deleted_events_are_undone_with_their_batch(store: Store) -> None:
    create(store, new_job("j1"), now=1.0)
    j1 = JobId("j1")
    store.add_event(j1, "note", now=2.0)
    store.add_event(j1, "note", now=3.0)
    kept = store.all_events()
    with pytest.raises(RuntimeError), store.batch():
        assert store.delete_events([j1], before=100.0, keep_kinds=KEEP) == 1
        raise RuntimeError("undo")
    assert store.all_events() == kept


# -- batches -----------------------------------------------------------------------------------


def test_batch_commits_all_writes_together(store: Store) -> None:
    with store.batch():
        create(store, new_job("j1"))
        move(store, "j1", S.QUEUED)
        store.create_attempt(JobId("j1"), backend="local", token="t", now=1.0, details={})
        store.add_event(JobId("j1"), "note", now=1.0)
    assert store.get_job("j1").state is S.QUEUED
    assert len(store.attempts(JobId("j1"))) == 1
    assert len(store.events(JobId("j1"))) == 3


def test_batch_rolls_back_every_write_on_an_exception(store: Store) -> None:
    create(store, new_job("j0"))
    before = (store.list_jobs(), store.all_events(), store.active_attempts())

    class BoomError(Exception):
        pass

    with pytest.raises(BoomError), store.batch():
        create(store, new_job("j1"))
        move(store, "j0", S.QUEUED)
        store.create_attempt(JobId("j0"), backend="local", token="t", now=1.0, details={})
        store.update_job(JobId("j0"), expected_version=2, now=1.0, reason="x")
        store.add_event(JobId("j0"), "note", now=1.0)
        raise BoomError
    assert (store.list_jobs(), store.all_events(), store.active_attempts()) == before
    # The store still works after the rollback, and sequence numbers keep increasing.
    move(store, "j0", S.QUEUED)
    assert store.all_events()[-1].seq > before[1][-1].seq


def test_nested_batches_join_the_outer_one(store: Store) -> None:
    with pytest.raises(RuntimeError), store.batch():
        with store.batch():
            create(store, new_job("j1"))
        raise RuntimeError("outer fails")
    assert store.list_jobs() == []


def test_reads_inside_a_batch_see_its_writes(store: Store) -> None:
    with store.batch():
        create(store, new_job("j1"))
        assert store.get_job("j1").state is S.ACCEPTED
        assert [j.job_id for j in store.active_jobs()] == ["j1"]


# -- savepoints --------------------------------------------------------------------------------


class BoomError(Exception):
    pass


def test_a_savepoint_undoes_its_writes_and_the_batch_commits_the_rest(store: Store) -> None:
    create(store, new_job("j0"))
    j0 = JobId("j0")
    with store.batch():
        create(store, new_job("j1"))
        queued = move(store, "j0", S.QUEUED)
        store.add_event(j0, "before", now=1.0)
        with pytest.raises(BoomError), store.savepoint():
            create(store, new_job("j2"))
            running = move(store, "j0", S.RUNNING)
            store.create_attempt(j0, backend="local", token="t1", now=1.0, details={})
            store.update_job(j0, expected_version=running.version, now=1.0, priority=9)
            store.add_event(j0, "undone", now=1.0)
            raise BoomError
        store.add_event(JobId("j1"), "after", now=1.0)
    assert [j.job_id for j in store.list_jobs()] == ["j0", "j1"]
    assert store.get_job("j0") == queued
    assert store.attempts(j0) == []
    assert [e.kind for e in store.events(j0)] == ["accepted", "transition", "before"]
    assert [e.kind for e in store.events(JobId("j1"))] == ["accepted", "after"]
    seqs = [e.seq for e in store.all_events()]
    assert seqs == sorted(set(seqs))


def test_a_nested_savepoint_undoes_only_its_own_writes(store: Store) -> None:
    with store.batch():
        with store.savepoint():
            create(store, new_job("j1"))
            with pytest.raises(BoomError), store.savepoint():
                create(store, new_job("j2"))
                raise BoomError
            create(store, new_job("j3"))
        with pytest.raises(BoomError), store.savepoint():
            create(store, new_job("j4"))
            raise BoomError
    assert [j.job_id for j in store.list_jobs()] == ["j1", "j3"]


def test_after_an_undone_savepoint_the_records_are_what_is_stored(store: Store) -> None:
    """Nothing the undone writes returned may be served again (SqlStore keeps caches)."""
    create(store, new_job("j1"))
    j1 = JobId("j1")
    store.create_attempt(j1, backend="local", token="t1", now=1.0, details={"a": 1})
    with store.batch():
        with pytest.raises(BoomError), store.savepoint():
            store.update_attempt(j1, 1, native_id="undone", details={"b": 2})
            assert [a.native_id for a in store.active_attempts()] == ["undone"]
            move(store, "j1", S.QUEUED)
            assert [j.state for j in store.active_jobs()] == [S.QUEUED]
            raise BoomError
        updated = store.update_attempt(j1, 1, state=AttemptState.SUBMITTED)
        assert (updated.native_id, updated.details) == (None, {"a": 1})
        assert store.active_attempts() == [updated]
        assert [j.state for j in store.active_jobs()] == [S.ACCEPTED]
    assert store.attempts(j1) == [updated]
    job = store.get_job("j1")
    assert (job.state, job.version) == (S.ACCEPTED, 1)
    with pytest.raises(ConflictError):
        store.transition(j1, S.RUNNING, expected_version=2, now=1.0)
    assert store.transition(j1, S.QUEUED, expected_version=1, now=1.0).version == 2


def test_a_store_error_inside_a_savepoint_leaves_the_batch_usable(store: Store) -> None:
    create(store, new_job("j0"))
    with store.batch():
        with pytest.raises(StoreError), store.savepoint():
            create(store, new_job("j1"))
            create(store, new_job("j0"))  # a duplicate id: refused by the database
        with pytest.raises(ConflictError), store.savepoint():
            store.update_job(JobId("j0"), expected_version=7, now=1.0, priority=1)
        move(store, "j0", S.QUEUED)
        create(store, new_job("j2"))
    assert [(j.job_id, j.state) for j in store.list_jobs()] == [
        ("j0", S.QUEUED),
        ("j2", S.ACCEPTED),
    ]


def test_nested_savepoints_undo_only_their_own_writes(store: Store) -> None:
    with store.batch():
        create(store, new_job("outer"))
        with store.savepoint():
            create(store, new_job("kept"))
            with pytest.raises(BoomError), store.savepoint():
                create(store, new_job("inner"))
                raise BoomError
    assert [j.job_id for j in store.list_jobs()] == ["kept", "outer"]


def test_a_savepoint_outside_a_batch_is_a_batch(store: Store) -> None:
    with pytest.raises(BoomError), store.savepoint():
        create(store, new_job("j1"))
        store.add_event(JobId("j1"), "note", now=1.0)
        raise BoomError
    assert store.list_jobs() == []
    assert store.all_events() == []
    with store.savepoint():
        create(store, new_job("j1"))
    assert [j.job_id for j in store.list_jobs()] == ["j1"]


def test_a_failed_batch_undoes_its_savepoints_too(store: Store) -> None:
    with pytest.raises(BoomError), store.batch():
        with store.savepoint():
            create(store, new_job("j1"))
        raise BoomError
    assert store.list_jobs() == []
    assert store.all_events() == []


# -- leases ------------------------------------------------------------------------------------


def test_a_lease_has_one_holder_until_it_expires(store: Store) -> None:
    first = store.acquire_lease("reconciler", "A", now=100.0, ttl_s=10.0)
    assert first == Lease("reconciler", "A", 1, 110.0)
    assert store.acquire_lease("reconciler", "B", now=109.9, ttl_s=10.0) is None
    renewed = store.renew_lease(first, now=105.0, ttl_s=10.0)
    assert renewed == Lease("reconciler", "A", 1, 115.0)
    assert store.acquire_lease("reconciler", "B", now=114.0, ttl_s=10.0) is None
    second = store.acquire_lease("reconciler", "B", now=115.0, ttl_s=10.0)
    assert second == Lease("reconciler", "B", 2, 125.0)
    with pytest.raises(FencedError, match="epoch 1 of A is stale"):
        store.renew_lease(renewed, now=116.0, ttl_s=10.0)
    assert store.acquire_lease("reconciler", "A", now=116.0, ttl_s=10.0) is None
    assert store.acquire_lease("other", "A", now=116.0, ttl_s=10.0) == Lease("other", "A", 1, 126.0)


def test_the_holder_keeps_its_epoch_and_a_release_frees_the_lease(store: Store) -> None:
    first = store.acquire_lease("reconciler", "A", now=0.0, ttl_s=10.0)
    assert first is not None
    # Asking again renews, even after expiry: nobody else held it meanwhile.
    again = store.acquire_lease("reconciler", "A", now=50.0, ttl_s=10.0)
    assert again == Lease("reconciler", "A", 1, 60.0)
    store.release_lease(again)
    with pytest.raises(FencedError):
        store.renew_lease(again, now=51.0, ttl_s=10.0)
    second = store.acquire_lease("reconciler", "B", now=51.0, ttl_s=10.0)
    assert second == Lease("reconciler", "B", 2, 61.0)
    store.release_lease(again)  # a stale release changes nothing
    assert store.acquire_lease("reconciler", "C", now=52.0, ttl_s=10.0) is None
    with pytest.raises(StoreError, match="must not be empty"):
        store.acquire_lease("reconciler", "", now=100.0, ttl_s=10.0)


def test_the_replaced_leaders_fenced_writes_are_refused(store: Store) -> None:
    create(store, new_job("j1"))
    j1 = JobId("j1")
    old = store.acquire_lease("reconciler", "A", now=0.0, ttl_s=10.0)
    assert old is not None
    with store.fenced(old):
        queued = move(store, "j1", S.QUEUED)
        store.add_event(j1, "by-a", now=1.0)
    new = store.acquire_lease("reconciler", "B", now=10.0, ttl_s=10.0)
    assert new is not None
    before = (store.list_jobs(), store.all_events(), store.attempts(j1))
    writes: list[Callable[[], object]] = [
        lambda: store.transition(j1, S.RUNNING, expected_version=queued.version, now=11.0),
        lambda: store.update_job(j1, expected_version=queued.version, now=11.0, priority=3),
        lambda: store.create_attempt(j1, backend="local", token="t", now=11.0, details={}),
        lambda: store.add_event(j1, "by-a", now=11.0),
        lambda: create(store, new_job("j2")),
    ]
    refused = r"epoch 1 of A is stale \(the lease is at epoch 2, held by B\)"
    for write in writes:
        with pytest.raises(FencedError, match=refused), store.fenced(old):
            write()
    with pytest.raises(FencedError), store.fenced(old), store.batch():
        store.add_event(j1, "by-a", now=11.0)
    with pytest.raises(FencedError), store.batch(), store.fenced(old):
        store.add_event(j1, "by-a", now=11.0)
    assert (store.list_jobs(), store.all_events(), store.attempts(j1)) == before
    with store.fenced(new):
        store.update_job(j1, expected_version=queued.version, now=12.0, priority=3)
    # Writes outside fenced() (the API's) are not the leader's: never refused.
    store.add_event(j1, "by-api", now=13.0)
    assert [e.kind for e in store.events(j1)][-2:] == ["by-a", "by-api"]


# -- opening ---------------------------------------------------------------------------------


def test_open_store_follows_the_settings(settings: Settings) -> None:
    sql = open_store(settings)
    try:
        assert isinstance(sql, SqlStore)
        assert (settings.home / "hpcbridge.db").exists()
    finally:
        sql.close()
    memory = open_store(settings.model_copy(update={"database_url": "memory://"}))
    assert isinstance(memory, MemoryStore)
