"""Burst to cloud: whether a burst-eligible job goes to the cloud partition or stays.

``decide_burst`` is a pure function of numbers gathered beforehand (the on-prem wait from
the scheduler's cached ``sbatch --test-only`` estimate and the queue depth, the prices from
the rate card, the burst budget's use, the input size from staging): no scheduler call, no
store read, so it costs microseconds per job. Its ``BurstDecision`` carries the numbers it
decided on; the client records them as a ``burst_decided`` event.

A job bursts only when all of these hold, checked in this order (the first that fails is
the reason it stays):

1. it is burst-eligible;
2. its data residency permits: ``onprem`` keeps it on-prem, any other region must be one
   the cloud partition is in;
3. the on-prem wait is known and exceeds its threshold, and bursting starts it sooner;
4. its input (the egress) is within its cap;
5. its burst price is within its own cap and what is left of the burst budget.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any

ONPREM = "onprem"
"""The residency that keeps a job's data, and so the job, on-prem."""
BYTES_PER_GB = 1e9


@dataclass(frozen=True, slots=True)
class BurstBudgetLeft:
    """A burst budget this job counts against, as used so far this period."""

    name: str
    period: str
    used: float
    limit: float
    owner: str = ""


@dataclass(frozen=True, slots=True)
class BurstInputs:
    eligible: bool
    wait_threshold_s: float
    onprem_wait_s: float | None
    """Estimated seconds until the job would start on-prem; None: unknown."""
    burst_wait_s: float
    """Estimated seconds until it would start in the cloud (node power-up)."""
    partition: str
    onprem_cost: float | None = None
    burst_cost: float | None = None
    """Price of its walltime on each side under the rate card; None: no card."""
    currency: str = ""
    egress_bytes: int = 0
    egress_price_gb: float = 0.0
    max_egress_gb: float | None = None
    job_cap: float | None = None
    residency: Collection[str] = ()
    cloud_regions: Collection[str] = ()
    budgets: tuple[BurstBudgetLeft, ...] = ()
    queue_depth: int = 0
    """Jobs of this control plane waiting on the same cluster (recorded with the decision)."""


@dataclass(frozen=True, slots=True)
class BurstDecision:
    burst: bool
    partition: str
    """Where it goes if it bursts (the cloud partition)."""
    reason: str
    onprem_wait_s: float | None
    burst_wait_s: float
    wait_saved_s: float | None
    onprem_cost: float | None
    burst_cost: float | None
    """Compute plus egress."""
    egress_gb: float
    egress_cost: float
    currency: str
    queue_depth: int = 0

    def as_data(self) -> dict[str, Any]:
        """The numbers, for the event's data (the reason is the event's own)."""
        return {k: _rounded(v) for k, v in asdict(self).items() if k != "reason"}

    @property
    def summary(self) -> str:
        """The decision in one line for ``why``."""
        if self.burst:
            return f"sent it to partition {self.partition!r} (burst): {self.reason}"
        return f"kept it on-prem (no burst): {self.reason}"


def decide_burst(inputs: BurstInputs) -> BurstDecision:
    """Burst or stay, with the numbers; see the module docstring for the rules."""
    egress_gb = inputs.egress_bytes / BYTES_PER_GB
    egress_cost = egress_gb * inputs.egress_price_gb
    burst_cost = None if inputs.burst_cost is None else inputs.burst_cost + egress_cost
    saved = None if inputs.onprem_wait_s is None else inputs.onprem_wait_s - inputs.burst_wait_s

    def decision(burst: bool, reason: str) -> BurstDecision:
        return BurstDecision(
            burst=burst,
            partition=inputs.partition,
            reason=reason,
            onprem_wait_s=inputs.onprem_wait_s,
            burst_wait_s=inputs.burst_wait_s,
            wait_saved_s=saved,
            onprem_cost=inputs.onprem_cost,
            burst_cost=burst_cost,
            egress_gb=egress_gb,
            egress_cost=egress_cost,
            currency=inputs.currency,
            queue_depth=inputs.queue_depth,
        )

    money = _money(inputs.currency)
    if not inputs.eligible:
        return decision(False, "the job is not burst-eligible (burst: {eligible: true})")
    if ONPREM in inputs.residency:
        return decision(False, f"its data residency {ONPREM!r} keeps it on-prem")
    foreign = sorted(set(inputs.residency) - set(inputs.cloud_regions))
    if foreign:
        return decision(
            False,
            f"its data residency {', '.join(foreign)} does not allow partition "
            f"{inputs.partition!r} (in {', '.join(sorted(inputs.cloud_regions)) or 'no region'})",
        )
    if inputs.onprem_wait_s is None:
        return decision(False, "the scheduler gave no on-prem start estimate")
    if inputs.onprem_wait_s <= inputs.wait_threshold_s:
        return decision(
            False,
            f"on-prem start in about {_minutes(inputs.onprem_wait_s)} is within its "
            f"threshold of {_minutes(inputs.wait_threshold_s)}",
        )
    if saved is None or saved <= 0:
        return decision(
            False,
            f"bursting would not start it sooner (node power-up about "
            f"{_minutes(inputs.burst_wait_s)}, on-prem about {_minutes(inputs.onprem_wait_s)})",
        )
    if inputs.max_egress_gb is not None and egress_gb > inputs.max_egress_gb:
        return decision(
            False,
            f"its input of {egress_gb:.3g} GB is over its egress cap of "
            f"{inputs.max_egress_gb:g} GB",
        )
    cost = burst_cost or 0.0
    if inputs.job_cap is not None and cost > inputs.job_cap:
        return decision(
            False, f"bursting would cost {money(cost)}, over its budget_cap {money(inputs.job_cap)}"
        )
    for budget in inputs.budgets:
        if budget.used + cost > budget.limit or budget.used >= budget.limit:
            who = f"; ask {budget.owner} to raise it" if budget.owner else ""
            return decision(
                False,
                f"burst budget {budget.name!r} is exhausted: {money(budget.used)} of "
                f"{money(budget.limit)} used this {budget.period}, bursting would cost "
                f"{money(cost)}{who}",
            )
    return decision(
        True,
        f"on-prem start in about {_minutes(inputs.onprem_wait_s)} is over its threshold of "
        f"{_minutes(inputs.wait_threshold_s)}; the cloud starts it in about "
        f"{_minutes(inputs.burst_wait_s)} (node power-up), saving about {_minutes(saved)}, "
        f"for {money(cost)} with {egress_gb:.3g} GB egress",
    )


def _minutes(seconds: float) -> str:
    return f"{round(seconds / 60)} min" if seconds >= 30 else "less than a minute"


def _money(currency: str) -> Callable[[float], str]:
    def text(amount: float) -> str:
        return f"{currency} {amount:.2f}".strip()

    return text


def _rounded(value: object) -> object:
    return round(value, 6) if isinstance(value, float) else value
