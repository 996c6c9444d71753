"""The HTTP surface: ``/metrics``, ``/healthz``, the REST API under ``/api/v1`` and the web
dashboard under ``/ui/``.

Routes live in small routers mounted by ``create_app``; the ``Runtime`` (client, loops,
metrics registry) is created once and reached through ``app.state.runtime``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hpcbridge.api import _problems as problems
from hpcbridge.api._admin import router as admin_router
from hpcbridge.api._bootstrap import BOOTSTRAP_TTL_S, write_bootstrap_token
from hpcbridge.api._dashboard import mount_dashboard
from hpcbridge.api._jobs import router as jobs_router
from hpcbridge.api._jobs import spec_schemas
from hpcbridge.api._options import ServeOptions
from hpcbridge.api._runtime import Runtime
from hpcbridge.config import Settings
from hpcbridge.logs import configure_logging
from hpcbridge.security import SITE, Principal, Role
from hpcbridge.service import Service
from hpcbridge.telemetry import annotate, configure_tracing, span, tracing_enabled, tracing_wanted

API_PREFIX = "/api/v1"
ops = APIRouter(tags=["operations"])


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@ops.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text exposition, computed from the store at scrape time."""
    return Response(generate_latest(_runtime(request).registry), media_type=CONTENT_TYPE_LATEST)


@ops.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 when the store answers and the reconciler loop runs; 503 otherwise."""
    health = _runtime(request).health()
    return JSONResponse(health.detail, status_code=200 if health.ok else 503)


def create_app(runtime: Runtime, *, start: bool = True, service: Service | None = None) -> FastAPI:
    """The ASGI app around ``runtime``; its loops start and stop with the app's lifespan.
    ``service`` (default: one over the runtime's client) answers ``/api/v1``."""
    if service is None:
        service = Service(runtime.client.store, runtime.settings, client=runtime.client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start:
            runtime.start()
        try:
            yield
        finally:
            if start:
                runtime.stop()

    app = FastAPI(
        title="hpcbridge",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.runtime = runtime
    app.state.service = service
    app.include_router(ops)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(jobs_router)
    api.include_router(admin_router)
    app.include_router(api)
    problems.install(app)
    _with_spec_schemas(app)
    mount_dashboard(app)

    @app.middleware("http")
    async def traced(request: Request, call_next: Any) -> Any:
        if not tracing_enabled():
            return await call_next(request)
        with span("hpcbridge.api_request", method=request.method, route=request.url.path) as s:
            response = await call_next(request)
            annotate(s, status=response.status_code)
            return response

    return app


def _with_spec_schemas(app: FastAPI) -> None:
    """Put JobSpec's schema (the body of POST /jobs) into the document's components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(spec_schemas())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_environment() -> FastAPI:
    """The app as ``hpcbridge serve`` runs it: Settings and options from HPCBRIDGE_* variables.

    An ASGI factory: ``uvicorn --factory hpcbridge.api:app_from_environment``.
    """
    configure_logging("INFO")
    settings = Settings()
    configure_tracing(tracing_wanted(settings.tracing, os.environ))
    runtime = Runtime(settings, ServeOptions.from_env(os.environ))
    service = Service(runtime.client.store, settings, client=runtime.client)
    bootstrap(service)
    return create_app(runtime, service=service)


def bootstrap(service: Service) -> None:
    """On first start, an admin token in a file only this user can read (the log says where)."""
    admin = Principal.local_user()
    write_bootstrap_token(
        service.settings.home,
        has_tokens=lambda: bool(service.list_tokens(admin)),
        create=lambda: service.create_token(
            admin, SITE, Role.ADMIN, BOOTSTRAP_TTL_S, subject="bootstrap-admin"
        )[0],
    )
