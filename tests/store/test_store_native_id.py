"""The store contract for ``attempt_by_native_id`` (lookups by Slurm's job id), on every
store."""

from __future__ import annotations

from tests.store.test_store_contract import create, new_job, store

from hpcbridge.store import JobId, Store, new_token

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
