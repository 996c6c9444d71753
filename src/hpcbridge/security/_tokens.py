"""Opaque bearer tokens: 256 random bits behind a recognisable prefix, kept only as a hash.

The raw token is shown once, when created. The store holds its SHA-256 (a fast hash is
enough for 256 bits of randomness: nothing is left to guess), its project, role, subject,
expiry and whether it was revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hpcbridge.errors import AuthenticationError
from hpcbridge.security._roles import SITE, Principal, Role

TOKEN_PREFIX = "hpcb_"
_ID_BYTES = 6
_SECRET_BYTES = 32  # 256 bits


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the store keeps of a token: never the token itself."""

    token_id: str
    token_hash: str
    project: str
    role: Role
    subject: str
    created_at: float
    expires_at: float
    created_by: str
    revoked_at: float | None = None

    def valid_at(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at


class TokenStore(Protocol):
    """The part of the store that keeps tokens (``hpcbridge.store.Store`` has it)."""

    def insert_token(self, record: TokenRecord) -> None: ...

    def token_by_hash(self, token_hash: str) -> TokenRecord | None: ...

    def list_tokens(self, project: str | None = None) -> list[TokenRecord]: ...

    def revoke_token(self, token_id: str, *, now: float) -> TokenRecord:
        """Raises NotFoundError for an unknown id; revoking twice keeps the first time."""
        ...


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_raw_token() -> tuple[str, str]:
    """A fresh ``(token_id, raw_token)``; the id is public, the rest of the token is not."""
    token_id = "t" + secrets.token_hex(_ID_BYTES)
    return token_id, f"{TOKEN_PREFIX}{secrets.token_urlsafe(_SECRET_BYTES)}"


def looks_like_token(raw: str) -> bool:
    return raw.startswith(TOKEN_PREFIX)


def token_principal(record: TokenRecord, *, source: str = "local") -> Principal:
    """The principal a valid token stands for; an admin token of ``*`` is a platform admin."""
    return Principal(
        subject=record.subject,
        platform_admin=record.project == SITE and record.role is Role.ADMIN,
        roles={record.project: record.role},
        via="token",
        source=source,
    )


class TokenService:
    """Create, check, list and revoke opaque tokens kept in ``store``."""

    def __init__(self, store: TokenStore, *, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    def create(
        self, project: str, role: Role, ttl_s: float, subject: str, *, created_by: str
    ) -> tuple[str, TokenRecord]:
        """A new token: the raw value (show it once) and the record the store keeps."""
        now = self._clock()
        token_id, raw = new_raw_token()
        record = TokenRecord(
            token_id=token_id,
            token_hash=hash_token(raw),
            project=project,
            role=Role(role),
            subject=subject,
            created_at=now,
            expires_at=now + ttl_s,
            created_by=created_by,
        )
        self._store.insert_token(record)
        return raw, record

    def authenticate(self, raw: str, *, source: str = "local") -> Principal:
        """The principal of a valid token; AuthenticationError (one message) otherwise."""
        if not looks_like_token(raw):
            raise AuthenticationError()
        digest = hash_token(raw)
        record = self._store.token_by_hash(digest)
        # compare_digest: the lookup found it by hash already; this keeps the check explicit
        if (
            record is None
            or not hmac.compare_digest(record.token_hash, digest)
            or not record.valid_at(self._clock())
        ):
            raise AuthenticationError()
        return token_principal(record, source=source)

    def list(self, project: str | None = None) -> list[TokenRecord]:
        return self._store.list_tokens(project)

    def revoke(self, token_id: str) -> TokenRecord:
        return self._store.revoke_token(token_id, now=self._clock())
