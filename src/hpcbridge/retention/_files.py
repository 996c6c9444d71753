"""Where one attempt's files are on this machine: its logs, its status directory and,
when hpcbridge made it, the directory the program ran in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hpcbridge.backends import AttemptRef, Backend
from hpcbridge.store import Attempt

LOCAL_BACKEND = "local"
LOCAL_WORK_DIR = "work"
"""The local executor runs each attempt in ``<status dir>/work``."""


@dataclass(frozen=True, slots=True)
class AttemptFiles:
    """An attempt's files; None where this machine cannot tell."""

    stdout: Path | None
    stderr: Path | None
    status_dir: Path | None
    """hpcbridge's own directory of the attempt: pid, exit and job-side event files (and,
    on the local executor, the logs and the work directory)."""
    work_dir: Path | None
    """Where the program ran, when hpcbridge made that directory (the local executor). A
    Slurm job runs in its cluster's ``workdir`` or the directory it was submitted from:
    the user's, never listed here."""


def attempt_files(attempt: Attempt, backend: Backend | None) -> AttemptFiles:
    """Where ``attempt``'s files are; ``backend`` (None: not loadable here) names its logs."""
    stdout = stderr = None
    if backend is not None:
        ref = AttemptRef(
            attempt.job_id, attempt.number, attempt.token, attempt.native_id, attempt.details
        )
        try:
            stdout, stderr = backend.log_paths(ref)
        except Exception:  # a backend whose configuration is gone cannot say
            stdout = stderr = None
    status_dir = Path(attempt.status_dir) if attempt.status_dir else None
    work_dir = (
        status_dir / LOCAL_WORK_DIR
        if status_dir is not None and attempt.backend == LOCAL_BACKEND
        else None
    )
    return AttemptFiles(stdout, stderr, status_dir, work_dir)
