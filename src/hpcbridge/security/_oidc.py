"""OIDC/JWT bearer tokens, checked against one configured issuer's keys (a JWKS).

Claims used: ``sub`` (or the configured subject claim) names the principal;
``hpcbridge_roles`` (configurable) maps projects to roles, e.g. ``{"climate": "member",
"*": "viewer"}``; a role on ``*`` holds in every project and ``{"*": "admin"}`` makes a
platform admin. Unknown roles are ignored. ``exp``, ``iss``, ``aud`` and ``sub`` are
required; ``nbf`` and ``iat`` are honoured when present. Only the configured algorithms
(asymmetric, by default) are accepted, so ``alg=none`` and HMAC with the public key are not.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpcbridge.errors import AuthenticationError, ConfigError
from hpcbridge.security._roles import SITE, Principal, Role

DEFAULT_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")


class OidcVerifier:
    """Validates JWTs of ``issuer`` for ``audience`` with keys from ``jwks`` (a file path or
    an http(s) URL, re-read at most every ``cache_s`` seconds, and when a token names a key
    that is not known yet)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: str,
        roles_claim: str = "hpcbridge_roles",
        subject_claim: str = "sub",
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        cache_s: float = 300.0,
        leeway_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer or not audience or not jwks:
            raise ConfigError(
                "OIDC needs an issuer, an audience and a JWKS",
                hint="set HPCBRIDGE_OIDC_ISSUER, HPCBRIDGE_OIDC_AUDIENCE and HPCBRIDGE_OIDC_JWKS",
            )
        if any(a.lower() == "none" or a.upper().startswith("HS") for a in algorithms):
            raise ConfigError(
                f"OIDC algorithms {list(algorithms)} include 'none' or HMAC",
                hint="allow only asymmetric algorithms such as RS256 or ES256",
            )
        self.issuer = issuer
        self.audience = audience
        self._jwks = jwks
        self._roles_claim = roles_claim
        self._subject_claim = subject_claim
        self._algorithms = list(algorithms)
        self._cache_s = cache_s
        self._leeway_s = leeway_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._loaded_at = float("-inf")

    def authenticate(self, raw: str, *, source: str = "local") -> Principal:
        """The principal of a valid token; AuthenticationError (one message) otherwise."""
        import jwt  # noqa: PLC0415  # here: PyJWT loads cryptography, a cost every CLI start would pay

        try:
            header = jwt.get_unverified_header(raw)
            if header.get("alg") not in self._algorithms:
                raise AuthenticationError()
            key = self._key(header.get("kid"))
            claims = jwt.decode(
                raw,
                key,
                algorithms=self._algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "iss", "aud", self._subject_claim]},
            )
            # PyJWT checks exp/nbf against the wall clock; an injected clock checks again.
            now = self._clock()
            if float(claims["exp"]) + self._leeway_s <= now:
                raise AuthenticationError()
            if "nbf" in claims and float(claims["nbf"]) - self._leeway_s > now:
                raise AuthenticationError()
            subject = claims[self._subject_claim]
            if not isinstance(subject, str) or not subject:
                raise AuthenticationError()
        except AuthenticationError:
            raise
        except (jwt.PyJWTError, KeyError, ValueError, TypeError, OSError) as exc:
            raise AuthenticationError() from exc
        roles = parse_roles(claims.get(self._roles_claim))
        return Principal(
            subject=subject,
            platform_admin=roles.get(SITE) is Role.ADMIN,
            roles=roles,
            via="oidc",
            source=source,
        )

    def _key(self, kid: object) -> Any:
        with self._lock:
            stale = self._clock() - self._loaded_at > self._cache_s
            if stale or (isinstance(kid, str) and kid not in self._keys):
                self._keys = _load_jwks(self._jwks)
                self._loaded_at = self._clock()
            if isinstance(kid, str):
                return self._keys[kid]
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise KeyError("the token names no key and the JWKS has several")


def parse_roles(claim: object) -> dict[str, Role]:
    """``{project: role}`` from a roles claim, skipping entries that are not one."""
    if not isinstance(claim, Mapping):
        return {}
    valid = {r.value for r in Role}
    return {
        str(project): Role(role)
        for project, role in claim.items()
        if isinstance(role, str) and role in valid
    }


def _load_jwks(source: str) -> dict[str, Any]:
    """Public keys by key id (a key without an id is filed under its position)."""
    import jwt  # noqa: PLC0415  # see OidcVerifier.authenticate

    if source.startswith(("http://", "https://")):
        document = jwt.PyJWKClient(source, cache_jwk_set=False).fetch_data()
    else:
        document = json.loads(Path(source).read_text(encoding="utf-8"))
    keys = jwt.PyJWKSet.from_dict(document).keys
    return {key.key_id or str(index): key.key for index, key in enumerate(keys)}
