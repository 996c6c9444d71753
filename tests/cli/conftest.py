"""Fixtures for tests that run the installed ``hpcbridge`` entry point as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

RunHpcbridge = Callable[..., subprocess.CompletedProcess[str]]


def installed_entry_point() -> Path:
    """The console script pip installed next to this interpreter (``.venv/bin/hpcbridge``)."""
    bin_dir = Path(sys.executable).parent
    found = shutil.which("hpcbridge", path=str(bin_dir))
    if found is None:
        pytest.fail(f"no 'hpcbridge' script in {bin_dir}: install the project (scripts/test)")
    return Path(found)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of one run: no HPCBRIDGE_* of the developer, a data directory of
    its own under tmp_path, and no settings file (both named where there is none)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCBRIDGE_")}
    env.update(HPCBRIDGE_HOME=str(tmp_path / "home"), COLUMNS="200")
    env.update(
        HPCBRIDGE_CONFIG=str(tmp_path / "config" / "config.toml"),
        HPCBRIDGE_SITE_CONFIG=str(tmp_path / "config" / "site-config.toml"),
    )
    return env


@pytest.fixture
def hpcbridge(cli_env: dict[str, str], tmp_path: Path) -> RunHpcbridge:
    """Run the installed ``hpcbridge ARGS`` in ``tmp_path``; ``env=`` adds variables."""
    script = installed_entry_point()

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            cwd=tmp_path,
            env=cli_env | (env or {}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def assert_one_line_usage_error(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2 and ``error: ...`` on stderr, at most followed by ``Try '... --help'``; no
    traceback anywhere. Returns the error line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 2, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    if len(lines) == 2:
        assert lines[1].startswith("Try '") and lines[1].endswith("--help' for help."), lines
    return lines[0]
