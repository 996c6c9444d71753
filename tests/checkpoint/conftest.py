"""Shared fixtures: every test gets a clean HPCBRIDGE_* environment and its own directories."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.checkpoint import Checkpointer


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("HPCBRIDGE_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def status_dir(tmp_path: Path) -> Path:
    return tmp_path / "status"


@pytest.fixture
def make_ckpt(tmp_path: Path, status_dir: Path) -> Callable[..., Checkpointer]:
    def make(**options: Any) -> Checkpointer:
        options.setdefault("job_id", "job-1")
        options.setdefault("attempt", 1)
        options.setdefault("status_dir", status_dir)
        return Checkpointer(tmp_path / "ckpt", **options)

    return make
