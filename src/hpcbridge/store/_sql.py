"""SQLAlchemy store: SQLite by default (WAL, synchronous=FULL), PostgreSQL for scale-out.

PostgreSQL specifics, each in one place: migrations run under an advisory lock
(``migrate``); event rows are inserted under another, so that they commit in the order of
their sequence numbers (``_insert_events``); a write that may fail inside a batch runs in a
savepoint, since one error aborts a PostgreSQL transaction; the lease row is read ``FOR
SHARE`` by fenced writes, so a takeover waits for them (``_check_fence``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Update

from hpcbridge.errors import ConfigError, NotFoundError, StoreError
from hpcbridge.security import AuditEntry, AuditFilter, AuditRecord, TokenRecord
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import _sql_security as sql_security
from hpcbridge.store._cost_sql import grouped_totals, unrecorded_filter
from hpcbridge.store._cost_totals import CostTotals
from hpcbridge.store._engine import insert_row, make_engine, migrate, run_plain, update_row
from hpcbridge.store._protocol import (
    ACTIVE_ATTEMPT_STATES,
    iterate_chunks,
    transition_event_data,
)
from hpcbridge.store._records import Attempt, Event, Job, JobFilter, JobId, Lease, NewJob
from hpcbridge.store._rules import (
    JOB_MUTABLE_FIELDS,
    attempt_fields,
    check_fence,
    check_fields,
    check_transition,
    check_version,
    free_lease,
    lost_lease,
    take_lease,
    transition_fields,
)
from hpcbridge.store._schema import attempts as attempts_t
from hpcbridge.store._schema import events as events_t
from hpcbridge.store._schema import jobs as jobs_t
from hpcbridge.store._schema import leases as leases_t

# Hot statements built once: SQLAlchemy then reuses their cache keys and compiled forms.
_UPDATE_JOB = update(jobs_t).where(
    jobs_t.c.job_id == bindparam("_job_id"), jobs_t.c.version == bindparam("_version")
)
_UPDATE_ATTEMPT = update(attempts_t).where(
    attempts_t.c.job_id == bindparam("_job_id"), attempts_t.c.number == bindparam("_number")
)
_INSERT_EVENT = insert(events_t)
_INSERT_ATTEMPT = insert(attempts_t)
_ATTEMPT_NUMBERS = select(attempts_t.c.number).where(attempts_t.c.job_id == bindparam("_job_id"))
_NON_TERMINAL = [s.value for s in JobState if not s.terminal]
_ACTIVE_VERSIONS = (
    select(jobs_t.c.job_id, jobs_t.c.version)
    .where(jobs_t.c.state.in_(_NON_TERMINAL))
    .order_by(jobs_t.c.created_at, jobs_t.c.job_id)
)
_ATTEMPT_JSON_COLUMNS = ("nodes", "details")
# JSON columns as the text stored: comparing text is cheaper than decoding it every cycle.
_ACTIVE_ATTEMPT_ROWS = (
    select(
        *(
            type_coerce(column, Text).label(column.name)
            if column.name in _ATTEMPT_JSON_COLUMNS
            else column
            for column in attempts_t.c
        )
    )
    .where(attempts_t.c.state.in_([s.value for s in ACTIVE_ATTEMPT_STATES]))
    .order_by(attempts_t.c.job_id, attempts_t.c.number)
)
_JOBS_BY_ID = select(jobs_t).where(jobs_t.c.job_id.in_(bindparam("_ids", expanding=True)))
_LEASE = select(leases_t).where(leases_t.c.name == bindparam("_name"))
# PostgreSQL advisory lock key of event inserts (the same in every process).
EVENTS_LOCK_KEY = 0x6870_6362_6576_6E74  # "hpcbevnt"


class SqlStore:
    def __init__(self, url: str) -> None:
        self._url = make_url(url)
        self._engine = make_engine(url)
        # The batch connection, its pending events and the fencing lease belong to one
        # thread.
        self._local = threading.local()
        # Last job record seen per id. A write whose expected version matches it skips the
        # read: the versioned UPDATE still refuses if someone else changed the row.
        self._known: dict[str, Job] = {}
        self._known_attempts: dict[tuple[str, int], Attempt] = {}
        self._active_rows: dict[tuple[str, int], tuple[Row[Any], Attempt]] = {}
        try:
            migrate(self._engine)
        except OperationalError as exc:
            self._engine.dispose()
            raise ConfigError(f"cannot open the database {self._url!r}: {exc.orig}") from exc

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    @property
    def _conn(self) -> Connection | None:
        conn: Connection | None = getattr(self._local, "conn", None)
        return conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        if self._conn is not None:
            yield
            return
        with self._write() as conn:
            self._local.conn = conn
            self._local.events = []
            try:
                yield
                if self._local.events:  # append-only rows: one executemany at the end
                    _insert_events(conn, self._local.events)
            finally:
                self._local.conn = None
                self._local.events = None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        conn = self._conn
        if conn is None:
            with self.batch():
                yield
            return
        events: list[dict[str, Any]] = self._local.events
        buffered = len(events)
        # Plain SQL, not begin_nested(): a savepoint per job is the reconciler's commonest
        # statement, and SQLAlchemy's nested transaction costs about five times as much.
        depth = getattr(self._local, "savepoints", 0)
        name = f"hpcbridge_sp{depth}"
        run_plain(conn, f"SAVEPOINT {name}")
        self._local.savepoints = depth + 1
        try:
            yield
        except BaseException:
            del events[buffered:]  # buffered rows of the undone writes
            self._forget()  # what the undone writes taught the caches is not true
            run_plain(conn, f"ROLLBACK TO SAVEPOINT {name}")
            run_plain(conn, f"RELEASE SAVEPOINT {name}")
            raise
        else:
            run_plain(conn, f"RELEASE SAVEPOINT {name}")
        finally:
            self._local.savepoints = depth

    def _append_events(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        pending: list[dict[str, Any]] | None = getattr(self._local, "events", None)
        if pending is not None:
            pending.extend(rows)
        else:
            _insert_events(conn, rows)

    @contextmanager
    def _write(self, *, fenced: bool = True) -> Iterator[Connection]:
        """The batch's connection, or a new transaction that commits on return. A new
        transaction of a fenced thread first checks the lease (``fenced()``)."""
        if self._conn is not None:
            yield self._conn
            return
        try:
            with self._engine.connect().execution_options(immediate=True) as conn, conn.begin():
                if fenced:
                    self._check_fence(conn)
                yield conn
        except BaseException:
            self._forget()  # what the rolled-back writes taught the cache is not true
            raise

    def _forget(self) -> None:
        self._known.clear()
        self._known_attempts.clear()
        self._active_rows = {}

    def _remember(self, job: Job) -> Job:
        if job.state.terminal:
            self._known.pop(job.job_id, None)
        else:
            self._known[job.job_id] = job
        return job

    def _remember_attempt(self, attempt: Attempt) -> Attempt:
        self._known_attempts[(attempt.job_id, attempt.number)] = attempt
        return attempt

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._conn is not None:
            yield self._conn
            return
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def create_jobs(self, jobs: Sequence[NewJob], *, now: float, actor: str) -> list[Job]:
        rows = [_new_job_row(new, now) for new in jobs]
        try:
            with self._write() as conn:
                # In a batch, a refused row must not take the batch down (PostgreSQL aborts
                # the transaction) nor leave the chunks before it behind (SQLite).
                with conn.begin_nested() if self._conn is not None else nullcontext():
                    for start in range(0, len(rows), 500):
                        conn.execute(insert(jobs_t), rows[start : start + 500])
                self._append_events(
                    conn,
                    [
                        _event_row(
                            row["job_id"], "accepted", now, to_state=JobState.ACCEPTED, actor=actor
                        )
                        for row in rows
                    ],
                )
        except IntegrityError as exc:
            raise StoreError(f"cannot create jobs: {exc.orig}") from exc
        # Known from here on: their first events and transitions need not look them up.
        return [self._remember(_job(row)) for row in rows]

    def get_job(self, job_id: str) -> Job:
        with self._read() as conn:
            row = conn.execute(select(jobs_t).where(jobs_t.c.job_id == job_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no job {job_id!r}", hint="see 'hpcbridge list'")
        return self._remember(_job(row))

    def find_by_idempotency_key(self, key: str) -> Job | None:
        with self._read() as conn:
            row = (
                conn.execute(select(jobs_t).where(jobs_t.c.idempotency_key == key))
                .mappings()
                .first()
            )
        return None if row is None else _job(row)

    def list_jobs(self, query: JobFilter | None = None) -> list[Job]:
        query = query or JobFilter()
        stmt = _filtered(select(jobs_t), query).order_by(jobs_t.c.created_at, jobs_t.c.job_id)
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        return self._jobs(stmt)

    def newest_jobs(self, query: JobFilter) -> list[Job]:
        stmt = _filtered(select(jobs_t), query).order_by(
            jobs_t.c.created_at.desc(), jobs_t.c.job_id.desc()
        )
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        return self._jobs(stmt)

    def active_jobs(self) -> list[Job]:
        """Every unfinished job. Only rows whose version changed since this store last saw
        them are read in full: most jobs, most cycles, are just waiting."""
        with self._read() as conn:
            current = conn.execute(_ACTIVE_VERSIONS).all()
            found: dict[str, Job] = {}
            stale: list[str] = []
            for job_id, version in current:
                known = self._known.get(job_id)
                if known is not None and known.version == version:
                    found[job_id] = known
                else:
                    stale.append(job_id)
            for chunk in iterate_chunks(stale, 500):
                rows = conn.execute(_JOBS_BY_ID, {"_ids": list(chunk)}).mappings()
                found.update((job.job_id, job) for job in map(_job, rows))
        return [self._remember(found[job_id]) for job_id, _ in current if job_id in found]

    def count_children(self, parent_id: JobId) -> dict[JobState, int]:
        stmt = (
            select(jobs_t.c.state, func.count())
            .where(jobs_t.c.parent_id == parent_id)
            .group_by(jobs_t.c.state)
        )
        with self._read() as conn:
            return {JobState(state): count for state, count in conn.execute(stmt).all()}

    def _jobs(self, stmt: Select[Any]) -> list[Job]:
        with self._read() as conn:
            return [_job(row) for row in conn.execute(stmt).mappings()]

    def transition(
        self,
        job_id: JobId,
        target: JobState,
        *,
        expected_version: int,
        now: float,
        reason: str | None = None,
        actor: str = "system",
        attempt: int | None = None,
        data: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Job:
        with self._write() as conn:
            job = self._current(conn, job_id, expected_version)
            check_transition(job, target, expected_version)
            changes = transition_fields(job, target, now, fields)
            updated = dataclasses.replace(
                job, state=target, version=job.version + 1, updated_at=now, reason=reason, **changes
            )
            self._save_versioned(
                conn, job, updated, {"state": target.value, "reason": reason, **changes}
            )
            self._append_events(
                conn,
                [
                    _event_row(
                        job_id,
                        "transition",
                        now,
                        attempt=attempt,
                        from_state=job.state,
                        to_state=target,
                        reason=reason,
                        actor=actor,
                        data=transition_event_data(fields, data),
                    )
                ],
            )
            return self._remember(updated)

    def update_job(self, job_id: JobId, *, expected_version: int, now: float, **fields: Any) -> Job:
        check_fields(fields, JOB_MUTABLE_FIELDS, "job")
        with self._write() as conn:
            job = self._current(conn, job_id, expected_version)
            check_version(job, expected_version)
            updated = dataclasses.replace(job, version=job.version + 1, updated_at=now, **fields)
            self._save_versioned(conn, job, updated, dict(fields))
            return self._remember(updated)

    def _current(self, conn: Connection, job_id: str, expected_version: int) -> Job:
        known = self._known.get(job_id)
        if known is not None and known.version == expected_version:
            return known
        return self._locked_job(conn, job_id)

    def _locked_job(self, conn: Connection, job_id: str) -> Job:
        # FOR NO KEY UPDATE (nothing on SQLite): the lock an UPDATE of the row takes
        # anyway. Unlike FOR UPDATE it leaves the foreign-key checks of other transactions'
        # event and attempt rows unblocked, so a transaction that holds the events lock
        # never waits for one that holds a job.
        stmt = select(jobs_t).where(jobs_t.c.job_id == job_id).with_for_update(key_share=True)
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFoundError(f"no job {job_id!r}", hint="see 'hpcbridge list'")
        return _job(row)

    @staticmethod
    def _save_versioned(conn: Connection, job: Job, updated: Job, values: dict[str, Any]) -> None:
        values = {k: _column_value(v) for k, v in values.items()}
        values = {"version": updated.version, "updated_at": updated.updated_at, **values}
        where = {"job_id": job.job_id, "version": job.version}
        if update_row(conn, _UPDATE_JOB, jobs_t, values, where) != 1:
            check_version(updated, job.version)  # raises ConflictError with a clear message

    def create_attempt(
        self, job_id: JobId, *, backend: str, token: str, now: float, details: dict[str, Any]
    ) -> Attempt:
        def numbered(number: int) -> Attempt:
            return Attempt(
                job_id=job_id,
                number=number,
                token=token,
                backend=backend,
                state=AttemptState.PREPARED,
                created_at=now,
                details=dict(details),
            )

        with self._write() as conn:
            known = self._known.get(job_id)
            if known is None:
                self._locked_job(conn, job_id)  # a clear NotFoundError for unknown jobs
            else:
                # The job row counts its attempts: trust the cached count first (one
                # statement instead of two for each of a sweep's 10,000 tasks).
                attempt = numbered(known.attempt_count + 1)
                with contextlib.suppress(IntegrityError):  # stale: ask the table below
                    self._insert_attempt(conn, attempt)
                    return self._remember_attempt(attempt)
            numbers = conn.execute(_ATTEMPT_NUMBERS, {"_job_id": job_id}).scalars().all()
            attempt = numbered(max(numbers, default=0) + 1)
            try:
                self._insert_attempt(conn, attempt)
            except IntegrityError as exc:
                raise StoreError(f"job {job_id}: cannot record attempt: {exc.orig}") from exc
            return self._remember_attempt(attempt)

    @staticmethod
    def _insert_attempt(conn: Connection, attempt: Attempt) -> None:
        # PostgreSQL aborts a transaction on any error, so guard with a savepoint;
        # SQLite undoes just the failed statement.
        with conn.begin_nested() if conn.dialect.name != "sqlite" else nullcontext():
            insert_row(conn, _INSERT_ATTEMPT, attempts_t, _attempt_row(attempt))

    def update_attempt(self, job_id: JobId, number: int, **fields: Any) -> Attempt:
        fields = attempt_fields(fields)
        with self._write() as conn:
            values = {k: list(v) if k == "nodes" else _column_value(v) for k, v in fields.items()}
            where = {"job_id": job_id, "number": number}
            if update_row(conn, _UPDATE_ATTEMPT, attempts_t, values, where) != 1:
                raise NotFoundError(f"job {job_id} has no attempt {number}")
            known = self._known_attempts.get((job_id, number))
            if known is not None:
                return self._remember_attempt(dataclasses.replace(known, **fields))
            row = (
                conn.execute(
                    select(attempts_t).where(
                        attempts_t.c.job_id == job_id, attempts_t.c.number == number
                    )
                )
                .mappings()
                .one()
            )
            return self._remember_attempt(_attempt(row))

    def attempts(self, job_id: JobId) -> list[Attempt]:
        with self._read() as conn:
            rows = conn.execute(
                select(attempts_t)
                .where(attempts_t.c.job_id == job_id)
                .order_by(attempts_t.c.number)
            ).mappings()
            return [_attempt(row) for row in rows]

    def attempt_by_native_id(self, native_id: str) -> Attempt | None:
        with self._read() as conn:
            row = (
                conn.execute(
                    select(attempts_t)
                    .where(attempts_t.c.native_id == native_id)
                    .order_by(attempts_t.c.created_at.desc(), attempts_t.c.job_id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return None if row is None else _attempt(row)

    def array_task_attempt(self, array_native_id: str) -> Attempt | None:
        if not array_native_id.isdigit():  # so that LIKE's wildcards cannot appear in it
            return None
        with self._read() as conn:
            rows = (
                conn.execute(
                    select(attempts_t)
                    .where(attempts_t.c.native_id.like(f"{array_native_id}\\_%", escape="\\"))
                    .order_by(attempts_t.c.created_at.desc(), attempts_t.c.job_id.desc())
                )
                .mappings()
                .all()
            )
        tasks = (row for row in rows if row["native_id"].rpartition("_")[2].isdigit())
        row = next(tasks, None)
        return None if row is None else _attempt(row)

    def active_attempts(self) -> list[Attempt]:
        """Attempts not finished yet. Rows read as stored (JSON undecoded): a row equal to
        the one read last time gives back the record decoded then."""
        with self._read() as conn:
            rows = conn.execute(_ACTIVE_ATTEMPT_ROWS).all()
        seen, self._active_rows = self._active_rows, {}
        attempts = []
        for row in rows:
            key = (row.job_id, row.number)
            cached = seen.get(key)
            if cached is not None and cached[0] == row:
                attempt = cached[1]
            else:
                attempt = _attempt(_decoded(row._asdict(), _ATTEMPT_JSON_COLUMNS))
            self._active_rows[key] = (row, attempt)
            attempts.append(self._remember_attempt(attempt))
        return attempts

    def attempts_ended(self, since: float, until: float) -> list[tuple[Job, Attempt]]:
        finished = [AttemptState.SUCCEEDED.value, AttemptState.FAILED.value]
        return self._ended_with_jobs(
            and_(
                attempts_t.c.state.in_(finished),
                attempts_t.c.ended_at >= since,
                attempts_t.c.ended_at < until,
            )
        )

    def cost_totals(self, since: float, until: float, by: str) -> CostTotals:
        with self._read() as conn:
            groups, charged = grouped_totals(conn, since, until, by)
        unrecorded = self._ended_with_jobs(unrecorded_filter(since, until))
        return CostTotals(groups, charged, tuple(unrecorded))

    def _ended_with_jobs(self, where: ColumnElement[bool]) -> list[tuple[Job, Attempt]]:
        stmt = (
            select(attempts_t)
            .where(where)
            .order_by(attempts_t.c.ended_at, attempts_t.c.job_id, attempts_t.c.number)
        )
        jobs: dict[str, Job] = {}
        with self._read() as conn:
            attempts = [_attempt(row) for row in conn.execute(stmt).mappings()]
            ids = sorted({a.job_id for a in attempts})
            for chunk in iterate_chunks(ids, 500):
                rows = conn.execute(_JOBS_BY_ID, {"_ids": list(chunk)}).mappings()
                jobs.update((job.job_id, job) for job in map(_job, rows))
        return [(jobs[a.job_id], a) for a in attempts if a.job_id in jobs]

    def failed_attempts_since(self, since: float) -> list[Attempt]:
        with self._read() as conn:
            rows = conn.execute(
                select(attempts_t).where(
                    attempts_t.c.state == AttemptState.FAILED.value, attempts_t.c.ended_at >= since
                )
            ).mappings()
            return [_attempt(row) for row in rows]

    def add_event(
        self,
        job_id: JobId,
        kind: str,
        *,
        now: float,
        attempt: int | None = None,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
        actor: str = "system",
    ) -> None:
        with self._write() as conn:
            if job_id not in self._known:
                self._locked_job(conn, job_id)  # a clear NotFoundError for unknown jobs
            self._append_events(
                conn,
                [
                    _event_row(
                        job_id, kind, now, attempt=attempt, reason=reason, data=data, actor=actor
                    )
                ],
            )

    def events(self, job_id: JobId, *, after_seq: int = 0) -> list[Event]:
        return self._events(
            select(events_t).where(events_t.c.job_id == job_id, events_t.c.seq > after_seq)
        )

    def finished_jobs(self, *, before: float) -> list[Job]:
        terminal = [s.value for s in JobState if s.terminal]
        stmt = (
            select(jobs_t)
            .where(jobs_t.c.state.in_(terminal), jobs_t.c.finished_at < before)
            .order_by(jobs_t.c.finished_at, jobs_t.c.job_id)
        )
        return self._jobs(stmt)

    def count_events(
        self, job_ids: Sequence[JobId], *, before: float, keep_kinds: frozenset[str]
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._read() as conn:
            for chunk in iterate_chunks(job_ids, 500):
                condition = _prunable(chunk, before, keep_kinds)
                stmt = select(events_t.c.kind, func.count()).where(condition)
                for kind, count in conn.execute(stmt.group_by(events_t.c.kind)).all():
                    counts[kind] = counts.get(kind, 0) + count
        return counts

    def delete_events(
        self, job_ids: Sequence[JobId], *, before: float, keep_kinds: frozenset[str]
    ) -> int:
        deleted = 0
        with self._write() as conn:
            for chunk in iterate_chunks(job_ids, 500):
                condition = _prunable(chunk, before, keep_kinds)
                deleted += conn.execute(delete(events_t).where(condition)).rowcount
        return deleted

    def all_events(self, *, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events after ``after_seq``; safe to poll by the last ``seq`` seen, because event
        rows commit in sequence order (see ``_insert_events``)."""
        stmt = select(events_t).where(events_t.c.seq > after_seq)
        return self._events(stmt if limit is None else stmt.order_by(events_t.c.seq).limit(limit))

    def _events(self, stmt: Select[Any]) -> list[Event]:
        with self._read() as conn:
            return [_event(row) for row in conn.execute(stmt.order_by(events_t.c.seq)).mappings()]

    # -- leases ---------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, *, now: float, ttl_s: float) -> Lease | None:
        with self._write(fenced=False) as conn:
            row = conn.execute(_LEASE, {"_name": name}).mappings().first()
            current = free_lease(name) if row is None else _lease(row)
            if take_lease(current, holder, now=now, ttl_s=ttl_s) is None:
                return None  # held: answer without queueing behind the holder's row lock
            if row is None:
                conn.execute(_insert_ignoring_duplicates(conn, leases_t), _lease_row(current))
            row = conn.execute(_LEASE.with_for_update(), {"_name": name}).mappings().one()
            taken = take_lease(_lease(row), holder, now=now, ttl_s=ttl_s)
            if taken is not None:
                conn.execute(
                    update(leases_t).where(leases_t.c.name == name).values(_lease_row(taken))
                )
            return taken

    def renew_lease(self, lease: Lease, *, now: float, ttl_s: float) -> Lease:
        renewed = take_lease(lease, lease.holder, now=now, ttl_s=ttl_s)
        assert renewed is not None  # the holder named in the record always renews
        with self._write(fenced=False) as conn:
            changed = conn.execute(_held(lease).values(expires_at=renewed.expires_at)).rowcount
            if changed != 1:
                row = conn.execute(_LEASE, {"_name": lease.name}).mappings().first()
                raise lost_lease(lease, None if row is None else _lease(row))
        return renewed

    def release_lease(self, lease: Lease) -> None:
        with self._write(fenced=False) as conn:
            conn.execute(_held(lease).values(holder=""))

    @contextmanager
    def fenced(self, lease: Lease) -> Iterator[None]:
        saved = getattr(self._local, "fence", None)
        self._local.fence = lease
        try:
            if self._conn is not None:  # already in a batch: check it now
                self._check_fence(self._conn)
            yield
        finally:
            self._local.fence = saved

    def _check_fence(self, conn: Connection) -> None:
        lease: Lease | None = getattr(self._local, "fence", None)
        if lease is None:
            return
        # FOR SHARE (nothing on SQLite, whose writers take turns): a new leader's UPDATE of
        # the row waits until this transaction ends.
        found = conn.execute(_LEASE.with_for_update(read=True), {"_name": lease.name})
        row = found.mappings().first()
        check_fence(lease, None if row is None else _lease(row))

    # -- tokens and audit (hpcbridge.security's records) ----------------------------------

    def insert_token(self, record: TokenRecord) -> None:
        with self._write(fenced=False) as conn:
            sql_security.insert_token(conn, record)

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        with self._read() as conn:
            return sql_security.token_by_hash(conn, token_hash)

    def list_tokens(self, project: str | None = None) -> list[TokenRecord]:
        with self._read() as conn:
            return sql_security.list_tokens(conn, project)

    def revoke_token(self, token_id: str, *, now: float) -> TokenRecord:
        with self._write(fenced=False) as conn:
            return sql_security.revoke_token(conn, token_id, now)

    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        with self._write(fenced=False) as conn:
            return sql_security.append_audit(conn, entry)

    def audit_records(self, query: AuditFilter | None = None) -> list[AuditRecord]:
        with self._read() as conn:
            return sql_security.audit_records(conn, query or AuditFilter())

    def close(self) -> None:
        self._engine.dispose()


