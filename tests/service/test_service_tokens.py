"""Authentication: opaque tokens and OIDC JWTs. Every failure raises AuthenticationError
with one and the same message; no raw token reaches the database, the audit log or logs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import create_engine, inspect, text

from hpcbridge.config import Settings
from hpcbridge.errors import AuthenticationError
from hpcbridge.security import SITE, OidcVerifier, Role
from hpcbridge.service import Service
from hpcbridge.store import Store
from tests.service.conftest import PLATFORM, Clock, make_service

ISSUER, AUDIENCE = "https://id.example.test", "hpcbridge"


def failure(call: Callable[[], Any]) -> str:
    with pytest.raises(AuthenticationError) as caught:
        call()
    return str(caught.value)


def test_a_token_authenticates_as_its_subject_project_and_role(service: Service) -> None:
    raw, _ = service.create_token(PLATFORM, "a", Role.OPERATOR, 3600, subject="ci-bot")
    assert raw.startswith("hpcb_") and len(raw) >= 5 + 43  # 256 bits, base64url
    who = service.authenticate(raw, source="10.0.0.7")
    assert (who.subject, dict(who.roles), who.via, who.source) == (
        "ci-bot",
        {"a": Role.OPERATOR},
        "token",
        "10.0.0.7",
    )
    assert not who.platform_admin
    raw_site, _ = service.create_token(PLATFORM, SITE, Role.ADMIN, 60)
    assert service.authenticate(raw_site).platform_admin


def test_every_token_failure_reads_the_same(service: Service, clock: Clock) -> None:
    raw, _ = service.create_token(PLATFORM, "a", Role.MEMBER, 60)
    revoked, rec2 = service.create_token(PLATFORM, "a", Role.MEMBER, 3600)
    service.revoke_token(PLATFORM, rec2.token_id)
    messages = {
        failure(lambda: service.authenticate(revoked)),
        failure(lambda: service.authenticate("hpcb_" + "A" * 43)),
        failure(lambda: service.authenticate("")),
        failure(lambda: service.authenticate("not-a-token")),
        failure(lambda: service.authenticate(raw[:-1])),
    }
    clock.now += 61
    messages.add(failure(lambda: service.authenticate(raw)))
    assert messages == {
        AuthenticationError.MESSAGE + " (create a new token ('hpcbridge token create'))"
    }


def _all_rows_text(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            parts = [
                str(row)
                for table in inspect(conn).get_table_names()
                for row in conn.execute(text(f'SELECT * FROM "{table}"'))
            ]
    finally:
        engine.dispose()
    return "\n".join(parts)


def test_no_raw_token_in_database_audit_or_logs(
    service: Service,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw, record = service.create_token(PLATFORM, "a", Role.ADMIN, 3600, subject="x")
    service.authenticate(raw)
    service.revoke_token(PLATFORM, record.token_id)
    with pytest.raises(AuthenticationError):
        service.authenticate(raw)
    secret = raw.removeprefix("hpcb_")
    rows = _all_rows_text(settings.resolved_database_url)
    assert record.token_hash in rows  # the hash is there, so the dump did read the table
    assert secret not in rows
    assert all(secret not in json.dumps(r.details) for r in service.audit_list(PLATFORM))
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err + caplog.text
    assert secret not in (settings.home / "audit.head").read_text()


# -- OIDC ---------------------------------------------------------------------------------


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    return _rsa(), _rsa()  # the issuer's, and a stranger's


@pytest.fixture
def jwks_file(tmp_path: Path, keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> Path:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys[0].public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public | {"kid": "k1", "use": "sig"}]}))
    return path


@pytest.fixture
def oidc_service(store: Store, settings: Settings, clock: Clock, jwks_file: Path) -> Service:
    verifier = OidcVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=str(jwks_file), clock=clock)
    return make_service(store, settings, clock, oidc=verifier)


def _claims(clock: Clock, **changes: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "dana",
        "iat": int(clock.now) - 10,
        "nbf": int(clock.now) - 10,
        "exp": int(clock.now) + 600,
        "hpcbridge_roles": {"a": "member", "b": "viewer", "x": "superuser"},
    }
    claims.update(changes)
    return claims


def test_a_valid_jwt_maps_claims_to_subject_and_roles(
    oidc_service: Service, clock: Clock, keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> None:
    clock.now = time.time()  # PyJWT checks exp and nbf against the wall clock too
    token = jwt.encode(_claims(clock), keys[0], algorithm="RS256", headers={"kid": "k1"})
    who = oidc_service.authenticate(token)
    assert (who.subject, dict(who.roles), who.via) == (
        "dana",
        {"a": Role.MEMBER, "b": Role.VIEWER},
        "oidc",
    )


def test_every_jwt_failure_reads_the_same(
    oidc_service: Service,
    clock: Clock,
    keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
    jwks_file: Path,
) -> None:
    clock.now = time.time()
    issuer_key, stranger = keys

    def signed(key: Any = issuer_key, algorithm: str = "RS256", **changes: Any) -> str:
        return jwt.encode(
            _claims(clock, **changes), key, algorithm=algorithm, headers={"kid": "k1"}
        )

    public_pem = issuer_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    unsigned = jwt.encode(_claims(clock), None, algorithm="none")  # type: ignore[arg-type]
    cases = {
        "wrong signature": signed(key=stranger),
        "alg none": unsigned,
        "HMAC with the public key": _hs256_with(public_pem, _claims(clock)),
        "wrong audience": signed(aud="someone-else"),
        "wrong issuer": signed(iss="https://evil.example.test"),
        "expired": signed(exp=int(clock.now) - 1),
        "not yet valid": signed(nbf=int(clock.now) + 300),
        "no subject": signed(sub=""),
        "garbage": "a.b.c",
    }
    messages = {name: _failure_of(oidc_service, token) for name, token in cases.items()}
    assert len(set(messages.values())) == 1, messages


def _failure_of(service: Service, token: str) -> str:
    return failure(lambda: service.authenticate(token))


def _hs256_with(secret: bytes, claims: dict[str, Any]) -> str:
    """A token signed with HMAC, keyed with the issuer's public key (a classic confusion
    attack); built by hand since PyJWT refuses to sign with a PEM key as an HMAC secret."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"
