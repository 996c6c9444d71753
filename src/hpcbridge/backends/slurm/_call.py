"""The one place that runs Slurm's commands (like dask-jobqueue's ``_call``).

Every failure names the argv, exit status, stdout and stderr. Whether it is worth retrying
is decided from what Slurm printed: a controller that cannot be reached, a timeout or a busy
slurmctld is transient; anything else (a rejected submission, an unknown option) permanent.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence

from hpcbridge.errors import BackendError, PermanentBackendError, TransientBackendError

TRANSIENT_PATTERNS = re.compile(
    "|".join(
        [
            r"Unable to contact slurm controller",
            r"Socket timed out",
            r"Connection refused",
            r"Connection reset",
            r"temporarily unable to accept",
            r"Resource temporarily unavailable",
            r"Transport endpoint is not connected",
            r"Slurm backup controller in standby mode",
            r"Unable to establish connection",
            r"slurmdbd.*(not responding|connection)",
            r"Zero Bytes were transmitted or received",
            r"Communication connection failure",
            r"Failed while looking for jobs",
            r"Unable to open connection",
            r"Protocol authentication error",
            r"Unexpected message received",
        ]
    ),
    re.IGNORECASE,
)
"""What Slurm's tools print when slurmctld/slurmdbd are down, restarting or overloaded."""


def is_transient(text: str) -> bool:
    return bool(TRANSIENT_PATTERNS.search(text))


def _excerpt(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def describe(argv: Sequence[str], returncode: int | None, stdout: str, stderr: str) -> str:
    what = f"`{' '.join(argv)}`"
    status = "timed out" if returncode is None else f"exited with {returncode}"
    parts = [f"{what} {status}"]
    if stderr.strip():
        parts.append(f"stderr: {_excerpt(stderr)}")
    if stdout.strip():
        parts.append(f"stdout: {_excerpt(stdout, 500)}")
    return "; ".join(parts)


def call(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    input: str | None = None,
    timeout_s: float = 60.0,
    transient_by_default: bool = True,
) -> str:
    """Run ``argv`` and return its stdout, or raise a BackendError that says why not.

    ``transient_by_default`` decides an unrecognised failure: True for read-only commands
    (asking again later cannot hurt), False for ``sbatch`` (a rejection stays a rejection).
    """
    return call_output(
        argv,
        env=env,
        input=input,
        timeout_s=timeout_s,
        transient_by_default=transient_by_default,
    )[0]


def call_output(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    input: str | None = None,
    timeout_s: float = 60.0,
    transient_by_default: bool = True,
) -> tuple[str, str]:
    """``call``, returning stdout and stderr (``sbatch --test-only`` answers on stderr)."""
    try:
        done = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            env=dict(env),
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise TransientBackendError(
            describe(argv, None, stdout, stderr) + f" after {timeout_s:g} s",
            argv=argv,
            stdout=stdout,
            stderr=stderr,
            hint="slurmctld is slow or down; hpcbridge will ask again",
        ) from exc
    except OSError as exc:
        raise PermanentBackendError(
            f"cannot run {argv[0]!r}: {exc}",
            argv=argv,
            hint="install Slurm's client commands on this host and put them on PATH, "
            "or use transport: rest",
        ) from exc
    if done.returncode == 0:
        return done.stdout, done.stderr
    raise classify_failure(argv, done.returncode, done.stdout, done.stderr, transient_by_default)


def classify_failure(
    argv: Sequence[str], returncode: int, stdout: str, stderr: str, transient_by_default: bool
) -> BackendError:
    message = describe(argv, returncode, stdout, stderr)
    if is_transient(stderr) or is_transient(stdout):
        return TransientBackendError(
            message,
            argv=argv,
            returncode=returncode,
            stdout=stdout,
            stderr=stderr,
            hint="Slurm's controller is unreachable or busy; hpcbridge will ask again",
        )
    kind = TransientBackendError if transient_by_default else PermanentBackendError
    return kind(message, argv=argv, returncode=returncode, stdout=stdout, stderr=stderr)