_STORED_ENUMS = (JobState, FailureClass, AttemptState)  # a tuple: a union is built per call


def _column_value(value: Any) -> Any:
    if isinstance(value, _STORED_ENUMS):
        return value.value
    return value


def _new_job_row(new: NewJob, now: float) -> dict[str, Any]:
    row = {f.name: getattr(new, f.name) for f in dataclasses.fields(NewJob)}
    return row | {
        "state": JobState.ACCEPTED.value,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "attempt_count": 0,
        "cancel_requested": False,
        "reason": None,
        "failure_class": None,
        "exit_code": None,
        "next_attempt_at": None,
        "started_at": None,
        "finished_at": None,
    }


def _job(row: Any) -> Job:
    values = dict(row)
    values["state"] = JobState(values["state"])
    if values["failure_class"] is not None:
        values["failure_class"] = FailureClass(values["failure_class"])
    return Job(**values)


def _attempt_row(attempt: Attempt) -> dict[str, Any]:
    row = {f.name: _column_value(getattr(attempt, f.name)) for f in dataclasses.fields(Attempt)}
    return row | {"nodes": list(attempt.nodes)}


def _decoded(values: dict[str, Any], json_columns: Sequence[str]) -> dict[str, Any]:
    """Values of JSON columns read as text, decoded (drivers that decode JSON hand over
    objects already)."""
    for name in json_columns:
        if isinstance(values[name], str):
            values[name] = json.loads(values[name])
    return values


