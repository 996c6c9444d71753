"""The store contract for ``attempt_by_native_id`` (lookups by Slurm's job id), on every
store."""

from __future__ import annotations

import pytest
from tests.store.test_store_contract import create, new_job, store

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.errors import NotFoundError
from hpcbridge.store import JobId, Store, new_token, task_job_id

__all__ = ["store"]  # the contract suite's fixture: memory, SQLite and PostgreSQL


def test_the_newest_attempt_with_that_native_id(store: Store) -> None:
    create(store, new_job("ja"), new_job("jb"), new_job("jc"))
    for job_id, now, native_id in (("ja", 100.0, "17"), ("jb", 200.0, "17"), ("jc", 150.0, "9_3")):
        attempt = store.create_attempt(
            JobId(job_id), backend="slurm", token=new_token(), now=now, details={}
        )
        store.update_attempt(attempt.job_id, attempt.number, native_id=native_id)

    found = store.attempt_by_native_id("17")
    assert found is not None and (found.job_id, found.native_id) == ("jb", "17")
    task = store.attempt_by_native_id("9_3")
    assert task is not None and task.job_id == "jc"
    assert store.attempt_by_native_id("9") is None
    assert store.attempt_by_native_id("404") is None


def test_a_task_of_a_native_array(store: Store) -> None:
    """``array_task_attempt("9")`` finds the newest attempt known as ``9_<index>``."""
    create(store, new_job("ja"), new_job("jb"), new_job("jc"), new_job("jd"))
    for job_id, now, native_id in (
        ("ja", 100.0, "9_0"),
        ("jb", 200.0, "9_1"),
        ("jc", 300.0, "99_1"),
        ("jd", 400.0, "9"),
    ):
        attempt = store.create_attempt(
            JobId(job_id), backend="slurm", token=new_token(), now=now, details={}
        )
        store.update_attempt(attempt.job_id, attempt.number, native_id=native_id)

    found = store.array_task_attempt("9")
    assert found is not None and (found.job_id, found.native_id) == ("jb", "9_1")
    assert store.array_task_attempt("99") is not None
    for absent in ("404", "9_1", "%", "_"):
        assert store.array_task_attempt(absent) is None, absent


def test_the_client_finds_a_whole_array_by_the_scheduler_id(
    store: Store, settings: Settings
) -> None:
    """``Client.get("9")`` of a native array (tasks ``9_0``, ``9_1``) is the array's parent;
    ``9_1`` stays its task."""
    parent = JobId("jp")
    create(
        store,
        new_job(parent, task_count=2),
        *(new_job(task_job_id(parent, i), parent_id=parent, task_index=i) for i in range(2)),
    )
    for index in range(2):
        attempt = store.create_attempt(
            task_job_id(parent, index), backend="slurm", token=new_token(), now=100.0, details={}
        )
        store.update_attempt(attempt.job_id, attempt.number, native_id=f"9_{index}")
    client = Client(settings, store=store)
    assert client.get("9").job_id == parent
    assert client.get("9_1").job_id == task_job_id(parent, 1)
    assert [task.job_id for task in client.tasks("9")] == [task_job_id(parent, i) for i in range(2)]
    with pytest.raises(NotFoundError, match="no job has an attempt the scheduler knows as 8"):
        client.get("8")
