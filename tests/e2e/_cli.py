"""Helpers for tests that drive the real ``hpcbridge`` command in subprocesses."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def write_spec(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(body)
    return path