def _attempt(row: Any) -> Attempt:
    values = dict(row)
    values["state"] = AttemptState(values["state"])
    values["nodes"] = tuple(values["nodes"])
    if values["failure_class"] is not None:
        values["failure_class"] = FailureClass(values["failure_class"])
    return Attempt(**values)


def _event_row(
    job_id: str,
    kind: str,
    now: float,
    *,
    attempt: int | None = None,
    from_state: JobState | None = None,
    to_state: JobState | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    actor: str = "system",
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "attempt": attempt,
        "time": now,
        "kind": kind,
        "from_state": _column_value(from_state),
        "to_state": _column_value(to_state),
        "reason": reason,
        "data": data or {},
        "actor": actor,
    }


def _event(row: Any) -> Event:
    values = dict(row)
    for key in ("from_state", "to_state"):
        if values[key] is not None:
            values[key] = JobState(values[key])
    return Event(**values)


def _filtered(stmt: Select[Any], query: JobFilter) -> Select[Any]:
    if query.states is not None:
        stmt = stmt.where(jobs_t.c.state.in_([s.value for s in query.states]))
    if query.project is not None:
        stmt = stmt.where(jobs_t.c.project == query.project)
    if query.name is not None:
        stmt = stmt.where(jobs_t.c.name == query.name)
    if query.parent_id is not None:
        stmt = stmt.where(jobs_t.c.parent_id == query.parent_id)
    if query.top_level_only:
        stmt = stmt.where(jobs_t.c.parent_id.is_(None))
    if query.projects is not None:
        stmt = stmt.where(jobs_t.c.project.in_(sorted(query.projects)))
    if query.owner is not None:
        stmt = stmt.where(jobs_t.c.owner == query.owner)
    if query.before is not None:
        created_at, job_id = query.before
        stmt = stmt.where(
            or_(
                jobs_t.c.created_at < created_at,
                and_(jobs_t.c.created_at == created_at, jobs_t.c.job_id < job_id),
            )
        )
    return stmt


