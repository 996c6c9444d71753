"""The local executor's launcher: one long-lived process that starts, reaps and records jobs.

The control plane starts it (``python _launcher.py``, by path: it imports nothing but the
standard library, so it starts in milliseconds and never waits on the control plane's GIL)
and hands it attempts over a pipe, one JSON object a line. It keeps them in priority order
and starts each as soon as it fits in this machine's CPUs, memory and GPUs, so that the
next job starts the moment a slot frees, whatever the control plane is busy with.

For each attempt, in its status directory, it keeps the guarantees the per-job shell shim
kept before it:

- the command runs at most once per attempt: the pid file is created with ``O_EXCL``
  before the process is spawned, and only the launcher that created it spawns;
- a kill order (the ``killed`` file) is honoured before the start, and checked again once
  the pid is on disk, so that an order racing the start signals the new process group;
- the exit status is on disk before the process is reaped (``waitid`` with ``WNOWAIT``):
  a process that is gone has left its status, unless the launcher itself died;
- each job is its own session and process group, and outlives the control plane: when
  the pipe closes (the control plane exited or was killed) the launcher drops what it
  has not started, records every running job's end, and exits after the last one.

If the launcher itself is killed (SIGKILL), its running jobs go on, but no one records how
they end: the control plane reports such an attempt ``lost`` once its process is gone, and
the retry policy decides; attempts it had not started are started by a new launcher.

Messages in: ``capacity`` (first), ``queue``, ``drop``, ``reserve``, ``release``, ``wake``,
``environ``. Out: ``started``, ``skipped``, ``exited``.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import json
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

PID_FILE, EXIT_FILE, KILL_FILE, GPU_FILE = "pid", "exit", "killed", "gpus"
STDOUT_FILE, STDERR_FILE = "stdout.log", "stderr.log"
NAME = "hpcbridge-launcher"  # the prefix of what it writes to a job's error log
EXIT_NOT_FOUND, EXIT_NOT_EXECUTABLE = 127, 126  # what a shell returns for the same

Need = tuple[int, int, int]  # cpus, mem_mb, gpus


@dataclass(order=True)
class _Entry:
    order: tuple[Any, ...]
    token: str = field(compare=False)
    job: dict[str, Any] = field(compare=False)


@dataclass
class _Running:
    token: str
    status_dir: str
    child: subprocess.Popen[bytes]


class Launcher:
    def __init__(self, out: int) -> None:
        self._out = out
        self._capacity: Need = (1, 0, 0)
        self._drain_file = ""
        self._queue: list[_Entry] = []
        self._dropped: set[str] = set()
        self._in_use: dict[str, tuple[Need, list[int]]] = {}
        self._running: dict[int, _Running] = {}  # pid -> ...
        self._environ = dict(os.environ)
        self._replies: list[bytes] = []
        self.closed = False

    # -- messages ----------------------------------------------------------------------------

    def handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "capacity":
            self._capacity = _need(message["need"])
            self._drain_file = str(message["drain_file"])
        elif op == "queue":
            token = str(message["token"])
            self._dropped.discard(token)
            heapq.heappush(self._queue, _Entry(tuple(message["order"]), token, message))
        elif op == "drop":
            self._dropped.add(str(message["token"]))
        elif op == "reserve":  # a job another launcher started holds its slot here too
            gpu_ids = [int(i) for i in message["gpu_ids"]]
            self._in_use[str(message["token"])] = (_need(message["need"]), gpu_ids)
        elif op == "release":
            token = str(message["token"])
            if not any(r.token == token for r in self._running.values()):
                self._in_use.pop(token, None)
        elif op == "environ":
            self._environ = dict(message["env"])
        # "wake": nothing to do but the start round that follows every batch of messages

    def close(self) -> None:
        """The control plane is gone: nothing new starts; running jobs are seen to the end."""
        self.closed = True
        self._queue.clear()

    def _reply(self, **message: Any) -> None:
        if not self.closed:
            self._replies.append(json.dumps(message).encode() + b"\n")

    def flush(self) -> None:
        data, self._replies = b"".join(self._replies), []
        try:
            while data:
                data = data[os.write(self._out, data) :]
        except OSError:  # the control plane is gone
            self.close()

    @property
    def idle(self) -> bool:
        return self.closed and not self._running

    # -- starting ----------------------------------------------------------------------------

    def start_ready(self) -> None:
        """Start queued jobs in strict order while the head fits (a big job is never
        starved by small ones); nothing while the node is drained."""
        if not self._queue or (self._drain_file and os.path.exists(self._drain_file)):
            return
        while self._queue:
            head = self._queue[0]
            if head.token in self._dropped:
                heapq.heappop(self._queue)
                self._dropped.discard(head.token)
                continue
            need = _need(head.job["need"])
            gpu_ids = self._fit(need)
            if gpu_ids is None:
                return
            heapq.heappop(self._queue)
            self._start(head.token, head.job, need, gpu_ids)

    def _fit(self, need: Need) -> list[int] | None:
        """The GPU ids ``need`` would get if it fits beside what runs now, else None."""
        used = [sum(n[i] for n, _ in self._in_use.values()) for i in range(3)]
        if any(used[i] + need[i] > self._capacity[i] for i in range(3)):
            return None
        taken = {i for _, ids in self._in_use.values() for i in ids}
        return [i for i in range(self._capacity[2]) if i not in taken][: need[2]]

    def _start(self, token: str, job: dict[str, Any], need: Need, gpu_ids: list[int]) -> None:
        status_dir = str(job["dir"])
        if os.path.exists(os.path.join(status_dir, KILL_FILE)):
            self._reply(op="skipped", token=token, why="killed")
            return
        cwd = str(job["cwd"])
        make_dirs(os.path.dirname(status_dir), status_dir, cwd)
        try:  # the claim: whoever creates the pid file runs the command, no one else
            pid_fd = os.open(
                os.path.join(status_dir, PID_FILE),
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                0o644,
            )
        except FileExistsError:
            self._reply(op="skipped", token=token, why="claimed")
            return
        env = {**self._environ, **job["env"]}
        if gpu_ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpu_ids))
            _write(os.path.join(status_dir, GPU_FILE), ",".join(map(str, gpu_ids)) + "\n")
        try:
            child = _spawn(status_dir, list(job["argv"]), env, cwd)
        except OSError as exc:  # it never ran: its status says so, as a shell's would
            os.close(pid_fd)
            _write(os.path.join(status_dir, EXIT_FILE), f"{_spawn_failed(status_dir, cwd, exc)}\n")
            self._reply(op="exited", token=token)
            return
        try:
            os.write(pid_fd, f"{child.pid}\n".encode())
        finally:
            os.close(pid_fd)
        self._in_use[token] = (need, gpu_ids)
        self._running[child.pid] = _Running(token, status_dir, child)
        # A kill ordered while this one was starting found no pid to signal: the order is
        # written before the pid is read, and the pid before this check, so one of us sees it.
        if os.path.exists(os.path.join(status_dir, KILL_FILE)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGTERM)
        self._reply(op="started", token=token, pid=child.pid, need=need, gpu_ids=gpu_ids)

    # -- reaping -----------------------------------------------------------------------------

    def reap(self) -> None:
        """Record the exit status of every child that ended, then reap it."""
        while True:
            ended = _next_exit()
            if ended is None:
                return
            pid, code = ended
            running = self._running.pop(pid, None)
            if running is not None:
                _write(os.path.join(running.status_dir, EXIT_FILE), f"{code}\n")
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # reaped only now that its status is on disk
            if running is not None:
                running.child.returncode = code
                self._in_use.pop(running.token, None)
                self._reply(op="exited", token=running.token)


def _need(values: list[int]) -> Need:
    cpus, mem_mb, gpus = values
    return int(cpus), int(mem_mb), int(gpus)


def _next_exit() -> tuple[int, int] | None:
    """A child that ended and is not reaped yet, with its status as a shell reports it
    (death by signal N is 128+N). Left unreaped where ``waitid`` is available."""
    if hasattr(os, "waitid"):
        try:
            found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return None
        if found is None or found.si_pid == 0:
            return None
        exited = found.si_code == os.CLD_EXITED
        return found.si_pid, found.si_status if exited else 128 + found.si_status
    try:  # pragma: no cover - platforms without waitid: reaped here, status written after
        pid, status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:  # pragma: no cover
        return None
    if pid == 0:  # pragma: no cover
        return None
    code = os.waitstatus_to_exitcode(status)  # pragma: no cover
    return pid, (128 - code if code < 0 else code)  # pragma: no cover


def _spawn(
    status_dir: str, argv: list[str], env: dict[str, str], cwd: str
) -> subprocess.Popen[bytes]:
    out = open_log(os.path.join(status_dir, STDOUT_FILE))
    try:
        err = open_log(os.path.join(status_dir, STDERR_FILE))
        try:
            try:
                return _popen(argv, env, cwd, out, err)
            except OSError as exc:
                if exc.errno != errno.ENOEXEC or exc.filename == cwd:
                    raise
                # A script without a #! line: a shell runs it as a shell script, so do we.
                return _popen(["/bin/sh", *argv], env, cwd, out, err)
        finally:
            os.close(err)
    finally:
        os.close(out)


def _popen(
    argv: list[str], env: dict[str, str], cwd: str, out: int, err: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        cwd=cwd,
        env=env,
        start_new_session=True,  # its own session and process group
    )


def _spawn_failed(status_dir: str, cwd: str, exc: OSError) -> int:
    """Say in the job's error log why it did not start, as a shell would; its exit code."""
    if exc.filename == cwd:
        what, code = f"cannot enter {cwd}: {exc.strerror}", EXIT_NOT_EXECUTABLE
    elif isinstance(exc, FileNotFoundError):
        what, code = f"{exc.filename}: not found", EXIT_NOT_FOUND
    else:
        what, code = f"{exc.filename}: {exc.strerror}", EXIT_NOT_EXECUTABLE
    with contextlib.suppress(OSError):
        err = open_log(os.path.join(status_dir, STDERR_FILE))
        try:
            os.write(err, f"{NAME}: {what}\n".encode())
        finally:
            os.close(err)
    return code


def open_log(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def make_dirs(*paths: str) -> None:
    """Each of ``paths`` (parents first) made unless it exists."""
    for path in paths:
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        except FileNotFoundError:
            os.makedirs(path, exist_ok=True)


def main() -> None:
    # Woken by SIGCHLD through a pipe, so that one select() waits for both messages and exits.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    launcher = Launcher(sys.stdout.fileno())
    pending = b""
    while not launcher.idle:
        readable = [wake_r] if launcher.closed else [0, wake_r]
        try:
            ready, _, _ = select.select(readable, [], [])
        except InterruptedError:  # pragma: no cover - select() is retried since 3.5
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
        launcher.reap()
        if 0 in ready:
            data = os.read(0, 1 << 16)
            if not data:
                launcher.close()
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                launcher.handle(json.loads(line))
        launcher.start_ready()
        launcher.flush()


if __name__ == "__main__":
    main()
