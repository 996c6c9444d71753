"""What only PostgreSQL needs: concurrent transactions that SQLite's single writer rules out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import DataError

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.errors import FencedError
from hpcbridge.reconciler import StoreLease, leadership_for
from hpcbridge.reconciler._leader import DEFAULT_LEASE_TTL_S
from hpcbridge.states import JobState
from hpcbridge.store import JobId, NewJob, SqlStore
from hpcbridge.store._schema import events as events_t
from hpcbridge.store._sql import _insert_events

J1 = JobId("j1")


@pytest.fixture
def two_stores(postgres_url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    a, b = SqlStore(postgres_url), SqlStore(postgres_url)
    yield a, b
    a.close()
    b.close()


def new_job(job_id: str) -> NewJob:
    return NewJob(
        job_id=JobId(job_id),
        name="n",
        project="p",
        workload_class="batch",
        backend="local",
        spec={"name": "n"},
    )


def event_row(kind: str) -> dict[str, object]:
    return {"job_id": J1, "time": 1.0, "kind": kind, "data": {}, "actor": "test"}


class Background:
    """Run ``call`` in a thread; say whether it is still blocked, then join it."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self.result: object = None

        def run() -> None:
            try:
                self.result = call()
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def blocked(self, for_s: float = 0.5) -> bool:
        self.thread.join(for_s)
        return self.thread.is_alive()

    def join(self) -> object:
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


def test_without_the_events_lock_a_reader_would_see_a_gap(postgres_store: SqlStore) -> None:
    """The hazard the lock exists for: a transaction that took a lower sequence number
    commits after one that took a higher number."""
    postgres_store.create_jobs([new_job("j1")], now=1.0, actor="t")
    last = postgres_store.all_events()[-1].seq
    with postgres_store.engine.connect() as slow:
        with slow.begin():
            slow.execute(insert(events_t), [event_row("slow")])  # the raw insert: no lock
            postgres_store.add_event(J1, "fast", now=1.0)
            assert [(e.seq, e.kind) for e in postgres_store.all_events(after_seq=last)] == [
                (last + 2, "fast")
            ]
        # A reader that moved on to last + 2 never sees "slow" (last + 1).
        assert [e.kind for e in postgres_store.all_events(after_seq=last)] == ["slow", "fast"]


def test_events_become_visible_in_sequence_order(two_stores: tuple[SqlStore, SqlStore]) -> None:
    writer, other = two_stores
    writer.create_jobs([new_job("j1")], now=1.0, actor="t")
    last = writer.all_events()[-1].seq
    with writer.engine.connect() as slow, slow.begin():
        _insert_events(slow, [event_row("slow")])  # as every store write inserts events
        fast = Background(lambda: other.add_event(J1, "fast", now=1.0))
        assert fast.blocked()  # it may not take a number until "slow" commits
        assert writer.all_events(after_seq=last) == []
    fast.join()
    seen = writer.all_events(after_seq=last)
    assert [(e.seq, e.kind) for e in seen] == [(last + 1, "slow"), (last + 2, "fast")]


def test_a_database_error_inside_a_savepoint_leaves_the_batch_usable(
    postgres_store: SqlStore,
) -> None:
    """PostgreSQL aborts the whole transaction on an error; the savepoint contains it."""
    store = postgres_store
    store.create_jobs([new_job("j1")], now=1.0, actor="t")
    store.create_attempt(J1, backend="local", token="t1", now=1.0, details={})
    with store.batch():
        with pytest.raises(DataError), store.savepoint():
            store.add_event(J1, "undone", now=2.0)
            store.update_attempt(J1, 1, native_id="x" * 500)  # longer than the column
        job = store.transition(J1, JobState.QUEUED, expected_version=1, now=3.0)
        store.add_event(J1, "kept", now=3.0)
    assert store.get_job("j1") == job
    assert [e.kind for e in store.events(J1)] == ["accepted", "transition", "kept"]
    assert store.attempts(J1)[0].native_id is None


