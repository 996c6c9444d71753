"""A PostgreSQL database for the store tests: the server of scripts/postgres-cluster.

The server's URL comes from HPCBRIDGE_TEST_POSTGRES_URL, else from the file the script
writes. When no server answers, root starts one (the script installs Debian's package if
needed); anyone else skips the tests that need it. Each test gets a schema of its own,
dropped afterwards, selected through the connection's search_path.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from hpcbridge.store import SqlStore

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "postgres-cluster"
STATE = Path(os.environ.get("HPCBRIDGE_POSTGRES_STATE", "/var/lib/hpcbridge-postgres"))
SKIP_REASON = "needs PostgreSQL: run scripts/postgres-cluster start (needs root to install)"


def _configured_url() -> str | None:
    url = os.environ.get("HPCBRIDGE_TEST_POSTGRES_URL")
    if url:
        return url
    try:
        return (STATE / "url").read_text().strip() or None
    except OSError:
        return None


def _answers(url: str) -> bool:
    try:
        engine = create_engine(url)
    except Exception:  # the driver is missing, or the URL is not one
        return False
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a running PostgreSQL test database (started here when root)."""
    url = _configured_url()
    if url is not None and _answers(url):
        return url
    if os.geteuid() != 0:
        pytest.skip(SKIP_REASON)
    started = subprocess.run(
        [str(SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False
    )
    url = _configured_url()
    if started.returncode != 0 or url is None or not _answers(url):
        pytest.fail(
            f"scripts/postgres-cluster start failed (exit {started.returncode}) or its "
            f"database does not answer at {url}:\n{started.stderr}"
        )
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of an empty schema of its own in the test database."""
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(postgres_server)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(postgres_server).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[SqlStore]:
    store = SqlStore(postgres_url)
    yield store
    store.close()
