"""Waiting for the local executor's children: one thread for all of them, where Linux allows.

Each child's pidfd goes into one epoll set, so a backend running thousands of short jobs
starts no thread per job and wakes once for every batch of exits. Where pidfds are not
available (not Linux, a kernel before 5.3, a seccomp filter) each child gets a waiting
thread of its own, as before.
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger("hpcbridge.backends.local")

OnExit = Callable[[], None]


class Reaper:
    """Reaps children and then calls what each was registered with, in one thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._watched: dict[int, tuple[subprocess.Popen[bytes], OnExit]] = {}  # pidfd -> ...
        self._thread: threading.Thread | None = None

    def watch(self, child: subprocess.Popen[bytes], on_exit: OnExit) -> None:
        """Reap ``child`` once it exits, then call ``on_exit`` (never under a caller's lock)."""
        pidfd = self._pidfd(child)
        if pidfd is None or self._epoll is None:
            threading.Thread(target=_wait_one, args=(child, on_exit), daemon=True).start()
            return
        with self._lock:
            self._watched[pidfd] = (child, on_exit)
            self._epoll.register(pidfd, select.EPOLLIN)
            if self._thread is None:  # the thread ends when nothing is left to wait for
                self._thread = threading.Thread(
                    target=self._run, name="hpcbridge-local-reaper", daemon=True
                )
                self._thread.start()

    def _pidfd(self, child: subprocess.Popen[bytes]) -> int | None:
        if self._epoll is None or not hasattr(os, "pidfd_open"):
            return None
        try:
            pidfd = os.pidfd_open(child.pid)
        except OSError:  # no pidfds here, or already reaped (the waiting thread sees that)
            return None
        if child.returncode is not None:  # reaped already: the pid may be another's now
            os.close(pidfd)
            return None
        return pidfd

    def _run(self) -> None:
        assert self._epoll is not None
        while True:
            with self._lock:
                if not self._watched:
                    self._thread = None
                    return
            try:
                ready = self._epoll.poll()
            except InterruptedError:
                continue
            for pidfd, _ in ready:
                with self._lock:
                    child, on_exit = self._watched.pop(pidfd)
                    self._epoll.unregister(pidfd)
                os.close(pidfd)
                _wait_one(child, on_exit)


def _wait_one(child: subprocess.Popen[bytes], on_exit: OnExit) -> None:
    child.wait()  # at once when its pidfd said it exited
    try:
        on_exit()
    except Exception:  # one job's bookkeeping must not stop the reaping of the others
        log.exception("local_reap_failed", pid=child.pid)
