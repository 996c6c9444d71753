"""The hpcbridge server (``hpcbridge serve``): HTTP endpoints around an embedded runtime.

Today: ``/metrics`` (Prometheus) and ``/healthz``; the reconciler loop and, when an
Alertmanager is configured, the built-in SLO evaluator run in the same process.
"""

from hpcbridge.api._app import app_from_environment, create_app
from hpcbridge.api._evaluator import SloEvaluator
from hpcbridge.api._options import ServeOptions
from hpcbridge.api._runtime import Health, Runtime

APP_FACTORY = "hpcbridge.api:app_from_environment"
"""Import string of the ASGI factory, for uvicorn (``factory=True``)."""

__all__ = [
    "APP_FACTORY",
    "Health",
    "Runtime",
    "ServeOptions",
    "SloEvaluator",
    "app_from_environment",
    "create_app",
]
