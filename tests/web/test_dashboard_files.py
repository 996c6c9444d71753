"""The dashboard's files as the server ships them (no browser): every page module it
imports is served from the package, nothing comes from another origin, and pages carry a
Content-Security-Policy that allows only this server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from hpcbridge.api import Runtime, ServeOptions
from hpcbridge.api._dashboard import STATIC_DIR
from hpcbridge.config import Settings
from tests.api.conftest import Served, serve

# The one absolute URL allowed: SVG's namespace name, which is never fetched.
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
IMPORT = re.compile(r"""(?:from\s+|import\s*\(\s*|src=|href=)["']\.?/?([\w./-]+\.(?:js|css))["']""")


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    yield from serve(Runtime(settings, ServeOptions()), start=False)


def test_root_redirects_to_the_dashboard_with_a_strict_policy(served: Served) -> None:
    home = served.http.get("/")
    assert home.status_code == 307 and home.headers["location"] == "/ui/"
    page = served.http.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "content-security-policy" not in served.http.get("/healthz").headers


def test_every_file_the_pages_load_is_served(served: Served) -> None:
    wanted = {"index.html"}
    for path in STATIC_DIR.iterdir():
        wanted.update(IMPORT.findall(path.read_text()))
    assert {"app.js", "style.css", "jobs.js", "job.js", "slo.js", "charts.js"} <= wanted
    for name in sorted(wanted):
        answer = served.http.get(f"/ui/{name}")
        assert answer.status_code == 200, name
        assert answer.content == (STATIC_DIR / name).read_bytes()
    assert served.http.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert served.http.get("/ui/missing.js").status_code == 404


def test_nothing_is_loaded_from_another_origin() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text().replace(SVG_NAMESPACE, "")
        assert not re.search(r"https?://|[\"']//", text), f"{path.name} names another origin"
        assert ".innerHTML" not in text, f"{path.name}: build the page with dom.js, not markup"
