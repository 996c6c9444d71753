"""One data directory shared by the tests of a module: jobs are run once, then read many
times by the installed ``hpcbridge`` (tests/cli/conftest.py gives each test its own)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.cli.conftest import RunHpcbridge, installed_entry_point


def runner(home: Path, cwd: Path) -> RunHpcbridge:
    """Run the installed ``hpcbridge ARGS`` with ``home`` as its data directory."""
    script = installed_entry_point()
    base = {k: v for k, v in os.environ.items() if not k.startswith("HPCBRIDGE_")}
    base.update(
        HPCBRIDGE_HOME=str(home),
        HPCBRIDGE_POLL_INTERVAL_S="0.05",
        HPCBRIDGE_KILL_GRACE_S="1",
        COLUMNS="200",
    )

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            cwd=cwd,
            env=base | (env or {}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def spec(directory: Path, name: str, body: str) -> str:
    path = directory / f"{name}.yaml"
    path.write_text(f"apiVersion: hpcbridge/v1\nkind: Job\nname: {name}\n{body}")
    return str(path)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.stdout, (result.returncode, result.stderr)
    return json.loads(result.stdout)
