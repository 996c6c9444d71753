"""Seeded faults at every backend call and store write, and crashes of the control plane.

``FaultyBackend`` and ``FaultyStore`` wrap the real thing. At each call a seeded draw may
raise an error *before* the call (it never happened) or *after* it (it happened, and the
answer was lost), or a ``Crash``: a BaseException that no handler in hpcbridge catches, so
it unwinds the cycle the way the death of the process would end it (open transactions roll
back; whatever the scheduler already holds stays there). ``Driver`` then starts a fresh
control plane (new reconciler, store handle and backend instance) on the same database and
scheduler, as a restarted process would.

What really happened is counted at the real backend: each token handed to ``submit`` or
``submit_array``; the jobs' programs count their own executions in files.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hpcbridge.backends import (
    AttemptRef,
    Backend,
    Deferred,
    LaunchRequest,
    Observation,
    Submitted,
)
from hpcbridge.errors import StoreError, TransientBackendError, UncertainSubmissionError
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass


class Crash(BaseException):
    """The control plane dies here (SIGKILL): nothing in hpcbridge may catch it."""


_ERRORS: tuple[Callable[[str], BaseException], ...] = (
    RuntimeError,
    TimeoutError,
    OSError,
    TransientBackendError,
    UncertainSubmissionError,
    KeyError,
)


@dataclass
class FaultPlan:
    """Where faults strike: ``error_rate`` and ``crash_rate`` per call, from one seed."""

    seed: int
    error_rate: float = 0.05
    crash_rate: float = 0.004
    store_share: float = 0.1
    """Store calls outnumber backend calls many times (a cycle of 300 jobs makes about 900
    writes): they fail at this share of ``error_rate``..."""
    store_crash_share: float = 0.01
    """...and crash at this share of ``crash_rate``, so that cycles still get done."""
    enabled: bool = True
    random: random.Random = field(init=False)
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def strike(self, where: str, *, store: bool = False) -> None:
        """Maybe raise at ``where`` (``"submit:before"``, ``"update_job:after"``...)."""
        if not self.enabled:
            return
        crash_rate = self.crash_rate * (self.store_crash_share if store else 1.0)
        error_rate = self.error_rate * (self.store_share if store else 1.0)
        draw = self.random.random()
        if draw < crash_rate:
            self.injected[f"crash@{where}"] += 1
            raise Crash(where)
        if draw < crash_rate + error_rate:
            error = self.random.choice(_ERRORS)
            self.injected[f"{error.__name__}@{where}"] += 1
            raise error(f"injected at {where}")

    @contextmanager
    def around(self, where: str, *, store: bool = False) -> Iterator[None]:
        self.strike(f"{where}:before", store=store)
        yield
        self.strike(f"{where}:after", store=store)


class FaultyBackend:
    """A real backend with faults around each call; counts what reached it."""

    def __init__(self, inner: Any, plan: FaultPlan, sent: Counter[str], scope: str = "") -> None:
        self.inner = inner
        self.name: str = inner.name
        self._plan = plan
        # Submissions that reached the real backend, per ``scope`` + token. A scheduler
        # outside the process (Slurm) is one scope; the local executor's queue of attempts
        # not started yet dies with the process, so each of its lives is a scope of its own.
        self.sent = sent
        self._scope = scope

    def check(self, spec: JobSpec) -> list[str]:
        problems: list[str] = self.inner.check(spec)
        return problems

    def submit(self, request: LaunchRequest) -> Submitted | Deferred:
        with self._plan.around("submit"):
            outcome: Submitted | Deferred = self.inner.submit(request)
            if isinstance(outcome, Submitted):
                self.sent[self._scope + request.token] += 1
        return outcome

    def submit_array(
        self, requests: Sequence[LaunchRequest], *, throttle: int | None = None
    ) -> list[Submitted]:
        with self._plan.around("submit_array"):
            outcomes: list[Submitted] = self.inner.submit_array(requests, throttle=throttle)
            self.sent.update(self._scope + r.token for r in requests)
        return outcomes

    def find(self, ref: AttemptRef) -> Submitted | None:
        with self._plan.around("find"):
            found: Submitted | None = self.inner.find(ref)
        return found

    def poll(self, refs: Sequence[AttemptRef], now: float) -> dict[str, Observation]:
        with self._plan.around("poll"):
            seen: dict[str, Observation] = self.inner.poll(refs, now)
        return seen

    def kill(self, ref: AttemptRef, failure_class: FailureClass, now: float) -> None:
        with self._plan.around("kill"):
            self.inner.kill(ref, failure_class, now)

    def log_paths(self, ref: AttemptRef) -> Any:
        return self.inner.log_paths(ref)

    def close(self) -> None:
        self.inner.close()


def with_array_submit(backend: FaultyBackend) -> Backend:
    """The wrapper offers ``submit_array`` only where the real backend has it."""
    if hasattr(backend.inner, "submit_array"):
        return backend
    return _SingleOnly(backend)


class _SingleOnly:
    def __init__(self, wrapped: FaultyBackend) -> None:
        self._wrapped = wrapped
        self.name = wrapped.name

    def __getattr__(self, name: str) -> Any:
        if name == "submit_array":
            raise AttributeError(name)
        return getattr(self._wrapped, name)

    def check(self, spec: JobSpec) -> list[str]:
        return self._wrapped.check(spec)

    def submit(self, request: LaunchRequest) -> Submitted | Deferred:
        return self._wrapped.submit(request)

    def find(self, ref: AttemptRef) -> Submitted | None:
        return self._wrapped.find(ref)

    def poll(self, refs: Sequence[AttemptRef], now: float) -> dict[str, Observation]:
        return self._wrapped.poll(refs, now)

    def kill(self, ref: AttemptRef, failure_class: FailureClass, now: float) -> None:
        self._wrapped.kill(ref, failure_class, now)

    def log_paths(self, ref: AttemptRef) -> Any:
        return self._wrapped.log_paths(ref)

    def close(self) -> None:
        self._wrapped.close()


_STORE_WRITES = frozenset(
    {"transition", "update_job", "create_attempt", "update_attempt", "add_event"}
)
_STORE_READS = frozenset({"active_jobs", "active_attempts", "get_job", "attempts"})


class FaultyStore:
    """A real store with faults around every write (and the cycle's big reads)."""

    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        self.inner = inner
        self._plan = plan

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in _STORE_WRITES | _STORE_READS:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._plan.around(name, store=True):
                if name in _STORE_WRITES and self._plan.random.random() < 0.005:
                    self._plan.injected[f"StoreError@{name}"] += 1
                    raise StoreError(f"injected database error in {name}")
                return attribute(*args, **kwargs)

        return call

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self.inner.batch():
            yield
            # dies (or fails) before the transaction commits
            self._plan.strike("commit", store=True)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.inner.savepoint():
            yield
