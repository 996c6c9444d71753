"""The store port: one Protocol, held by SQL and in-memory implementations to one contract."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from hpcbridge.security import AuditEntry, AuditFilter, AuditRecord, TokenRecord
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store._cost_totals import CostTotals
from hpcbridge.store._records import Attempt, Event, Job, JobFilter, JobId, Lease, NewJob

ACTIVE_ATTEMPT_STATES = frozenset(
    {AttemptState.PREPARED, AttemptState.SUBMITTED, AttemptState.RUNNING}
)


class Store(Protocol):
    """Durable state of every job. Writes commit on return, or at the end of ``batch()``."""

    def batch(self) -> AbstractContextManager[None]:
        """Group the writes inside into one transaction (one fsync)."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """Inside ``batch()``: undo the writes made within (their events included) if it
        exits with an exception, and keep the rest of the batch, which still commits.
        Outside a batch it is a batch of its own. A database error inside it (PostgreSQL
        aborts the whole transaction on one) leaves the enclosing batch usable."""
        ...

    def create_jobs(self, jobs: Sequence[NewJob], *, now: float, actor: str) -> list[Job]: ...

    def get_job(self, job_id: str) -> Job:
        """Raises NotFoundError."""
        ...

    def find_by_idempotency_key(self, key: str) -> Job | None: ...

    def list_jobs(self, query: JobFilter | None = None) -> list[Job]: ...

    def newest_jobs(self, query: JobFilter) -> list[Job]:
        """The jobs ``query`` matches, newest first: with ``query.limit``, the newest ones
        (``list_jobs`` gives the oldest)."""
        ...

    def active_jobs(self) -> list[Job]: ...

    def count_children(self, parent_id: JobId) -> dict[JobState, int]:
        """How many tasks of an array job are in each state."""
        ...

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
        """Move a job to ``target`` if the table allows it and nobody changed it meanwhile.

        ``fields`` update other job columns in the same write (``failure_class``, ...).
        Raises InvalidTransitionError, ConflictError or NotFoundError.
        """
        ...

    def update_job(
        self, job_id: JobId, *, expected_version: int, now: float, **fields: Any
    ) -> Job: ...

    def create_attempt(
        self, job_id: JobId, *, backend: str, token: str, now: float, details: dict[str, Any]
    ) -> Attempt: ...

    def update_attempt(self, job_id: JobId, number: int, **fields: Any) -> Attempt: ...

    def attempts(self, job_id: JobId) -> list[Attempt]: ...

    def active_attempts(self) -> list[Attempt]: ...

    def attempt_by_native_id(self, native_id: str) -> Attempt | None:
        """The newest attempt the scheduler knows as ``native_id`` (a rebuilt cluster may
        reuse ids), for lookups by the scheduler's own id."""
        ...

    def array_task_attempt(self, array_native_id: str) -> Attempt | None:
        """The newest attempt of a task of the scheduler's array ``array_native_id`` (one
        known as ``<array_native_id>_<index>``), for lookups of a whole array by its id."""
        ...

    def failed_attempts_since(self, since: float) -> list[Attempt]:
        """Attempts that failed at or after ``since`` (for node quarantine and MTBF)."""
        ...

    def attempts_ended(self, since: float, until: float) -> list[tuple[Job, Attempt]]:
        """Finished attempts that ended in ``[since, until)``, each with its job, in the
        order they ended (chargeback and budgets read their charges)."""
        ...

    def cost_totals(self, since: float, until: float, by: str) -> CostTotals:
        """The recorded charges of attempts that ended in ``[since, until)``, summed per
        group (``by``: project, team, user, workload_class or ``tag:<key>``), and the
        attempts without a recorded charge, for the caller to price."""
        ...

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
    ) -> None: ...

    def events(self, job_id: JobId, *, after_seq: int = 0) -> list[Event]: ...

    # -- retention ------------------------------------------------------------------------

    def finished_jobs(self, *, before: float) -> list[Job]:
        """Jobs (array tasks included) in a terminal state that finished before ``before``,
        the earliest finished first."""
        ...

    def count_events(
        self, job_ids: Sequence[JobId], *, before: float, keep_kinds: frozenset[str]
    ) -> dict[str, int]:
        """How many events of each kind ``delete_events`` would delete now."""
        ...

    def delete_events(
        self, job_ids: Sequence[JobId], *, before: float, keep_kinds: frozenset[str]
    ) -> int:
        """Delete the events of ``job_ids`` older than ``before`` whose kind is not in
        ``keep_kinds``; returns how many went. The newest event of the whole log always
        stays, so that no sequence number is ever given out twice (SQLite would reuse the
        highest one): a reader polling by the last ``seq`` it saw misses nothing."""
        ...

    def all_events(self, *, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events after ``after_seq`` in sequence order.

        Events become visible in the order of their sequence numbers, even with several
        writers at once: a reader that polls with the last ``seq`` it saw never skips one
        that commits later with a lower number.
        """
        ...

    def acquire_lease(self, name: str, holder: str, *, now: float, ttl_s: float) -> Lease | None:
        """Take (or renew) the lease ``name`` for ``ttl_s`` seconds from ``now``; None while
        another holder's lease has not expired. A new holder gets the next epoch; the
        current holder keeps its own. ``holder`` must be unique per process."""
        ...

    def renew_lease(self, lease: Lease, *, now: float, ttl_s: float) -> Lease:
        """Extend a lease this holder has; raises FencedError if another took it over."""
        ...

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up now (if still held), so another may take it without waiting
        for it to expire. The epoch stays: the next holder gets the one after."""
        ...

    def fenced(self, lease: Lease) -> AbstractContextManager[None]:
        """Within it, every write of the calling thread checks that ``lease``'s epoch is
        still the newest, and raises FencedError if not. On PostgreSQL the check locks the
        lease row until the write's transaction ends, so a takeover waits for it: a write
        either commits before the new leader's epoch exists or is refused."""
        ...

    # -- tokens and the audit log ---------------------------------------------------------

    def insert_token(self, record: TokenRecord) -> None: ...

    def token_by_hash(self, token_hash: str) -> TokenRecord | None: ...

    def list_tokens(self, project: str | None = None) -> list[TokenRecord]:
        """Tokens (of ``project``), the oldest first."""
        ...

    def revoke_token(self, token_id: str, *, now: float) -> TokenRecord:
        """Mark a token revoked (the first time counts); raises NotFoundError."""
        ...

    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        """Number ``entry`` after the newest record and chain it to that one's hash, in the
        current transaction (``batch()``), so that it commits with the change it records.
        Writers append one at a time: the chain never forks."""
        ...

    def audit_records(self, query: AuditFilter | None = None) -> list[AuditRecord]:
        """Audit records in sequence order."""
        ...

    def close(self) -> None: ...


def transition_event_data(fields: dict[str, Any], data: dict[str, Any] | None) -> dict[str, Any]:
    """Event payload of a transition: the caller's data plus the failure class it sets."""
    merged = dict(data or {})
    failure_class = fields.get("failure_class")
    if isinstance(failure_class, FailureClass):
        merged.setdefault("failure_class", failure_class.value)
    return merged


def iterate_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
