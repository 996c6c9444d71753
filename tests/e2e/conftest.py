"""Fixtures for tests that drive the real ``hpcbridge`` command in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e._cli import REPO, RunCli


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCBRIDGE_")}
    env.update(
        HPCBRIDGE_HOME=str(tmp_path / "home"),
        HPCBRIDGE_POLL_INTERVAL_S="0.05",
        HPCBRIDGE_KILL_GRACE_S="2",
        COLUMNS="200",
    )
    return env


@pytest.fixture
def hpcbridge(cli_env: dict[str, str]) -> RunCli:
    """Run ``hpcbridge ARGS`` as a user would, from the repository root."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "hpcbridge", *args],
            cwd=REPO,
            env=cli_env,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return result

    return run
