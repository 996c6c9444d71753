"""When to checkpoint: a fixed period, or the Young/Daly optimum from cost and MTBF.

Young (1974): tau = sqrt(2 C M). Daly (2006) adds higher-order terms that matter once the
checkpoint cost C is no longer small against the mean time between failures M. Both give
the compute time between the end of one checkpoint and the start of the next.
"""

from __future__ import annotations

import math
from collections import deque

from ._env import Interval

AUTO_FIRST_INTERVAL_S = 300.0
"""Until a save has been timed, ``auto`` saves after 5 minutes so the cost is learnt early."""

AUTO_NO_MTBF_INTERVAL_S = 3600.0
"""``auto`` without a known MTBF falls back to hourly checkpoints."""

COST_WINDOW = 8
"""The cost estimate averages the last saves: recent enough to follow a changing size."""


def young_interval(cost_s: float, mtbf_s: float) -> float:
    """Young's first-order optimum ``sqrt(2 C M)``."""
    _check_positive(cost_s=cost_s, mtbf_s=mtbf_s)
    return math.sqrt(2.0 * cost_s * mtbf_s)


def daly_interval(cost_s: float, mtbf_s: float) -> float:
    """Daly's higher-order optimum; equals M once C >= 2M (checkpointing barely pays)."""
    _check_positive(cost_s=cost_s, mtbf_s=mtbf_s)
    if cost_s >= 2.0 * mtbf_s:
        return mtbf_s
    ratio = cost_s / (2.0 * mtbf_s)
    return math.sqrt(2.0 * cost_s * mtbf_s) * (1 + math.sqrt(ratio) / 3 + ratio / 9) - cost_s


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}={value!r} must be a positive finite number")


class IntervalPolicy:
    """Tracks save costs and answers whether the next checkpoint is due.

    The clock is whatever the caller passes as ``now`` (``time.monotonic`` by default in
    :class:`~hpcbridge.checkpoint.Checkpointer`); the period runs from the end of the last
    save, or from construction before any save.
    """

    def __init__(self, interval: Interval, mtbf_s: float | None, *, start: float) -> None:
        self.interval = interval
        self.mtbf_s = mtbf_s
        self.last_save_end = start
        self._costs: deque[float] = deque(maxlen=COST_WINDOW)

    @property
    def cost_s(self) -> float | None:
        """Mean duration of the recent saves (the training stall, for async saves)."""
        return sum(self._costs) / len(self._costs) if self._costs else None

    def interval_s(self) -> float:
        if self.interval != "auto":
            return self.interval
        if self.mtbf_s is None:
            return AUTO_NO_MTBF_INTERVAL_S
        cost = self.cost_s
        if cost is None:
            return min(AUTO_FIRST_INTERVAL_S, self.mtbf_s)
        # A save faster than the clock can show still costs something; keep the math defined.
        return daly_interval(max(cost, 1e-6), self.mtbf_s)

    def record_save(self, duration_s: float, *, end: float) -> None:
        self._costs.append(max(0.0, duration_s))
        self.last_save_end = end

    def due_at(self) -> float:
        return self.last_save_end + self.interval_s()

    def should_save(self, now: float) -> bool:
        return now >= self.due_at()
