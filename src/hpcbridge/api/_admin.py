"""``/api/v1`` for operators and admins: nodes (drain/resume), the SLO report, tokens and
the audit log. Authorization is the service layer's; these routes only translate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from hpcbridge.api._auth import Caller, service_of
from hpcbridge.api._problems import ERROR_RESPONSES
from hpcbridge.api._schemas import (
    AuditOut,
    ChainReportOut,
    DrainRequest,
    NodeOut,
    TokenCreated,
    TokenOut,
    TokenRequest,
    jsonable,
)
from hpcbridge.errors import SpecError
from hpcbridge.security import AuditFilter, Role
from hpcbridge.spec import parse_duration_s

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/nodes", response_model=list[NodeOut], tags=["nodes"])
def list_nodes(request: Request, principal: Caller) -> list[NodeOut]:
    return [NodeOut.model_validate(jsonable(n)) for n in service_of(request).nodes(principal)]


@router.post("/nodes/{name}/drain", status_code=204, tags=["nodes"])
def drain_node(
    request: Request, principal: Caller, name: str, body: DrainRequest | None = None
) -> Response:
    """Take a node out of service (operators of the site)."""
    reason = (body or DrainRequest()).reason
    service_of(request).drain(principal, name, reason)
    return Response(status_code=204)


@router.post("/nodes/{name}/resume", status_code=204, tags=["nodes"])
def resume_node(request: Request, principal: Caller, name: str) -> Response:
    service_of(request).resume(principal, name)
    return Response(status_code=204)


@router.get("/slo", response_model=dict[str, Any], tags=["slo"])
def slo_report(request: Request, principal: Caller) -> dict[str, Any]:
    """SLIs, error budget left and burn rates of every SLO, from the jobs the caller sees."""
    found = service_of(request).slo_report(principal)
    return {"slos": [s.to_dict() if hasattr(s, "to_dict") else jsonable(s) for s in found]}


def _token_out(record: Any) -> dict[str, Any]:
    plain: dict[str, Any] = jsonable(record)
    plain.pop("token_hash", None)  # never leaves the store
    return plain


@router.post("/tokens", status_code=201, response_model=TokenCreated, tags=["tokens"])
def create_token(request: Request, principal: Caller, body: TokenRequest) -> TokenCreated:
    """A new token for a project and role; the raw token is in this answer only."""
    try:
        role = Role(body.role)
        ttl_s = parse_duration_s(body.ttl)
    except ValueError as exc:
        raise SpecError(
            f"invalid token request: {exc}",
            hint="role is admin, operator, member or viewer; ttl is e.g. 3600, 90m, 8h, 7d",
        ) from None
    raw, record = service_of(request).create_token(
        principal, body.project, role, ttl_s, subject=body.subject
    )
    return TokenCreated.model_validate(_token_out(record) | {"token": raw})


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
def list_tokens(
    request: Request,
    principal: Caller,
    project: Annotated[str | None, Query(max_length=200)] = None,
) -> list[TokenOut]:
    found = service_of(request).list_tokens(principal, project)
    return [TokenOut.model_validate(_token_out(r)) for r in found]


@router.delete("/tokens/{token_id}", response_model=TokenOut, tags=["tokens"])
def revoke_token(request: Request, principal: Caller, token_id: str) -> TokenOut:
    """Revoke a token: it stops working at once; revoking twice keeps the first time."""
    return TokenOut.model_validate(
        _token_out(service_of(request).revoke_token(principal, token_id))
    )


@router.get("/audit", response_model=list[AuditOut], tags=["audit"])
def audit_list(
    request: Request,
    principal: Caller,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=200)] = None,
    project: Annotated[str | None, Query(max_length=200)] = None,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    """Audit records in sequence order, after ``after_seq``."""
    query = AuditFilter(
        actor=actor, action=action, project=project, after_seq=after_seq, limit=limit
    )
    found = service_of(request).audit_list(principal, query)
    return [AuditOut.model_validate(jsonable(r)) for r in found]


@router.get("/audit/verify", response_model=ChainReportOut, tags=["audit"])
def audit_verify(request: Request, principal: Caller) -> ChainReportOut:
    """Check the whole hash chain against the exported head (platform admins)."""
    return ChainReportOut.model_validate(jsonable(service_of(request).audit_verify(principal)))
