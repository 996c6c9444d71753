"""A real ``hpcbridge serve`` on a loopback port and Debian's Chromium driven by Playwright.

Tokens are minted with ``hpcbridge token create`` in the server's home, as an operator
would. Screenshots go to ``$HPCBRIDGE_WEB_ARTIFACTS`` (default: the test's tmp_path).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.api._procs import hpcbridge_argv, hpcbridge_env, start, stop, wait_ready
from tests.api.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
# Generous waits: CI shares two cores between the server, its jobs and the browser.
expect.set_options(timeout=20_000)
# (name, project, role): who the tests log in as.
PEOPLE = (
    ("member_a", "a", "member"),
    ("viewer_a", "a", "viewer"),
    ("member_b", "b", "member"),
    ("site_admin", "*", "admin"),
)


@dataclass
class Server:
    url: str
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(
            method, f"{self.url}/api/v1{path}", headers=headers, timeout=10, **kwargs
        )


def _token(env: dict[str, str], project: str, role: str, subject: str) -> str:
    argv = hpcbridge_argv(
        "token", "create", "--project", project, "--role", role, "--ttl", "2h",
        "--subject", subject, "--json",
    )  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True)
    token: str = json.loads(done.stdout)["token"]
    return token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("web")
    env = hpcbridge_env(root / "home")
    tokens = {who: _token(env, project, role, who) for who, project, role in PEOPLE}
    port = free_port()
    log = root / "serve.log"
    process = start(hpcbridge_argv("serve", "--port", str(port)), log, env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/healthz", process, log, timeout_s=60)
        yield Server(url, tokens)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian's chromium (scripts/test installs it)")
    with sync_playwright() as playwright:
        yield _launch(playwright)


def _launch(playwright: Playwright) -> Browser:
    # Launched by its path: Playwright never downloads a browser here. --no-sandbox
    # because CI runs as root, where Chromium's sandbox refuses to start.
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("HPCBRIDGE_WEB_ARTIFACTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    print(f"dashboard screenshots: {where}")
    return where


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (empty sessionStorage) per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
