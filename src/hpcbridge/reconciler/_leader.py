"""One active reconciler per store.

Two ways to lead, behind one Protocol: on SQLite (one host by nature) an exclusive lock the
kernel drops when its holder dies; on PostgreSQL (several hosts) a lease in the database
with an epoch that fences a replaced leader's writes. ``leadership_for`` picks by dialect.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Protocol

import structlog

from hpcbridge.errors import FencedError
from hpcbridge.store import Lease, SqlStore, Store

log = structlog.get_logger("hpcbridge.reconciler")

LEASE_NAME = "reconciler"
DEFAULT_LEASE_TTL_S = 30.0


class Leadership(Protocol):
    """Who may run reconciler cycles. Call ``try_acquire()`` before each cycle (it also
    renews) and run the cycle's writes inside ``fenced()``."""

    @property
    def held(self) -> bool: ...

    def try_acquire(self) -> bool:
        """Become (or stay) the leader; False while another process leads."""
        ...

    def release(self) -> None: ...

    def fenced(self) -> AbstractContextManager[None]:
        """The calling thread's store writes inside are refused (FencedError) once another
        process has become the leader."""
        ...

    def may_act(self) -> bool:
        """Whether a scheduler call may start now: fencing stops a replaced leader's store
        writes, not its sbatch, so a call starts only while the lease has time to spare."""
        ...


class LeaderLock:
    """``flock`` on a file beside the database; a SIGKILLed holder releases it at once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def fenced(self) -> AbstractContextManager[None]:
        # The kernel lock cannot be lost while held: nothing to check.
        return nullcontext()

    def may_act(self) -> bool:
        return self.held


class StoreLease:
    """A lease row in the store, renewed by each ``try_acquire()``.

    A holder that stops renewing (crashed, paused, cut off) loses the lease ``ttl_s`` after
    its last renewal; the next holder gets a higher epoch, and from then on every write
    the old one makes inside ``fenced()`` is refused. Hosts' clocks must agree to well
    within ``ttl_s`` (NTP), since each holder compares the expiry with its own clock.

    While held, a thread renews the lease every third of ``ttl_s``: a cycle may take longer
    than the lease (hundreds of jobs, a slow scheduler), and renewing only between cycles
    let two live reconcilers take the lease from each other in turn, each cycle fenced
    before it could commit. A process that is paused or cut off stops renewing as a whole.
    """

    def __init__(
        self,
        store: Store,
        *,
        name: str = LEASE_NAME,
        holder: str | None = None,
        ttl_s: float = DEFAULT_LEASE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._name = name
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._ttl_s = ttl_s
        self._clock = clock
        self._lease: Lease | None = None
        self._lock = threading.Lock()  # the renewing thread and the cycle's thread
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def lease(self) -> Lease | None:
        return self._lease

    @property
    def held(self) -> bool:
        lease = self._lease
        return lease is not None and self._clock() < lease.expires_at

    def try_acquire(self) -> bool:
        with self._lock:
            if self._lease is not None and self._renew():
                return True
            now = self._clock()
            self._lease = self._store.acquire_lease(
                self._name, self.holder, now=now, ttl_s=self._ttl_s
            )
            if self._lease is None:
                return False
        self._keep_renewing()
        return True

    def _renew(self) -> bool:
        """Extend the lease held (under ``_lock``); False once another process holds it."""
        assert self._lease is not None
        try:
            self._lease = self._store.renew_lease(self._lease, now=self._clock(), ttl_s=self._ttl_s)
            return True
        except FencedError:
            self._lease = None  # taken over: ask like anyone else
            return False

    def _keep_renewing(self) -> None:
        if self._renewer is not None and self._renewer.is_alive():
            return
        self._stop.clear()
        self._renewer = threading.Thread(
            target=self._renew_until_stopped, name="hpcbridge-lease", daemon=True
        )
        self._renewer.start()

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self._ttl_s / 3):
            with self._lock:
                if self._lease is None:
                    return
                try:
                    if not self._renew():
                        return
                except Exception as exc:  # the database may be away for a while
                    # Unrenewed, the lease runs out on its own; may_act() says so meanwhile.
                    log.warning("lease_renewal_failed", lease=self._name, error=str(exc))

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join()
        with self._lock:
            if self._lease is not None:
                lease, self._lease = self._lease, None
                self._store.release_lease(lease)

    def may_act(self) -> bool:
        # A third of the lease is left for the call: no successor can hold it before then.
        lease = self._lease
        return lease is not None and self._clock() < lease.expires_at - self._ttl_s / 3

    def fenced(self) -> AbstractContextManager[None]:
        if self._lease is None:
            raise FencedError(
                f"lease {self._name!r}: {self.holder} does not hold it",
                hint="call try_acquire() first, and write as the leader only while it is True",
            )
        return self._store.fenced(self._lease)


def leadership_for(
    store: Store,
    lock_path: Path,
    *,
    clock: Callable[[], float] = time.time,
    ttl_s: float = DEFAULT_LEASE_TTL_S,
) -> Leadership:
    """A lease in the database for PostgreSQL (reconcilers may run on several hosts), the
    host-local ``lock_path`` flock for SQLite and the in-memory store."""
    if isinstance(store, SqlStore) and store.dialect == "postgresql":
        return StoreLease(store, clock=clock, ttl_s=ttl_s)
    return LeaderLock(lock_path)
