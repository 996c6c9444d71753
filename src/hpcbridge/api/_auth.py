"""Bearer authentication for every ``/api/v1`` route, and where the service is reached."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hpcbridge.errors import AuthenticationError
from hpcbridge.security import Principal

# auto_error=False: a missing header is answered like every other failure (one body).
_bearer = HTTPBearer(auto_error=False, description="A token from 'hpcbridge token create'.")


def service_of(request: Request) -> Any:
    """The service layer the app was created with (``hpcbridge.service.Service``)."""
    return request.app.state.service


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError()
    principal: Principal = service_of(request).authenticate(
        credentials.credentials.strip(), source=client_address(request)
    )
    return principal


Caller = Annotated[Principal, Depends(authenticated)]
