"""What the burst policy needs from cost: a spec's price before it runs, on-prem and in
the cloud partition, and what the burst budgets have used this period."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hpcbridge.cost._budgets import Budget, period_bounds
from hpcbridge.cost._cards import CardBook
from hpcbridge.cost._price import Usage, _items, usage_of
from hpcbridge.cost._report import cost_of, group_of
from hpcbridge.spec import JobSpec
from hpcbridge.store import Store

DEFAULT_WALLTIME_S = 3600.0
"""Priced when a spec gives no walltime: one hour."""


@dataclass(frozen=True, slots=True)
class Estimate:
    amount: float
    currency: str
    card: str
    egress_gb_price: float


def estimate(
    spec: JobSpec, book: CardBook, *, cluster: str, partition: str | None, at: float
) -> Estimate | None:
    """The price of ``spec`` run for its walltime in ``partition`` under the card in force
    at ``at``; None where no card covers ``cluster``."""
    card = book.in_force(cluster, at)
    if card is None:
        return None
    resources = spec.resources
    usage = Usage(
        cluster=cluster,
        partition=partition,
        elapsed_s=resources.walltime_s or DEFAULT_WALLTIME_S,
        cpus=resources.nodes * resources.cpus_per_node,
        gpus=resources.nodes * resources.gpus,
        gpu_type=resources.gpu_type,
        mem_gb=resources.nodes * (resources.mem_mb or 0) / 1024.0,
        licences=dict(spec.licences),
    )
    return Estimate(
        amount=sum(_items(usage, card).values()),
        currency=card.currency,
        card=card.card_id,
        egress_gb_price=card.egress_gb or 0.0,
    )


@dataclass(frozen=True, slots=True)
class BurstUse:
    budget: Budget
    used: float
    currency: str

    @property
    def limit(self) -> float:
        return self.budget.hard if self.budget.hard is not None else (self.budget.soft or 0.0)


def burst_use(
    store: Store,
    book: CardBook,
    budgets: Sequence[Budget],
    spec: JobSpec,
    *,
    partition: str,
    now: float,
) -> list[BurstUse]:
    """What each burst budget ``spec`` counts against has spent this period: the charges
    of attempts that ended in it and ran in ``partition``."""
    scoped = [
        b
        for b in budgets
        if b.project == spec.project or (b.team and spec.tags.get("team") == b.team)
    ]
    if not scoped:
        return []
    bounds = {b.name: period_bounds(b.period, now) for b in scoped}
    ended = [
        (job, attempt)
        for job, attempt in store.attempts_ended(min(s for s, _ in bounds.values()), now + 1.0)
        if usage_of(job, attempt).partition == partition
    ]
    uses = []
    for budget in scoped:
        start, _ = bounds[budget.name]
        kind, name = budget.scope
        used, currency = 0.0, ""
        for job, attempt in ended:
            if (attempt.ended_at or 0.0) >= start and group_of(job, kind) == name:
                cost = cost_of(job, attempt, book)
                used += cost.amount
                currency = currency or cost.currency
        uses.append(BurstUse(budget, used, currency))
    return uses
