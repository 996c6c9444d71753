"""What the reconciler reports about itself: backend health, poll latency, cycles.

These are not in the store (they describe this process), so the reconciler updates a
``ReconcilerStats`` as it goes and the collector reads a snapshot at scrape time. All
methods are thread-safe and cheap; none raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from hpcbridge.telemetry import _names as n
from hpcbridge.telemetry._fold import Histogram


@dataclass(slots=True)
class BackendStats:
    up: bool = True
    polls: int = 0
    errors: int = 0
    poll_duration: Histogram = field(
        default_factory=lambda: Histogram(n.HISTOGRAM_BUCKETS[n.BACKEND_POLL_DURATION])
    )
    nodes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    backends: Mapping[str, BackendStats]
    cycles: int
    cycle_errors: int
    cycle_duration: Histogram
    last_cycle_at: float | None


class ReconcilerStats:
    """Updated by the reconciler loop; read by ``StoreCollector``.

    In the loop::

        with stats.polling(backend_name):          # times the poll, marks the backend
            observations.update(backend.poll(refs, now))
        ...
        stats.record_cycle(duration_s, now=now, errors=len(report.errors),
                           unavailable_backends=report.unavailable_backends)
    """

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._backends: dict[str, BackendStats] = {}
        self._cycles = 0
        self._cycle_errors = 0
        self._cycle_duration = Histogram(n.HISTOGRAM_BUCKETS[n.CYCLE_DURATION])
        self._last_cycle_at: float | None = None

    def _backend(self, name: str) -> BackendStats:
        found = self._backends.get(name)
        if found is None:
            found = self._backends[name] = BackendStats()
        return found

    @contextmanager
    def polling(self, backend: str) -> Iterator[None]:
        """Time one batched poll; an exception marks the backend down and propagates."""
        started = self._monotonic()
        try:
            yield
        except BaseException:
            self.record_poll(backend, self._monotonic() - started, ok=False)
            raise
        self.record_poll(backend, self._monotonic() - started, ok=True)

    def record_poll(self, backend: str, duration_s: float, *, ok: bool) -> None:
        with self._lock:
            stats = self._backend(backend)
            stats.polls += 1
            stats.poll_duration.observe(max(duration_s, 0.0))
            stats.up = ok
            if not ok:
                stats.errors += 1

    def record_nodes(self, backend: str, counts_by_state: Mapping[str, int]) -> None:
        """Nodes by state (idle, allocated, drained, down...), as the backend last saw them."""
        with self._lock:
            self._backend(backend).nodes = {str(k): int(v) for k, v in counts_by_state.items()}

    def record_cycle(
        self,
        duration_s: float,
        *,
        now: float,
        errors: int = 0,
        unavailable_backends: Sequence[str] = (),
    ) -> None:
        with self._lock:
            self._cycles += 1
            self._cycle_errors += max(errors, 0)
            self._cycle_duration.observe(max(duration_s, 0.0))
            self._last_cycle_at = now
            for name in unavailable_backends:
                self._backend(name).up = False

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            backends = {
                name: BackendStats(
                    s.up,
                    s.polls,
                    s.errors,
                    Histogram(
                        s.poll_duration.bounds, list(s.poll_duration.counts), s.poll_duration.total
                    ),
                    dict(s.nodes),
                )
                for name, s in self._backends.items()
            }
            return StatsSnapshot(
                backends,
                self._cycles,
                self._cycle_errors,
                self._cycle_duration.copy(),
                self._last_cycle_at,
            )
