"""Where a job was submitted from: code version, hpcbridge version, interpreter, host."""

from __future__ import annotations

import platform
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hpcbridge

SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL|AUTH|COOKIE", re.IGNORECASE)
REDACTED = "<redacted>"


def without_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """Variables whose names look like secrets keep their name, never their value."""
    return {name: REDACTED if SECRET.search(name) else value for name, value in env.items()}


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def origin(submit_dir: str | None) -> dict[str, Any]:
    """What produced the submission; the git commit and whether the tree had uncommitted
    changes when it was submitted from a repository."""
    found: dict[str, Any] = {
        "hpcbridge_version": hpcbridge.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }
    if submit_dir is not None:
        commit = _git(Path(submit_dir), "rev-parse", "HEAD")
        if commit:
            status = _git(Path(submit_dir), "status", "--porcelain", "--untracked-files=no")
            found["git"] = {"commit": commit, "dirty": bool(status)}
    return found
