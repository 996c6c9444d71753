"""The SQL engine: connection settings per dialect, migrations, and the hot UPDATE path."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Connection, Engine, Table, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError
from sqlalchemy.sql.dml import Insert, Update

from hpcbridge.errors import ConfigError
from hpcbridge.store._filesystems import refuse_network_filesystem

_MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory lock key of migrations (the same in every process).
MIGRATION_LOCK_KEY = 0x6870_6362_6D69_6772  # "hpcbmigr"


def update_row(
    conn: Connection,
    statement: Update,
    table: Table,
    values: dict[str, Any],
    where: dict[str, Any],
) -> int:
    """One row's hot UPDATE (``statement`` binds ``where`` as ``_<column>``); the number
    of rows it changed.

    On SQLite the same UPDATE goes straight to the driver, in the same transaction: these
    are most of the statements of a cycle, and SQLAlchemy's per-statement work costs
    several times what SQLite takes to run them. Values are bound as SQLAlchemy would
    (JSON columns serialized with ``json.dumps``) and driver errors come out wrapped as
    SQLAlchemy's, as from ``conn.execute``.
    """
    if conn.dialect.name != "sqlite":
        params = {**values, **{f"_{k}": v for k, v in where.items()}}
        return int(conn.execute(statement, params).rowcount)
    sql = _update_sql(table, tuple(values), tuple(where))
    return _on_driver(conn, sql, [*_bound(table, values), *where.values()])


def insert_row(conn: Connection, statement: Insert, table: Table, values: dict[str, Any]) -> None:
    """One row's hot INSERT (``statement`` is ``insert(table)``), straight to the driver
    on SQLite as in ``update_row``: one for every attempt the reconciler prepares."""
    if conn.dialect.name != "sqlite":
        conn.execute(statement, values)
        return
    _on_driver(conn, _insert_sql(table, tuple(values)), _bound(table, values))


def run_plain(conn: Connection, sql: str) -> None:
    """A statement without parameters or results (``SAVEPOINT``, ``RELEASE``), straight
    to the driver on SQLite as in ``update_row``: two for every job a cycle changes."""
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql(sql)
        return
    _on_driver(conn, sql, [])


def _bound(table: Table, values: dict[str, Any]) -> list[Any]:
    return [
        json.dumps(value) if isinstance(table.c[name].type, JSON) else value
        for name, value in values.items()
    ]


def _on_driver(conn: Connection, sql: str, bound: list[Any]) -> int:
    """``sql`` run on the connection's SQLite cursor; driver errors wrapped as SQLAlchemy's."""
    dbapi = conn.dialect.loaded_dbapi
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, bound)
        return int(cursor.rowcount)
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, bound, exc, dbapi.Error) from exc
    finally:
        cursor.close()


@functools.cache
def _update_sql(table: Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
    assigned = ", ".join(f'"{table.c[name].name}" = ?' for name in columns)
    matched = " AND ".join(f'"{table.c[name].name}" = ?' for name in keys)
    return f'UPDATE "{table.name}" SET {assigned} WHERE {matched}'


@functools.cache
def _insert_sql(table: Table, columns: tuple[str, ...]) -> str:
    named = ", ".join(f'"{table.c[name].name}"' for name in columns)
    return f'INSERT INTO "{table.name}" ({named}) VALUES ({", ".join("?" * len(columns))})'


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        try:
            return create_engine(url, pool_pre_ping=True)
        except (ModuleNotFoundError, NoSuchModuleError) as exc:
            raise ConfigError(
                f"cannot open the database {parsed!r}: its driver is not installed ({exc})",
                hint="for PostgreSQL install the postgres extra, pip install "
                "'hpcbridge[postgres]', and use a postgresql+psycopg:// URL",
            ) from exc
    if parsed.database and parsed.database != ":memory:":
        refuse_network_filesystem(Path(parsed.database))
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver so that SQLAlchemy's BEGIN below is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged submission survives a power cut, not only a process crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so two processes never deadlock on upgrade.
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when already there).

    Several processes may start at once on an empty database: the check and the upgrade
    run in one transaction that takes a lock first (SQLite's write lock, by BEGIN
    IMMEDIATE; on PostgreSQL, whose DDL is transactional, an advisory transaction lock), so
    one of them migrates and the others then find the schema at the head.
    """
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect().execution_options(immediate=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
        config.attributes["connection"] = conn  # Alembic joins this transaction
        command.upgrade(config, "head")
