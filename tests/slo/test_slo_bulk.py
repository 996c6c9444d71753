"""Reading a whole history at once: the bulk paths give what the one-job-at-a-time ones do,
and the cyclic GC paused meanwhile is always switched back on."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbridge.slo import FinishedJobFeed, build_samples, build_samples_by_slo, default_slos
from hpcbridge.slo._gc import paused_gc
from hpcbridge.store import Job, JobFilter, SqlStore
from tests.telemetry._sim import Sim

_OUTCOMES = (
    ["succeeded"],
    ["node_failure", "succeeded"],
    ["preempted", "preempted"],
    ["app_error"],
    ["cancelled"],
)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield Sim(store)
    store.close()


@pytest.fixture
def gc_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def _history(sim: Sim, jobs: int) -> None:
    classes = ("critical", "priority", "batch")
    for index in range(jobs):
        sim.job(
            _OUTCOMES[index % len(_OUTCOMES)],
            workload_class=classes[index % len(classes)],
            queue_s=600.0 * (index % 8),
            checkpoints_s=(5.0,) if index % 2 else (),
        )


def test_preloaded_labels_give_the_same_jobs_as_lookups_one_by_one(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    _history(sim, 60)
    listed: list[int] = []
    list_jobs = sim.store.list_jobs

    def counted(query: JobFilter | None = None) -> list[Job]:
        listed.append(1)
        return list_jobs(query)

    monkeypatch.setattr(sim.store, "list_jobs", counted)
    # A full first chunk naming more than 32 new jobs preloads every job's labels.
    preloaded = FinishedJobFeed(sim.store, chunk_size=400).poll()
    assert listed == [1]
    one_by_one = FinishedJobFeed(sim.store, chunk_size=100_000).poll()
    assert listed == [1]
    assert len(preloaded) == 60
    assert preloaded == one_by_one


def test_samples_by_slo_match_each_slo_alone(sim: Sim) -> None:
    _history(sim, 30)
    jobs = FinishedJobFeed(sim.store).poll()
    slos = default_slos()
    together = build_samples_by_slo(slos, iter(jobs))
    for slo in slos:
        assert together[slo.name] == build_samples(slo, jobs), slo.name
    assert any(together.values())


@pytest.mark.usefixtures("gc_enabled")
def test_paused_gc_nests_and_restores() -> None:
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


@pytest.mark.usefixtures("gc_enabled")
def test_paused_gc_restores_after_an_error() -> None:
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()


@pytest.mark.usefixtures("gc_enabled")
def test_paused_gc_leaves_a_disabled_gc_disabled() -> None:
    gc.disable()
    with paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


@pytest.mark.usefixtures("gc_enabled")
def test_paused_gc_overlapping_threads_enable_once_at_the_end() -> None:
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with paused_gc():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(5)
    with paused_gc():
        pass
    assert not gc.isenabled()  # the other thread is still inside
    release.set()
    thread.join(5)
    assert gc.isenabled()
