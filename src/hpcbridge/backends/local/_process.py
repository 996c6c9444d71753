"""One attempt as a process group, with its status kept in files so a restart finds it again.

The job runs under a tiny POSIX-sh shim that writes its own pid first and the exit status
last, into the attempt's directory. The shim survives SIGTERM (the job does not), so even
when the control plane was killed the true outcome of every attempt is on disk.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

# argv reaches the job as "$@": no user string is ever parsed by the shell.
_SHIM = (
    'd=$1; shift; echo $$ >"$d/pid"; trap : TERM INT HUP USR1 USR2; '
    '"$@"; rc=$?; echo "$rc" >"$d/exit"; exit "$rc"'
)
PID_FILE, EXIT_FILE, KILL_FILE = "pid", "exit", "killed"
STDOUT_FILE, STDERR_FILE = "stdout.log", "stderr.log"


@dataclass(frozen=True, slots=True)
class Exit:
    code: int
    ended_at: float

    @property
    def signal(self) -> int | None:
        # sh reports death by signal N as 128+N.
        return self.code - 128 if self.code > 128 else None


@dataclass(frozen=True, slots=True)
class KillOrder:
    failure_class: str
    time: float


def launch(
    status_dir: Path, argv: Sequence[str], env: Mapping[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    status_dir.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with open(status_dir / STDOUT_FILE, "ab") as out, open(status_dir / STDERR_FILE, "ab") as err:
        return subprocess.Popen(
            ["/bin/sh", "-c", _SHIM, "hpcbridge-shim", str(status_dir), *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,  # own process group; outlives the control plane
        )


def create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def is_alive(pid: int, started: float) -> bool:
    """The process ``pid`` created at ``started`` (psutil's clock) still runs, not a reused pid."""
    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - started) < 0.05 and (
            process.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def started_at(status_dir: Path) -> float | None:
    """Wall-clock start: when the shim wrote its pid file."""
    try:
        return (status_dir / PID_FILE).stat().st_mtime
    except FileNotFoundError:
        return None


def read_pid(status_dir: Path) -> int | None:
    text = _read_complete(status_dir / PID_FILE)
    return int(text) if text else None


def read_exit(status_dir: Path) -> Exit | None:
    path = status_dir / EXIT_FILE
    text = _read_complete(path)
    if not text:
        return None
    return Exit(code=int(text), ended_at=path.stat().st_mtime)


def read_kill_order(status_dir: Path) -> KillOrder | None:
    text = _read_complete(status_dir / KILL_FILE)
    if not text:
        return None
    failure_class, when = text.split()
    return KillOrder(failure_class, float(when))


def order_kill(status_dir: Path, pid: int, failure_class: str, now: float) -> None:
    """Record why before signalling, so the outcome is known even if we crash right after."""
    if read_kill_order(status_dir) is None:
        tmp = status_dir / f"{KILL_FILE}.tmp"
        tmp.write_text(f"{failure_class} {now}\n")
        os.replace(tmp, status_dir / KILL_FILE)
    signal_group(pid, signal.SIGTERM)


def signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def group_rss_mb(pid: int) -> float | None:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total / (1024 * 1024)


def wait_gone(pid: int, started: float, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(pid, started):
            return True
        time.sleep(0.02)
    return False


def _read_complete(path: Path) -> str | None:
    """File content if fully written (the writer ends it with a newline), else None."""
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return text.strip() if text.endswith("\n") else None
