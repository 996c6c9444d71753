"""One attempt as a process group, with its status kept in files so a restart finds it again.

The launcher process (``_launcher``) claims the attempt's pid file, starts the job, and
writes its exit status before reaping it; this module reads those files, writes kill
orders and signals process groups for the control plane.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from hpcbridge.backends.local import _launcher

# The files of an attempt's status directory, as the launcher writes them.
PID_FILE, EXIT_FILE, KILL_FILE, GPU_FILE = (
    _launcher.PID_FILE,
    _launcher.EXIT_FILE,
    _launcher.KILL_FILE,
    _launcher.GPU_FILE,
)
STDOUT_FILE, STDERR_FILE = _launcher.STDOUT_FILE, _launcher.STDERR_FILE
_CLOCK_SLACK_S = 1.0  # a process's start time is derived from the boot time, in whole seconds


@dataclass(frozen=True, slots=True)
class Exit:
    code: int
    ended_at: float

    @property
    def signal(self) -> int | None:
        # Death by signal N is recorded as 128+N, as a shell reports it.
        return self.code - 128 if self.code > 128 else None


@dataclass(frozen=True, slots=True)
class KillOrder:
    failure_class: str
    time: float


def is_alive(pid: int, status_dir: Path) -> bool:
    """``pid`` is still this attempt's process: it exists (a zombie too: its launcher has
    not recorded its exit yet) and started before its pid file was written, so it is not
    a later process that was given the same pid."""
    try:
        written = (status_dir / PID_FILE).stat().st_mtime
        return psutil.Process(pid).create_time() <= written + _CLOCK_SLACK_S
    except (OSError, psutil.Error):
        return False


def started_at(status_dir: Path) -> float | None:
    """Wall-clock start: when the launcher wrote the pid file (None: never claimed)."""
    try:
        return (status_dir / PID_FILE).stat().st_mtime
    except FileNotFoundError:
        return None


def write_gpu_ids(status_dir: Path, gpu_ids: Sequence[int]) -> None:
    status_dir.mkdir(parents=True, exist_ok=True)
    (status_dir / GPU_FILE).write_text(",".join(map(str, gpu_ids)) + "\n")


def read_gpu_ids(status_dir: Path) -> list[int]:
    """GPUs an attempt holds, so a restarted control plane does not hand them out twice."""
    text = _read_complete(status_dir / GPU_FILE)
    return [int(i) for i in text.split(",") if i] if text else []


def read_pid(status_dir: Path) -> int | None:
    text = _read_complete(status_dir / PID_FILE)
    return int(text) if text else None


def read_exit(status_dir: Path) -> Exit | None:
    text, mtime = _read_with_mtime(status_dir / EXIT_FILE)
    if not text:
        return None
    return Exit(code=int(text), ended_at=mtime)


def read_kill_order(status_dir: Path) -> KillOrder | None:
    text = _read_complete(status_dir / KILL_FILE)
    if not text:
        return None
    failure_class, when = text.split()
    return KillOrder(failure_class, float(when))


def order_kill(status_dir: Path, pid: int | None, failure_class: str, now: float) -> None:
    """Record why before signalling, so the outcome is known even if we crash right after."""
    if read_kill_order(status_dir) is None:
        status_dir.mkdir(parents=True, exist_ok=True)
        tmp = status_dir / f"{KILL_FILE}.tmp"
        tmp.write_text(f"{failure_class} {now}\n")
        os.replace(tmp, status_dir / KILL_FILE)
    if pid is not None:
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


def _read_complete(path: Path) -> str | None:
    """File content if fully written (the writer ends it with a newline), else None."""
    return _read_with_mtime(path)[0]


def _read_with_mtime(path: Path) -> tuple[str | None, float]:
    """``_read_complete`` and the file's mtime, from one open (called for every attempt at
    every poll: plain system calls, no file object)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None, 0.0
    try:
        chunks = [os.read(fd, 4096)]
        while chunks[-1]:
            chunks.append(os.read(fd, 4096))
        mtime = os.fstat(fd).st_mtime
    finally:
        os.close(fd)
    text = b"".join(chunks).decode()
    return (text.strip() if text.endswith("\n") else None), mtime
