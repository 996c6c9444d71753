"""The hash-chained audit log: who did what, when, from where, and whether it was allowed.

Each record's ``hash`` is the SHA-256 of a canonical JSON of its fields and the previous
record's hash, so changing, removing, reordering or inserting a record breaks the chain
from there on. Cutting off the newest records, or rewriting the whole chain, leaves a valid
chain: the head (last sequence number and hash) exported after each write to a file and
the log is what those are checked against.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64


class Outcome(StrEnum):
    OK = "ok"
    DENIED = "denied"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What to record; the store gives it a sequence number and chains it."""

    at: float
    actor: str
    via: str
    action: str
    outcome: Outcome | str
    target: str | None = None
    project: str | None = None
    source: str = "local"
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: float
    actor: str
    via: str
    action: str
    outcome: str
    target: str | None
    project: str | None
    source: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    project: str | None = None
    projects: frozenset[str] | None = None
    """Only records of these projects (None: all); for principals that see some."""
    since: float | None = None
    after_seq: int = 0
    limit: int | None = None


def record_hash(entry: AuditEntry, seq: int, prev_hash: str) -> str:
    body = {
        "seq": seq,
        "at": entry.at,
        "actor": entry.actor,
        "via": entry.via,
        "action": entry.action,
        "outcome": str(entry.outcome),
        "target": entry.target,
        "project": entry.project,
        "source": entry.source,
        "details": entry.details,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def chain(entry: AuditEntry, seq: int, prev_hash: str) -> AuditRecord:
    """The record ``entry`` becomes as number ``seq`` after the record hashed ``prev_hash``."""
    return AuditRecord(
        seq=seq,
        at=entry.at,
        actor=entry.actor,
        via=entry.via,
        action=entry.action,
        outcome=str(entry.outcome),
        target=entry.target,
        project=entry.project,
        source=entry.source,
        details=dict(entry.details),
        prev_hash=prev_hash,
        hash=record_hash(entry, seq, prev_hash),
    )


def as_entry(record: AuditRecord) -> AuditEntry:
    return AuditEntry(
        at=record.at,
        actor=record.actor,
        via=record.via,
        action=record.action,
        outcome=record.outcome,
        target=record.target,
        project=record.project,
        source=record.source,
        details=record.details,
    )


# -- the exported head -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditHead:
    seq: int
    hash: str


def read_head(path: Path) -> AuditHead | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return AuditHead(seq=int(document["seq"]), hash=str(document["hash"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return AuditHead(seq=-1, hash="unreadable")


def export_head(path: Path, record: AuditRecord) -> None:
    """Write the head atomically, readable by its owner only, unless a newer one is there
    (another request or process of the same home wrote after this one). Reading and
    replacing happen under a lock: two writers that both read an older head would
    otherwise leave whichever wrote last, which may be the older record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _head_lock(path):
        current = read_head(path)
        if current is not None and current.seq >= record.seq:
            return
        _replace_head(path, record)


@contextlib.contextmanager
def _head_lock(path: Path) -> Iterator[None]:
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # per open file: excludes other threads and processes
        yield
    finally:
        os.close(fd)  # releases the lock


def _replace_head(path: Path, record: AuditRecord) -> None:
    text = json.dumps({"seq": record.seq, "hash": record.hash, "at": record.at})
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".audit-head-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# -- verification ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainReport:
    intact: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None
    head: AuditHead | None = None


def verify_chain(records: Iterable[AuditRecord], head: AuditHead | None) -> ChainReport:
    """Check records (in the store's ``seq`` order) against each other and the exported
    head; the report names the first record that is wrong and how."""
    prev_hash, expected_seq, count = GENESIS_HASH, 1, 0
    at_head: AuditRecord | None = None
    for record in records:
        count += 1
        problem = None
        if record.seq != expected_seq:
            problem = (
                f"expected record {expected_seq} here, found {record.seq}: records were "
                "deleted, inserted or reordered"
            )
        elif record.prev_hash != prev_hash:
            problem = "its previous hash does not match the record before: the chain was cut"
        elif record_hash(as_entry(record), record.seq, record.prev_hash) != record.hash:
            problem = "its contents do not match its hash: the record was modified"
        if problem is not None:
            return ChainReport(False, count, expected_seq, problem, head)
        if head is not None and record.seq == head.seq:
            at_head = record
        prev_hash, expected_seq = record.hash, expected_seq + 1
    last_seq = expected_seq - 1
    if head is None:
        return ChainReport(True, count, head=None)
    if head.seq < 0:
        return ChainReport(False, count, None, "the exported head cannot be read", head)
    if last_seq < head.seq:
        return ChainReport(
            False,
            count,
            last_seq + 1,
            f"the exported head is record {head.seq} but the log ends at {last_seq}: "
            "records were removed from its end",
            head,
        )
    if at_head is not None and at_head.hash != head.hash:
        return ChainReport(
            False,
            count,
            head.seq,
            "its hash differs from the exported head: the chain was rewritten",
            head,
        )
    return ChainReport(True, count, head=head)
