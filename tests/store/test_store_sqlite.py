"""What only the SQLite store promises: durability settings, migrations, several processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

import hpcbridge.store
from hpcbridge.errors import NotFoundError
from hpcbridge.states import JobState
from hpcbridge.store import JobId, NewJob, SqlStore, migrate
from hpcbridge.store._schema import metadata


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'hpcbridge.db'}"


@pytest.fixture
def sql_store(db_url: str) -> Iterator[SqlStore]:
    store = SqlStore(db_url)
    yield store
    store.close()


def new_job(job_id: str) -> NewJob:
    return NewJob(
        job_id=JobId(job_id),
        name="n",
        project="p",
        workload_class="batch",
        backend="local",
        spec={"name": "n"},
    )


def head_revision() -> str:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(hpcbridge.store.__file__).parent / "migrations")
    )
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_wal_and_full_synchronous_on_every_connection(sql_store: SqlStore) -> None:
    with sql_store.engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 30000,
    }


def test_wal_mode_is_recorded_in_the_file(sql_store: SqlStore, db_url: str) -> None:
    path = db_url.removeprefix("sqlite:///")
    plain = sqlite3.connect(path)
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        plain.close()


def test_schema_is_at_the_alembic_head(sql_store: SqlStore) -> None:
    with sql_store.engine.connect() as conn:
        versions = [
            row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")
        ]
    assert versions == [head_revision()]


def test_migrations_create_the_tables_the_code_uses(sql_store: SqlStore) -> None:
    inspector = inspect(sql_store.engine)
    for table in metadata.sorted_tables:
        on_disk = {column["name"] for column in inspector.get_columns(table.name)}
        assert on_disk == set(table.columns.keys()), table.name


def test_reopening_an_existing_database(db_url: str) -> None:
    first = SqlStore(db_url)
    first.create_jobs([new_job("j1")], now=1.0, actor="t")
    first.close()
    second = SqlStore(db_url)
    try:
        assert second.get_job("j1").state is JobState.ACCEPTED
        migrate(second.engine)  # already at head: a no-op
        with second.engine.connect() as conn:
            count = conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar()
        assert count == 1
    finally:
        second.close()


def test_two_stores_on_one_file_see_each_others_commits(db_url: str) -> None:
    a, b = SqlStore(db_url), SqlStore(db_url)
    try:
        a.create_jobs([new_job("from-a")], now=1.0, actor="a")
        assert b.get_job("from-a").job_id == "from-a"
        b.create_jobs([new_job("from-b")], now=2.0, actor="b")
        job = a.get_job("from-b")
        a.transition(job.job_id, JobState.QUEUED, expected_version=job.version, now=3.0)
        assert b.get_job("from-b").state is JobState.QUEUED
        with a.batch():
            a.create_jobs([new_job("pending")], now=4.0, actor="a")
            with pytest.raises(NotFoundError):
                b.get_job("pending")  # not committed yet
        assert b.get_job("pending").job_id == "pending"
        assert [e.seq for e in a.all_events()] == [e.seq for e in b.all_events()]
    finally:
        a.close()
        b.close()


def test_a_second_process_writes_while_this_one_reads_and_writes(db_url: str) -> None:
    count = 25
    writer = textwrap.dedent(
        """
        import sys
        from hpcbridge.store import JobId, NewJob, SqlStore
        store = SqlStore(sys.argv[1])
        for i in range(int(sys.argv[2])):
            store.create_jobs([NewJob(job_id=JobId(f"child-{i}"), name="c", project="p",
                                      workload_class="batch", backend="local", spec={})],
                              now=float(i), actor="child")
        store.close()
        """
    )
    store = SqlStore(db_url)
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", writer, db_url, str(count)], stderr=subprocess.PIPE, text=True
        )
        seen: list[int] = []  # child jobs visible at each read
        mine = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if mine < count:
                store.create_jobs([new_job(f"parent-{mine}")], now=float(mine), actor="parent")
                mine += 1
            children = [j for j in store.list_jobs() if j.job_id.startswith("child-")]
            seen.append(len(children))
            if child.poll() is not None and mine == count:
                break
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == 0, stderr
        assert seen == sorted(seen)  # commits become visible in order, never vanish
        ids = {j.job_id for j in store.list_jobs()}
        assert ids == {f"child-{i}" for i in range(count)} | {f"parent-{i}" for i in range(count)}
        assert len({e.seq for e in store.all_events()}) == 2 * count
    finally:
        store.close()