def test_a_takeover_waits_for_the_old_leaders_open_transaction(
    two_stores: tuple[SqlStore, SqlStore],
) -> None:
    """The old leader's fenced batch either commits before the new epoch exists or is
    refused: the takeover cannot land in the middle of it."""
    old_store, new_store = two_stores
    [job] = old_store.create_jobs([new_job("j1")], now=1.0, actor="t")
    old = old_store.acquire_lease("reconciler", "old", now=0.0, ttl_s=10.0)
    assert old is not None
    with old_store.fenced(old):
        with old_store.batch():
            old_store.add_event(J1, "checked-in", now=1.0)
            # The lease expired while this batch ran; the new leader must wait for it.
            takeover = Background(
                lambda: new_store.acquire_lease("reconciler", "new", now=20.0, ttl_s=10.0)
            )
            assert takeover.blocked()
            job = old_store.transition(J1, JobState.QUEUED, expected_version=1, now=2.0)
        new = takeover.join()
        assert new is not None
        assert isinstance(new, type(old))
        assert new.epoch == old.epoch + 1
        with pytest.raises(FencedError):
            old_store.transition(J1, JobState.RUNNING, expected_version=job.version, now=3.0)
    assert new_store.get_job("j1") == job
    with new_store.fenced(new):
        new_store.transition(J1, JobState.RUNNING, expected_version=job.version, now=4.0)


def test_columns_have_native_types(postgres_store: SqlStore) -> None:
    with postgres_store.engine.connect() as conn:
        types: dict[str, str] = dict(
            conn.exec_driver_sql(
                "SELECT table_name || '.' || column_name, data_type"
                " FROM information_schema.columns WHERE table_schema = current_schema()"
            ).all()
        )
    assert types["jobs.cancel_requested"] == "boolean"
    assert types["jobs.spec"] == "json"
    assert types["jobs.created_at"] == "double precision"
    assert types["leases.epoch"] == "bigint"


def test_reconcilers_on_postgresql_lead_by_a_fenced_lease(
    two_stores: tuple[SqlStore, SqlStore], tmp_path: Path
) -> None:
    """Two hosts' reconcilers, each with its own engine: one leads; the other takes over
    only once the lease expires, after which the first one's writes are refused."""
    clock = [100.0]
    leaders = [
        leadership_for(store, tmp_path / "unused.lock", clock=lambda: clock[0])
        for store in two_stores
    ]
    assert all(isinstance(leader, StoreLease) for leader in leaders)
    first, second = leaders
    store = two_stores[0]
    [job] = store.create_jobs([new_job("j1")], now=1.0, actor="t")
    assert first.try_acquire()
    assert not second.try_acquire()
    with first.fenced():
        job = store.transition(J1, JobState.QUEUED, expected_version=1, now=2.0)
    clock[0] += DEFAULT_LEASE_TTL_S
    assert second.try_acquire()
    with pytest.raises(FencedError), first.fenced():
        store.transition(J1, JobState.RUNNING, expected_version=job.version, now=3.0)
    assert not first.try_acquire()
    with second.fenced():
        two_stores[1].transition(J1, JobState.RUNNING, expected_version=job.version, now=4.0)


def test_one_client_leads_the_reconciler_on_postgresql(
    postgres_url: str, settings: Settings
) -> None:
    """The embedded client picks the lease by the store's dialect: of two clients on one
    database, only one runs cycles until it hands over."""
    settings = settings.model_copy(update={"database_url": postgres_url})
    first, second = Client(settings), Client(settings)
    try:
        assert first.reconcile_once() is not None
        assert second.reconcile_once() is None
        assert first.reconcile_once() is not None
        first.hand_over()  # releases the lease; no active jobs, so no agent starts
        assert second.reconcile_once() is not None
        assert first.reconcile_once() is None
    finally:
        first.close()
        second.close()
