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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

# argv reaches the job as "$@": no user string is ever parsed by the shell. The command
# runs at most once per attempt: not after a kill order, and not by a second shim of the
# same attempt (a control plane restarted before the first wrote its pid): the pid file is
# created with noclobber, and only the shim that created it runs the command.
_SHIM = (
    'd=$1; shift; trap : TERM INT HUP USR1 USR2; [ -e "$d/killed" ] && exit 0; '
    'set -C; { echo $$ >"$d/pid"; } 2>/dev/null || exit 0; set +C; '
    '"$@"; rc=$?; echo "$rc" >"$d/exit"; exit "$rc"'
)
PID_FILE, EXIT_FILE, KILL_FILE, GPU_FILE = "pid", "exit", "killed", "gpus"
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
    make_dirs(status_dir.parent, status_dir, cwd)
    out = _open_log(status_dir / STDOUT_FILE)
    try:
        err = _open_log(status_dir / STDERR_FILE)
        try:
            return subprocess.Popen(
                ["/bin/sh", "-c", _SHIM, "hpcbridge-shim", str(status_dir), *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd,
                env=env,
                start_new_session=True,  # own process group; outlives the control plane
            )
        finally:
            os.close(err)
    finally:
        os.close(out)


def _open_log(path: Path) -> int:
    """A log file for appending, as ``open(path, "ab")`` makes it, without a file object."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)


def make_dirs(*paths: Path) -> None:
    """Create each path in order (a parent before its child): one system call apiece."""
    for path in paths:
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        except FileNotFoundError:
            path.mkdir(parents=True, exist_ok=True)


def is_alive(pid: int, status_dir: Path) -> bool:
    """``pid`` is still the shim of this attempt: alive, not a zombie, not a reused pid."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and (
            str(status_dir) in process.cmdline()[3:5]
        )
    except psutil.Error:
        return False


def started_at(status_dir: Path) -> float | None:
    """Wall-clock start: when the shim wrote its pid file."""
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
