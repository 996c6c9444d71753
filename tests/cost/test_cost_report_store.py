"""``report`` over a store (charges summed by the store, the rest priced here) says the
same as ``summarize`` over every attempt read one by one."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbridge.cost import CardBook, load_cards, report, summarize
from hpcbridge.states import AttemptState
from hpcbridge.store import JobId, MemoryStore, NewJob, SqlStore, Store, new_token

CARD = (
    "cluster: local\nversion: v1\neffective_from: 1970-01-02\ncurrency: EUR\n"
    "partitions: {'*': {core_hour: 3.6}}\n"
)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return SqlStore(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def book(tmp_path: Path) -> CardBook:
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "local.yaml").write_text(CARD)
    return load_cards(tmp_path / "cards")


def _job(job_id: str, project: str, team: str) -> NewJob:
    spec = {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": "j", "command": ["x"]}
    return NewJob(
        job_id=JobId(job_id),
        name="j",
        project=project,
        workload_class="batch",
        backend="local",
        spec=spec,
        tags={"team": team},
    )


def _attempt(
    store: Store, job_id: str, started: float, run_s: float, ok: bool, **cost: object
) -> None:
    details: dict[str, object] = {"cpus": 2}
    if cost:
        details["cost"] = cost
    attempt = store.create_attempt(
        JobId(job_id), backend="local", token=new_token(), now=started - 1, details=details
    )
    store.update_attempt(
        attempt.job_id,
        attempt.number,
        state=AttemptState.SUCCEEDED if ok else AttemptState.FAILED,
        started_at=started,
        ended_at=started + run_s,
    )


@pytest.mark.parametrize("by", ["project", "team"])
def test_report_over_the_store_equals_summarize(store: Store, book: CardBook, by: str) -> None:
    store.create_jobs([_job("a", "p1", "t1"), _job("b", "p2", "t1")], now=90_000.0, actor="t")
    recorded = {"currency": "EUR", "card": "local/v1", "core_hours": 1.0, "gpu_hours": 0.0}
    _attempt(store, "a", 100_000.0, 1800, False, amount=3.6, waste=True, **recorded)
    _attempt(store, "a", 102_000.0, 1800, True, amount=3.6, waste=False, **recorded)
    _attempt(store, "b", 103_000.0, 3600, True)  # not recorded: priced now, 2 cores x 1 h

    found = report(store, book, by=by, since=0.0, until=200_000.0)
    expected = summarize(
        store.attempts_ended(0.0, 200_000.0), book, by=by, since=0.0, until=200_000.0
    )
    assert found.as_dict() == expected.as_dict()
    assert found.total.spend == pytest.approx(3.6 * 2 + 7.2)
    assert found.total.waste == pytest.approx(3.6) and found.total.results == 2
    assert found.cards == ("local/v1",) and found.currency == "EUR"