def _prunable(
    job_ids: Sequence[JobId], before: float, keep_kinds: frozenset[str]
) -> ColumnElement[bool]:
    """Events ``delete_events`` removes: never the newest of the log (see the Protocol)."""
    newest = select(func.max(events_t.c.seq)).scalar_subquery()
    return and_(
        events_t.c.job_id.in_(list(job_ids)),
        events_t.c.time < before,
        events_t.c.kind.not_in(sorted(keep_kinds)),
        events_t.c.seq < newest,
    )


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert event rows, as the last statement of their transaction.

    Readers poll ``seq > last seen``. On PostgreSQL a transaction may take its sequence
    numbers before another and commit after it; a reader between the two commits would see
    the higher number and skip the lower one for ever. So event rows are inserted under an
    advisory lock held until the transaction ends: transactions take their numbers and
    commit one at a time, and once an event is visible every lower number is committed (or
    rolled back). Each write inserts its events last (a batch at its end) and nothing waits
    while holding the lock (job rows are locked FOR NO KEY UPDATE, which the events'
    foreign-key checks do not wait for), so the lock covers just the insert and the commit.
    SQLite needs nothing: its writers take turns for the whole transaction.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(EVENTS_LOCK_KEY)))
    conn.execute(_INSERT_EVENT, rows)


def _insert_ignoring_duplicates(conn: Connection, table: Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _held(lease: Lease) -> Update:
    return update(leases_t).where(
        leases_t.c.name == lease.name,
        leases_t.c.holder == lease.holder,
        leases_t.c.epoch == lease.epoch,
    )


def _lease(row: Any) -> Lease:
    return Lease(
        name=row["name"],
        holder=row["holder"],
        epoch=int(row["epoch"]),
        expires_at=float(row["expires_at"]),
    )


def _lease_row(lease: Lease) -> dict[str, Any]:
    return dataclasses.asdict(lease)
