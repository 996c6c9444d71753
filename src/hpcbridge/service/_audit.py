"""Audited use cases: the change and its audit record commit in one transaction; a refused
or failed call is recorded on its own afterwards (the change rolled back)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from hpcbridge.errors import ForbiddenError, HpcbridgeError, NotFoundError, QuotaExceededError
from hpcbridge.security import AuditEntry, AuditRecord, Outcome, Principal, export_head
from hpcbridge.store import Store

log = structlog.get_logger("hpcbridge.audit")

_DENIED = (ForbiddenError, QuotaExceededError, NotFoundError)


@dataclass
class Note:
    """What the use case tells the record as it learns it: its target, project, details."""

    target: str | None = None
    project: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Auditor:
    def __init__(self, store: Store, head_path: Path, clock: Callable[[], float]) -> None:
        self._store = store
        self.head_path = head_path
        self._clock = clock

    @contextmanager
    def audited(
        self, principal: Principal, action: str, *, target: str | None = None
    ) -> Iterator[Note]:
        """Run the body in one transaction with its audit record (outcome ``ok``). A
        ForbiddenError, a QuotaExceededError or a hidden object (NotFoundError) is recorded
        as ``denied``, any other error of hpcbridge as ``error``; then it propagates."""
        note = Note(target=target)
        try:
            with self._store.batch():
                yield note
                record = self._store.append_audit(self._entry(principal, action, note, Outcome.OK))
        except HpcbridgeError as exc:
            self.refused(principal, action, note, exc)
            raise
        self._exported(record)

    def refused(self, principal: Principal, action: str, note: Note, exc: HpcbridgeError) -> None:
        """Record a call that failed: ``denied`` if refused (a role, a quota, a hidden
        object), ``error`` otherwise."""
        outcome = Outcome.DENIED if isinstance(exc, _DENIED) else Outcome.ERROR
        note.details = {**note.details, "error": exc.message}
        self.record(principal, action, note, outcome)

    def record(self, principal: Principal, action: str, note: Note, outcome: Outcome) -> None:
        """A record of its own: for an action whose effect is outside the store (a
        scheduler call), which no transaction of ours can include."""
        self._write_alone(self._entry(principal, action, note, outcome))

    def _write_alone(self, entry: AuditEntry) -> None:
        with self._store.batch():
            record = self._store.append_audit(entry)
        self._exported(record)

    def _entry(self, principal: Principal, action: str, note: Note, outcome: Outcome) -> AuditEntry:
        return AuditEntry(
            at=self._clock(),
            actor=principal.subject,
            via=principal.via,
            action=action,
            outcome=outcome,
            target=note.target,
            project=note.project,
            source=principal.source,
            details=dict(note.details),
        )

    def _exported(self, record: AuditRecord) -> None:
        """After the commit: the head to a file (owner-only) and to the log."""
        try:
            export_head(self.head_path, record)
        except OSError as exc:  # the record is committed; say the head could not be kept
            log.error("audit_head_not_exported", path=str(self.head_path), error=str(exc))
        log.info("audit_head", seq=record.seq, hash=record.hash, action=record.action)
