"""The web dashboard: static pages under ``/ui/`` that call ``/api/v1`` with the user's token.

Everything it needs ships in ``hpcbridge/api/static`` (plain JS modules, CSS, no build step
and nothing from a CDN), so it works offline. It holds no data and no rights of its own:
every page is what the API answers the token, so RBAC is the API's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

DASHBOARD_PATH = "/ui"
STATIC_DIR = Path(__file__).with_name("static")

# Only this origin's files and API; no inline script or style, no framing.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/ui/``; ``/`` redirects there."""
    app.mount(DASHBOARD_PATH, StaticFiles(directory=STATIC_DIR, html=True), name="dashboard")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(f"{DASHBOARD_PATH}/")

    @app.middleware("http")
    async def dashboard_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.url.path.startswith(DASHBOARD_PATH):
            response.headers.update(_SECURITY_HEADERS)
        return response
