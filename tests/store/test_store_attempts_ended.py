"""The store contract for ``attempts_ended`` (chargeback's one read), on every store."""

from __future__ import annotations

from tests.store.test_store_contract import create, new_job, store

from hpcbridge.states import AttemptState
from hpcbridge.store import JobId, Store, new_token

__all__ = ["store"]  # the contract suite's fixture: memory, SQLite and PostgreSQL


def test_attempts_ended_in_a_window_come_with_their_jobs_in_end_order(store: Store) -> None:
    create(store, new_job("ja", project="p1"), new_job("jb", project="p2"))
    ends = {("ja", 1): 150.0, ("ja", 2): 300.0, ("jb", 1): 250.0}
    for (job_id, _number), ended in sorted(ends.items()):
        attempt = store.create_attempt(
            JobId(job_id), backend="local", token=new_token(), now=100.0, details={"cost": {}}
        )
        state = AttemptState.FAILED if ended == 150.0 else AttemptState.SUCCEEDED
        store.update_attempt(attempt.job_id, attempt.number, state=state, ended_at=ended)
    store.create_attempt(JobId("jb"), backend="local", token=new_token(), now=100.0, details={})

    found = store.attempts_ended(150.0, 300.0)
    assert [(j.job_id, a.number, a.ended_at) for j, a in found] == [
        ("ja", 1, 150.0),
        ("jb", 1, 250.0),
    ]
    assert [j.project for j, _ in found] == ["p1", "p2"]
    assert found[0][1].state is AttemptState.FAILED and found[0][1].details == {"cost": {}}
    assert store.attempts_ended(301.0, 400.0) == []
