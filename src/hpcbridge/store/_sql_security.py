"""SQL statements of tokens and the audit log, on the caller's connection (so that an audit
record commits in the same transaction as the change it records)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from hpcbridge.errors import NotFoundError
from hpcbridge.security import (
    GENESIS_HASH,
    AuditEntry,
    AuditFilter,
    AuditRecord,
    Role,
    TokenRecord,
    chain,
)
from hpcbridge.store._schema import audit as audit_t
from hpcbridge.store._schema import tokens as tokens_t

# PostgreSQL advisory lock key of audit appends (the same in every process): one writer at
# a time reads the head and chains to it. SQLite's writers take turns anyway.
AUDIT_LOCK_KEY = 0x6870_6362_6175_6474  # "hpcbaudt"


def insert_token(conn: Connection, record: TokenRecord) -> None:
    conn.execute(insert(tokens_t), [_token_row(record)])


def token_by_hash(conn: Connection, token_hash: str) -> TokenRecord | None:
    stmt = select(tokens_t).where(tokens_t.c.token_hash == token_hash)
    row = conn.execute(stmt).mappings().first()
    return None if row is None else _token(row)


def list_tokens(conn: Connection, project: str | None) -> list[TokenRecord]:
    stmt = select(tokens_t).order_by(tokens_t.c.created_at, tokens_t.c.token_id)
    if project is not None:
        stmt = stmt.where(tokens_t.c.project == project)
    return [_token(row) for row in conn.execute(stmt).mappings()]


def revoke_token(conn: Connection, token_id: str, now: float) -> TokenRecord:
    conn.execute(
        update(tokens_t)
        .where(tokens_t.c.token_id == token_id, tokens_t.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    row = conn.execute(select(tokens_t).where(tokens_t.c.token_id == token_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no token {token_id!r}", hint="see 'hpcbridge token list'")
    return _token(row)


def append_audit(conn: Connection, entry: AuditEntry) -> AuditRecord:
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(AUDIT_LOCK_KEY)))
    newest = conn.execute(
        select(audit_t.c.seq, audit_t.c.hash).order_by(audit_t.c.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (1, GENESIS_HASH) if newest is None else (int(newest[0]) + 1, newest[1])
    record = chain(entry, seq, prev_hash)
    conn.execute(insert(audit_t), [audit_row(record)])
    return record


def audit_records(conn: Connection, query: AuditFilter) -> list[AuditRecord]:
    stmt = select(audit_t).where(audit_t.c.seq > query.after_seq).order_by(audit_t.c.seq)
    if query.actor is not None:
        stmt = stmt.where(audit_t.c.actor == query.actor)
    if query.action is not None:
        stmt = stmt.where(audit_t.c.action == query.action)
    if query.project is not None:
        stmt = stmt.where(audit_t.c.project == query.project)
    if query.projects is not None:
        stmt = stmt.where(audit_t.c.project.in_(sorted(query.projects)))
    if query.since is not None:
        stmt = stmt.where(audit_t.c.at >= query.since)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return [_audit(row) for row in conn.execute(stmt).mappings()]


def audit_row(record: AuditRecord) -> dict[str, Any]:
    """The row of a record; details as canonical JSON text, so that they read back as hashed."""
    return {
        "seq": record.seq,
        "at": record.at,
        "actor": record.actor,
        "via": record.via,
        "action": record.action,
        "outcome": str(record.outcome),
        "target": record.target,
        "project": record.project,
        "source": record.source,
        "details": json.dumps(record.details, sort_keys=True, separators=(",", ":")),
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }


def _audit(row: Any) -> AuditRecord:
    values = dict(row)
    try:
        values["details"] = json.loads(values["details"])
    except ValueError:  # tampered with: verification reports it, listing still works
        values["details"] = {"unreadable": values["details"]}
    values["seq"] = int(values["seq"])
    return AuditRecord(**values)


def _token_row(record: TokenRecord) -> dict[str, Any]:
    return {
        "token_id": record.token_id,
        "token_hash": record.token_hash,
        "project": record.project,
        "role": str(record.role),
        "subject": record.subject,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "created_by": record.created_by,
        "revoked_at": record.revoked_at,
    }


def _token(row: Any) -> TokenRecord:
    values = dict(row)
    values["role"] = Role(values["role"])
    return TokenRecord(**values)
