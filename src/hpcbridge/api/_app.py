"""The HTTP surface: ``/metrics`` and ``/healthz`` today; the REST API grows here.

Routes live in small routers mounted by ``create_app``; the ``Runtime`` (client, loops,
metrics registry) is created once and reached through ``app.state.runtime``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hpcbridge.api._options import ServeOptions
from hpcbridge.api._runtime import Runtime
from hpcbridge.config import Settings
from hpcbridge.logs import configure_logging
from hpcbridge.telemetry import configure_tracing, tracing_wanted

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


def create_app(runtime: Runtime, *, start: bool = True) -> FastAPI:
    """The ASGI app around ``runtime``; its loops start and stop with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start:
            runtime.start()
        try:
            yield
        finally:
            if start:
                runtime.stop()

    app = FastAPI(title="hpcbridge", version="0.1.0", lifespan=lifespan, docs_url=None)
    app.state.runtime = runtime
    app.include_router(ops)
    return app


def app_from_environment() -> FastAPI:
    """The app as ``hpcbridge serve`` runs it: Settings and options from HPCBRIDGE_* variables.

    An ASGI factory: ``uvicorn --factory hpcbridge.api:app_from_environment``.
    """
    configure_logging("INFO")
    settings = Settings()
    configure_tracing(tracing_wanted(settings.tracing, os.environ))
    return create_app(Runtime(settings, ServeOptions.from_env(os.environ)))
