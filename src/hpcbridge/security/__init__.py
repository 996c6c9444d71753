"""Who is asking and what they may do: principals and roles per project, opaque tokens,
OIDC/JWT bearer tokens, and the hash-chained audit log's records and checks.

Pure and store-free: the store keeps token and audit records through the types defined
here, and the service layer puts the pieces together.
"""

from hpcbridge.security._audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditFilter,
    AuditHead,
    AuditRecord,
    ChainReport,
    Outcome,
    chain,
    export_head,
    read_head,
    record_hash,
    verify_chain,
)
from hpcbridge.security._oidc import OidcVerifier, parse_roles
from hpcbridge.security._roles import (
    PRIORITY_CAPS,
    SITE,
    Permission,
    Principal,
    Role,
    role_allows,
)
from hpcbridge.security._tokens import (
    TOKEN_PREFIX,
    TokenRecord,
    TokenService,
    TokenStore,
    hash_token,
    looks_like_token,
    new_raw_token,
    token_principal,
)

__all__ = [
    "GENESIS_HASH",
    "PRIORITY_CAPS",
    "SITE",
    "TOKEN_PREFIX",
    "AuditEntry",
    "AuditFilter",
    "AuditHead",
    "AuditRecord",
    "ChainReport",
    "OidcVerifier",
    "Outcome",
    "Permission",
    "Principal",
    "Role",
    "TokenRecord",
    "TokenService",
    "TokenStore",
    "chain",
    "export_head",
    "hash_token",
    "looks_like_token",
    "new_raw_token",
    "parse_roles",
    "read_head",
    "record_hash",
    "role_allows",
    "token_principal",
    "verify_chain",
]
