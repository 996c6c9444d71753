"""SLI math: error ratio, SLI, error budget and burn rate over time windows (pure).

Windows are half-open, ``(end - length, end]``. A window without events has no SLI
(``None``), never a perfect one: no evidence is not good evidence.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

from hpcbridge.slo._records import SliSample


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """Weighted totals of one window; ``bad``/``total`` are in the SLI's units."""

    total: float
    bad: float
    events: int
    bad_events: int

    @property
    def error_ratio(self) -> float | None:
        if self.events == 0 or self.total <= 0:
            return None
        return min(max(self.bad / self.total, 0.0), 1.0)


class SampleSeries:
    """Samples sorted by time with prefix sums, so every window costs O(log n)."""

    __slots__ = ("_bad", "_bad_count", "_samples", "_times", "_total")

    def __init__(self, samples: Iterable[SliSample]) -> None:
        self._samples: list[SliSample] = sorted(samples, key=lambda s: s.time)
        self._times = [s.time for s in self._samples]
        self._total = [0.0, *accumulate(s.weight for s in self._samples)]
        self._bad = [0.0, *accumulate(0.0 if s.good else s.weight for s in self._samples)]
        self._bad_count = [0, *accumulate(0 if s.good else 1 for s in self._samples)]

    def __len__(self) -> int:
        return len(self._samples)

    def _span(self, start: float, end: float) -> tuple[int, int]:
        lo = bisect_right(self._times, start)
        return lo, max(lo, bisect_right(self._times, end))

    def totals(self, start: float, end: float) -> WindowTotals:
        lo, hi = self._span(start, end)
        bad_events = self._bad_count[hi] - self._bad_count[lo]
        total = self._total[hi] - self._total[lo] if hi > lo else 0.0
        bad = self._bad[hi] - self._bad[lo] if bad_events else 0.0
        return WindowTotals(max(total, 0.0), max(bad, 0.0), hi - lo, bad_events)

    def samples(self, start: float, end: float) -> Sequence[SliSample]:
        lo, hi = self._span(start, end)
        return self._samples[lo:hi]

    def times_before(self, end: float, start: float) -> Iterable[float]:
        """Distinct sample times in ``(start, end]``, latest first."""
        lo, hi = self._span(start, end)
        previous: float | None = None
        for i in range(hi - 1, lo - 1, -1):
            if self._times[i] != previous:
                previous = self._times[i]
                yield previous


Samples = SampleSeries | Iterable[SliSample]


def as_series(samples: Samples) -> SampleSeries:
    return samples if isinstance(samples, SampleSeries) else SampleSeries(samples)


def window_totals(samples: Samples, window_s: float, now: float) -> WindowTotals:
    return as_series(samples).totals(now - window_s, now)


def error_ratio(samples: Samples, window_s: float, now: float) -> float | None:
    """Bad / total over ``(now - window_s, now]``; ``None`` without events."""
    return window_totals(samples, window_s, now).error_ratio


def sli(samples: Samples, window_s: float, now: float) -> float | None:
    """Good / total over ``(now - window_s, now]``; ``None`` without events."""
    ratio = error_ratio(samples, window_s, now)
    return None if ratio is None else 1.0 - ratio


def burn_rate(samples: Samples, objective: float, window_s: float, now: float) -> float | None:
    """How many times faster than sustainable the budget burns (1.0 = exactly on budget)."""
    ratio = error_ratio(samples, window_s, now)
    return None if ratio is None else ratio / (1.0 - objective)


@dataclass(frozen=True, slots=True)
class ErrorBudget:
    """The budget of one compliance window, in the SLI's units (events or seconds)."""

    objective: float
    window_s: float
    total: float
    bad: float

    @property
    def allowed_bad(self) -> float:
        return (1.0 - self.objective) * self.total

    @property
    def consumed_ratio(self) -> float:
        """Share of the budget spent; above 1.0 once the SLO is broken."""
        if self.bad <= 0:
            return 0.0
        return self.bad / self.allowed_bad if self.allowed_bad > 0 else float("inf")

    @property
    def remaining_ratio(self) -> float:
        """Share of the budget left (1.0 untouched, 0.0 spent, negative overspent)."""
        return 1.0 - self.consumed_ratio


def error_budget(samples: Samples, objective: float, window_s: float, now: float) -> ErrorBudget:
    totals = window_totals(samples, window_s, now)
    return ErrorBudget(objective, window_s, totals.total, totals.bad)
