"""What SqlStore promises on SQLite and PostgreSQL alike beyond the contract: several
stores (processes) on one database."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, insert, inspect

import hpcbridge.store
from hpcbridge.states import JobState
from hpcbridge.store import JobId, NewJob, SqlStore
from hpcbridge.store._schema import jobs as jobs_t
from hpcbridge.store._schema import metadata


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        yield request.getfixturevalue("postgres_url")
    else:
        yield f"sqlite:///{tmp_path / 'hpcbridge.db'}"


def new_job(job_id: str) -> NewJob:
    return NewJob(
        job_id=JobId(job_id),
        name="n",
        project="p",
        workload_class="batch",
        backend="local",
        spec={"name": "n"},
    )


def alembic_config() -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(hpcbridge.store.__file__).parent / "migrations")
    )
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_processes_starting_together_on_an_empty_database_migrate_once(sql_url: str) -> None:
    """Each process opens the store at the same moment (after its imports); all succeed
    and the schema ends at the head once."""
    opener = textwrap.dedent(
        """
        import sys
        from hpcbridge.store import SqlStore
        print("ready", flush=True)
        sys.stdin.readline()
        SqlStore(sys.argv[1]).close()
        print("opened", flush=True)
        """
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", opener, sql_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for child, (out, err) in zip(children, results, strict=True):
        assert (child.returncode, out) == (0, "opened\n"), err
    store = SqlStore(sql_url)
    try:
        with store.engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert [v for (v,) in versions] == [head_revision()]
        inspector = inspect(store.engine)
        for table in metadata.sorted_tables:
            on_disk = {column["name"] for column in inspector.get_columns(table.name)}
            assert on_disk == set(table.columns.keys()), table.name
    finally:
        store.close()


def test_a_store_never_serves_a_record_another_store_replaced(sql_url: str) -> None:
    """A's savepoint moved j1 to version 2 and was undone; B then wrote its own version 2.
    A must read B's record, not the undone one it had seen (same version number)."""
    a, b = SqlStore(sql_url), SqlStore(sql_url)
    try:
        [job] = a.create_jobs([new_job("j1")], now=1.0, actor="t")
        with a.batch(), pytest.raises(RuntimeError), a.savepoint():
            a.transition(job.job_id, JobState.QUEUED, expected_version=1, now=2.0)
            raise RuntimeError("undo")
        b.update_job(job.job_id, expected_version=1, now=3.0, priority=5)
        [seen] = a.active_jobs()
        assert (seen.state, seen.version, seen.priority) == (JobState.ACCEPTED, 2, 5)
    finally:
        a.close()
        b.close()


def test_a_database_of_the_first_revision_is_upgraded_on_open(sql_url: str) -> None:
    """A store made before leases existed gets the leases table; its jobs stay."""
    engine = create_engine(sql_url)
    try:
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.execute(insert(jobs_t), [_first_revision_job("old")])
        assert "leases" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    store = SqlStore(sql_url)
    try:
        assert store.get_job("old").state is JobState.ACCEPTED
        assert store.acquire_lease("reconciler", "me", now=1.0, ttl_s=1.0) is not None
        with store.engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert [v for (v,) in versions] == [head_revision()]
    finally:
        store.close()


def _first_revision_job(job_id: str) -> dict[str, object]:
    return {
        "job_id": job_id,
        "task_params": {},
        "task_count": 0,
        "name": "n",
        "project": "p",
        "workload_class": "batch",
        "tags": {},
        "backend": "local",
        "spec": {},
        "priority": 0,
        "state": "accepted",
        "version": 1,
        "attempt_count": 0,
        "cancel_requested": False,
        "created_at": 1.0,
        "updated_at": 1.0,
    }
