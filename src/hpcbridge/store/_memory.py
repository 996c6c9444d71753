"""The in-memory twin of the SQL store: same contract, for fast tests and dry runs."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from hpcbridge.errors import NotFoundError, StoreError
from hpcbridge.security import (
    GENESIS_HASH,
    AuditEntry,
    AuditFilter,
    AuditRecord,
    TokenRecord,
    chain,
)
from hpcbridge.states import AttemptState, JobState
from hpcbridge.store._cost_totals import CostTotals, totals_of
from hpcbridge.store._protocol import ACTIVE_ATTEMPT_STATES, transition_event_data
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
    next_attempt_number,
    take_lease,
    transition_fields,
)


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._jobs: dict[JobId, Job] = {}
        self._attempts: dict[JobId, list[Attempt]] = {}
        self._events: list[Event] = []
        self._leases: dict[str, Lease] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._audit: list[AuditRecord] = []
        self._local = threading.local()  # the lease that fences this thread's writes

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._lock:
            saved = (
                dict(self._jobs),
                {k: list(v) for k, v in self._attempts.items()},
                list(self._events),
                dict(self._leases),
                dict(self._tokens),
                list(self._audit),
            )
            try:
                yield
            except BaseException:
                (
                    self._jobs,
                    self._attempts,
                    self._events,
                    self._leases,
                    self._tokens,
                    self._audit,
                ) = saved
                raise

    def savepoint(self) -> AbstractContextManager[None]:
        # Every batch here restores what it saved on an exception, nested or not.
        return self.batch()

    @contextmanager
    def fenced(self, lease: Lease) -> Iterator[None]:
        saved = getattr(self._local, "fence", None)
        self._local.fence = lease
        try:
            yield  # every write checks, in a batch or not
        finally:
            self._local.fence = saved

    def _check_fence(self) -> None:
        lease: Lease | None = getattr(self._local, "fence", None)
        if lease is not None:
            check_fence(lease, self._leases.get(lease.name))

    def acquire_lease(self, name: str, holder: str, *, now: float, ttl_s: float) -> Lease | None:
        with self._lock:
            taken = take_lease(
                self._leases.get(name) or free_lease(name), holder, now=now, ttl_s=ttl_s
            )
            if taken is not None:
                self._leases[name] = taken
            return taken

    def renew_lease(self, lease: Lease, *, now: float, ttl_s: float) -> Lease:
        with self._lock:
            current = self._leases.get(lease.name)
            if current is None or (current.holder, current.epoch) != (lease.holder, lease.epoch):
                raise lost_lease(lease, current)
            renewed = take_lease(current, lease.holder, now=now, ttl_s=ttl_s)
            assert renewed is not None  # the holder named in the record always renews
            self._leases[lease.name] = renewed
            return renewed

    def release_lease(self, lease: Lease) -> None:
        with self._lock:
            current = self._leases.get(lease.name)
            if current is not None and (current.holder, current.epoch) == (
                lease.holder,
                lease.epoch,
            ):
                self._leases[lease.name] = dataclasses.replace(current, holder="")

    def create_jobs(self, jobs: Sequence[NewJob], *, now: float, actor: str) -> list[Job]:
        with self._lock:
            self._check_fence()
            keys = {j.idempotency_key for j in self._jobs.values() if j.idempotency_key}
            ids = set(self._jobs)
            for new in jobs:
                if new.job_id in ids:
                    raise StoreError(f"job {new.job_id} already exists")
                if new.idempotency_key is not None and new.idempotency_key in keys:
                    raise StoreError(f"idempotency key {new.idempotency_key!r} is taken")
                if new.parent_id is not None and new.parent_id not in ids:
                    raise StoreError(f"job {new.job_id}: parent {new.parent_id} does not exist")
                ids.add(new.job_id)
                if new.idempotency_key is not None:
                    keys.add(new.idempotency_key)
            created = []
            for new in jobs:
                job = Job(
                    **{f.name: getattr(new, f.name) for f in dataclasses.fields(NewJob)},
                    state=JobState.ACCEPTED,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                self._jobs[job.job_id] = job
                self._attempts[job.job_id] = []
                self._append(job.job_id, "accepted", now, to_state=JobState.ACCEPTED, actor=actor)
                created.append(job)
            return created

    def get_job(self, job_id: str) -> Job:
        with self._lock:
            try:
                return self._jobs[JobId(job_id)]
            except KeyError:
                raise NotFoundError(f"no job {job_id!r}", hint="see 'hpcbridge list'") from None

    def find_by_idempotency_key(self, key: str) -> Job | None:
        with self._lock:
            return next((j for j in self._jobs.values() if j.idempotency_key == key), None)

    def list_jobs(self, query: JobFilter | None = None) -> list[Job]:
        query = query or JobFilter()
        with self._lock:
            found = [j for j in self._jobs.values() if _matches(j, query)]
        found.sort(key=lambda j: (j.created_at, j.job_id))
        return found[: query.limit] if query.limit is not None else found

    def newest_jobs(self, query: JobFilter) -> list[Job]:
        with self._lock:
            found = [j for j in self._jobs.values() if _matches(j, query)]
        found.sort(key=lambda j: (j.created_at, j.job_id), reverse=True)
        return found[: query.limit] if query.limit is not None else found

    def active_jobs(self) -> list[Job]:
        with self._lock:
            return sorted(
                (j for j in self._jobs.values() if not j.state.terminal),
                key=lambda j: (j.created_at, j.job_id),
            )

    def count_children(self, parent_id: JobId) -> dict[JobState, int]:
        with self._lock:
            return dict(Counter(j.state for j in self._jobs.values() if j.parent_id == parent_id))

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
        with self._lock:
            self._check_fence()
            job = self.get_job(job_id)
            check_transition(job, target, expected_version)
            changes = transition_fields(job, target, now, fields)
            updated = dataclasses.replace(
                job, state=target, version=job.version + 1, updated_at=now, reason=reason, **changes
            )
            self._jobs[job_id] = updated
            self._append(
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
            return updated

    def update_job(self, job_id: JobId, *, expected_version: int, now: float, **fields: Any) -> Job:
        with self._lock:
            self._check_fence()
            job = self.get_job(job_id)
            check_version(job, expected_version)
            check_fields(fields, JOB_MUTABLE_FIELDS, "job")
            updated = dataclasses.replace(job, version=job.version + 1, updated_at=now, **fields)
            self._jobs[job_id] = updated
            return updated

    def create_attempt(
        self, job_id: JobId, *, backend: str, token: str, now: float, details: dict[str, Any]
    ) -> Attempt:
        with self._lock:
            self._check_fence()
            self.get_job(job_id)
            if any(a.token == token for runs in self._attempts.values() for a in runs):
                raise StoreError(f"job {job_id}: attempt token {token!r} is already used")
            attempts = self._attempts[job_id]
            attempt = Attempt(
                job_id=job_id,
                number=next_attempt_number(attempts),
                token=token,
                backend=backend,
                state=AttemptState.PREPARED,
                created_at=now,
                details=dict(details),
            )
            attempts.append(attempt)
            return attempt

    def update_attempt(self, job_id: JobId, number: int, **fields: Any) -> Attempt:
        with self._lock:
            self._check_fence()
            attempts = self._attempts.get(job_id, [])
            for position, attempt in enumerate(attempts):
                if attempt.number == number:
                    updated = dataclasses.replace(attempt, **attempt_fields(fields))
                    attempts[position] = updated
                    return updated
            raise NotFoundError(f"job {job_id} has no attempt {number}")

    def attempts(self, job_id: JobId) -> list[Attempt]:
        with self._lock:
            return list(self._attempts.get(job_id, []))

    def attempt_by_native_id(self, native_id: str) -> Attempt | None:
        with self._lock:
            found = [
                a
                for attempts in self._attempts.values()
                for a in attempts
                if a.native_id == native_id
            ]
        return max(found, key=lambda a: (a.created_at, a.job_id), default=None)

    def array_task_attempt(self, array_native_id: str) -> Attempt | None:
        prefix = f"{array_native_id}_"
        with self._lock:
            found = [
                a
                for attempts in self._attempts.values()
                for a in attempts
                if a.native_id is not None
                and a.native_id.startswith(prefix)
                and a.native_id[len(prefix) :].isdigit()
            ]
        return max(found, key=lambda a: (a.created_at, a.job_id), default=None)

    def active_attempts(self) -> list[Attempt]:
        with self._lock:
            return [
                a
                for attempts in self._attempts.values()
                for a in attempts
                if a.state in ACTIVE_ATTEMPT_STATES
            ]

    def cost_totals(self, since: float, until: float, by: str) -> CostTotals:
        return totals_of(self.attempts_ended(since, until), by)

    def attempts_ended(self, since: float, until: float) -> list[tuple[Job, Attempt]]:
        with self._lock:
            ended = [
                (self._jobs[a.job_id], a)
                for attempts in self._attempts.values()
                for a in attempts
                if a.state.finished and a.ended_at is not None and since <= a.ended_at < until
            ]
        return sorted(ended, key=lambda pair: (pair[1].ended_at, pair[1].job_id, pair[1].number))

    def failed_attempts_since(self, since: float) -> list[Attempt]:
        with self._lock:
            return [
                a
                for attempts in self._attempts.values()
                for a in attempts
                if a.state is AttemptState.FAILED and a.ended_at is not None and a.ended_at >= since
            ]

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
        with self._lock:
            self._check_fence()
            self.get_job(job_id)
            self._append(
                job_id, kind, now, attempt=attempt, reason=reason, data=data or {}, actor=actor
            )

    def events(self, job_id: JobId, *, after_seq: int = 0) -> list[Event]:
        with self._lock:
            return [e for e in self._events if e.job_id == job_id and e.seq > after_seq]

    def finished_jobs(self, *, before: float) -> list[Job]:
        with self._lock:
            found = [
                j
                for j in self._jobs.values()
                if j.state.terminal and j.finished_at is not None and j.finished_at < before
            ]
        return sorted(found, key=lambda j: (j.finished_at or 0.0, j.job_id))

    def count_events(
        self, job_ids: Sequence[JobId], *, before: float, keep_kinds: frozenset[str]
    ) -> dict[str, int]:
        with self._lock:
            return dict(Counter(e.kind for e in self._prunable(job_ids, before, keep_kinds)))

    def delete_events(
        self, job_ids: Sequence[JobId], *, before: float, keep_kinds: frozenset[str]
    ) -> int:
        with self._lock:
            self._check_fence()
            doomed = {e.seq for e in self._prunable(job_ids, before, keep_kinds)}
            self._events = [e for e in self._events if e.seq not in doomed]
            return len(doomed)

    def _prunable(
        self, job_ids: Sequence[JobId], before: float, keep_kinds: frozenset[str]
    ) -> list[Event]:
        wanted = set(job_ids)
        newest = self._events[-1].seq if self._events else 0
        return [
            e
            for e in self._events
            if e.job_id in wanted
            and e.time < before
            and e.kind not in keep_kinds
            and e.seq < newest
        ]

    def all_events(self, *, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        with self._lock:
            found = [e for e in self._events if e.seq > after_seq]
        return found[:limit] if limit is not None else found

    # -- tokens and the audit log ---------------------------------------------------------

    def insert_token(self, record: TokenRecord) -> None:
        with self._lock:
            if record.token_id in self._tokens or any(
                t.token_hash == record.token_hash for t in self._tokens.values()
            ):
                raise StoreError(f"token {record.token_id} already exists")
            self._tokens[record.token_id] = record

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        with self._lock:
            return next((t for t in self._tokens.values() if t.token_hash == token_hash), None)

    def list_tokens(self, project: str | None = None) -> list[TokenRecord]:
        with self._lock:
            found = [t for t in self._tokens.values() if project in (None, t.project)]
        return sorted(found, key=lambda t: (t.created_at, t.token_id))

    def revoke_token(self, token_id: str, *, now: float) -> TokenRecord:
        with self._lock:
            record = self._tokens.get(token_id)
            if record is None:
                raise NotFoundError(f"no token {token_id!r}", hint="see 'hpcbridge token list'")
            if record.revoked_at is None:
                record = dataclasses.replace(record, revoked_at=now)
                self._tokens[token_id] = record
            return record

    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        with self._lock:
            newest = self._audit[-1] if self._audit else None
            record = chain(
                entry,
                1 if newest is None else newest.seq + 1,
                GENESIS_HASH if newest is None else newest.hash,
            )
            self._audit.append(record)
            return record

    def audit_records(self, query: AuditFilter | None = None) -> list[AuditRecord]:
        query = query or AuditFilter()
        with self._lock:
            found = [r for r in self._audit if _audit_matches(r, query)]
        return found[: query.limit] if query.limit is not None else found

    def close(self) -> None:
        return None

    def _append(self, job_id: JobId, kind: str, now: float, **fields: Any) -> None:
        # The next number after the newest, as SQLite gives out (the newest is never
        # deleted, so none is given out twice).
        seq = self._events[-1].seq + 1 if self._events else 1
        self._events.append(Event(seq=seq, job_id=job_id, time=now, kind=kind, **fields))


def _audit_matches(record: AuditRecord, query: AuditFilter) -> bool:
    return (
        record.seq > query.after_seq
        and query.actor in (None, record.actor)
        and query.action in (None, record.action)
        and query.project in (None, record.project)
        and (query.projects is None or record.project in query.projects)
        and (query.since is None or record.at >= query.since)
    )


def _matches(job: Job, query: JobFilter) -> bool:
    return (
        (query.states is None or job.state in query.states)
        and (query.projects is None or job.project in query.projects)
        and (query.owner is None or job.owner == query.owner)
        and (query.before is None or (job.created_at, job.job_id) < query.before)
        and (query.project is None or job.project == query.project)
        and (query.name is None or job.name == query.name)
        and (query.parent_id is None or job.parent_id == query.parent_id)
        and (not query.top_level_only or job.parent_id is None)
    )
