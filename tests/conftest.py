"""Fixtures shared by the unit and contract suites: settings under tmp_path and a spec factory.

Every fixture here is explicit about each setting, so no ``HPCBRIDGE_*`` variable of the
developer's shell and no real data directory can leak into a test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from hpcbridge.config import Settings
from hpcbridge.spec import JobSpec, load_spec_document


def spec_document(**fields: Any) -> dict[str, Any]:
    """A minimal valid JobSpec document; ``fields`` replace or add top-level keys."""
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "test-job",
        "command": ["true"],
    }
    document.update(fields)
    return {key: value for key, value in document.items() if value is not None}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings confined to ``tmp_path`` with short periods, suitable for real processes."""
    home = tmp_path / "home"
    return Settings(
        home=home,
        database_url=f"sqlite:///{home / 'hpcbridge.db'}",
        required_tags=(),
        local_cpus=4,
        local_mem_mb=8192,
        local_gpus=0,
        poll_interval_s=0.05,
        kill_grace_s=1.0,
        lost_grace_s=5.0,
    )


@pytest.fixture
def make_spec() -> Callable[..., JobSpec]:
    """Build a validated JobSpec: ``make_spec(resources={"walltime": "1h"})``."""

    def make(**fields: Any) -> JobSpec:
        return load_spec_document(spec_document(**fields), source="test")

    return make


@pytest.fixture(autouse=True, scope="session")
def _no_settings_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No config.toml of the developer's or of /etc reaches a test (nor the processes it
    starts): both settings files are named in an empty directory. Tests of the files name
    their own."""
    directory = tmp_path_factory.mktemp("settings-files")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPCBRIDGE_CONFIG", str(directory / "config.toml"))
        patch.setenv("HPCBRIDGE_SITE_CONFIG", str(directory / "site-config.toml"))
        yield


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging() binds structlog and the root logger to the (captured) stderr of
    the moment; put both back so later tests do not write to a closed capture."""
    saved = structlog.get_config()
    handlers = list(logging.getLogger().handlers)
    yield
    structlog.configure(**saved)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
