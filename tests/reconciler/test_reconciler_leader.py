"""Leadership: the host-local flock for SQLite, a fenced lease in the store otherwise."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbridge.errors import FencedError
from hpcbridge.reconciler import LeaderLock, StoreLease, leadership_for
from hpcbridge.states import JobState
from hpcbridge.store import JobId, MemoryStore, NewJob, SqlStore, Store

J1 = JobId("j1")


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store = (
        MemoryStore() if request.param == "memory" else SqlStore(f"sqlite:///{tmp_path / 'db'}")
    )
    opened.create_jobs(
        [NewJob(job_id=J1, name="n", project="p", workload_class="b", backend="local", spec={})],
        now=0.0,
        actor="t",
    )
    yield opened
    opened.close()


def test_the_second_holder_takes_over_only_after_expiry(store: Store) -> None:
    clock = Clock()
    first = StoreLease(store, holder="first", ttl_s=10.0, clock=clock)
    second = StoreLease(store, holder="second", ttl_s=10.0, clock=clock)
    assert first.try_acquire()
    assert not second.try_acquire()
    clock.now += 9.0
    assert first.try_acquire()  # renews: now good until 1019
    clock.now += 9.0
    assert not second.try_acquire()
    assert first.held
    clock.now += 1.0  # first stopped renewing (paused, cut off) and its lease ran out
    assert not first.held
    assert second.try_acquire()
    assert second.lease is not None
    assert first.lease is not None
    assert second.lease.epoch == first.lease.epoch + 1
    assert not first.try_acquire()
    assert not first.held


def test_the_old_holders_fenced_writes_are_refused(store: Store) -> None:
    clock = Clock()
    first = StoreLease(store, holder="first", ttl_s=10.0, clock=clock)
    second = StoreLease(store, holder="second", ttl_s=10.0, clock=clock)
    assert first.try_acquire()
    with first.fenced():  # entered while it led, as a cycle would be
        job = store.transition(J1, JobState.QUEUED, expected_version=1, now=clock())
        clock.now += 30.0
        assert second.try_acquire()
        with pytest.raises(FencedError, match="epoch 1 of first is stale"):
            store.transition(J1, JobState.RUNNING, expected_version=job.version, now=clock())
    assert store.get_job(J1) == job
    assert not first.try_acquire()
    with pytest.raises(FencedError, match="first does not hold it"):
        first.fenced()
    with second.fenced():
        store.transition(J1, JobState.RUNNING, expected_version=job.version, now=clock())


def test_a_released_lease_is_taken_at_once(store: Store) -> None:
    clock = Clock()
    first = StoreLease(store, holder="first", ttl_s=10.0, clock=clock)
    second = StoreLease(store, holder="second", ttl_s=10.0, clock=clock)
    assert first.try_acquire()
    first.release()
    assert not first.held
    assert second.try_acquire()
    first.release()  # nothing held: nothing to do


def test_a_live_holder_keeps_the_lease_through_a_cycle_longer_than_it(store: Store) -> None:
    """Renewal does not wait for the next cycle: a leader busy for several lease periods
    keeps leading (two live reconcilers once took the lease from each other in turn, each
    fenced before it could commit)."""
    first = StoreLease(store, holder="first", ttl_s=0.3)
    second = StoreLease(store, holder="second", ttl_s=0.3)
    try:
        assert first.try_acquire()
        deadline = time.monotonic() + 1.2  # four lease periods without a call from the cycle
        while time.monotonic() < deadline:
            assert not second.try_acquire()
            assert first.held
            time.sleep(0.05)
        assert first.may_act()
    finally:
        first.release()
    assert second.try_acquire()
    second.release()


def test_holders_are_named_uniquely_per_process_and_object(store: Store) -> None:
    assert StoreLease(store).holder != StoreLease(store).holder


def test_the_flock_needs_no_fencing(tmp_path: Path) -> None:
    lock = LeaderLock(tmp_path / "reconciler.lock")
    other = LeaderLock(tmp_path / "reconciler.lock")
    assert lock.try_acquire()
    assert not other.try_acquire()
    with lock.fenced():
        pass
    lock.release()
    assert other.try_acquire()
    other.release()


def test_sqlite_and_memory_stores_lead_by_flock(store: Store, tmp_path: Path) -> None:
    assert isinstance(leadership_for(store, tmp_path / "reconciler.lock"), LeaderLock)
