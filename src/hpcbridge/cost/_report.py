"""Chargeback: spend, waste, core- and GPU-hours and cost per successful result, grouped.

Each attempt that ended in the window counts once, with the charge recorded when it ended
(the card in force then); an attempt that ended before rate cards existed is priced now
with the card that was in force when it started. Cost per successful result is all the
spend of a group, waste included, over the attempts of it that succeeded: one per job or
array task.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hpcbridge.cost._cards import CardBook
from hpcbridge.cost._price import AttemptCost, price
from hpcbridge.errors import ConfigError
from hpcbridge.states import AttemptState
from hpcbridge.store import Attempt, CostGroup, Job, Store, group_key

GROUPINGS = ("project", "team", "user", "workload_class", "tag:KEY")


def check_grouping(by: str) -> str:
    """``by`` if it is one of GROUPINGS (``tag:<key>`` for any key); else ConfigError."""
    if by in GROUPINGS[:4] or (by.startswith("tag:") and len(by) > 4):
        return by
    raise ConfigError(
        f"--by {by!r} is not a grouping; use one of project, team, user, workload_class "
        "or tag:<key>, e.g. --by tag:cost_centre"
    )


def group_of(job: Job, by: str) -> str:
    """The group ``job`` falls in (the store sums by the same rule)."""
    return group_key(job, by)


@dataclass(slots=True)
class Totals:
    """What one group's attempts add up to."""

    group: str
    spend: float = 0.0
    waste: float = 0.0
    core_hours: float = 0.0
    gpu_hours: float = 0.0
    attempts: int = 0
    results: int = 0
    unpriced: int = 0
    """Attempts no rate card covers (charged 0)."""

    @property
    def cost_per_result(self) -> float | None:
        return self.spend / self.results if self.results else None

    def add(self, cost: AttemptCost, succeeded: bool) -> None:
        self.spend += cost.amount
        self.waste += cost.amount if cost.waste else 0.0
        self.core_hours += cost.core_hours
        self.gpu_hours += cost.gpu_hours
        self.attempts += 1
        self.results += succeeded
        self.unpriced += cost.card is None

    def merge(self, other: Totals) -> None:
        self.spend += other.spend
        self.waste += other.waste
        self.core_hours += other.core_hours
        self.gpu_hours += other.gpu_hours
        self.attempts += other.attempts
        self.results += other.results
        self.unpriced += other.unpriced

    def as_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "spend": round(self.spend, 6),
            "waste": round(self.waste, 6),
            "core_hours": round(self.core_hours, 6),
            "gpu_hours": round(self.gpu_hours, 6),
            "attempts": self.attempts,
            "results": self.results,
            "cost_per_result": None
            if self.cost_per_result is None
            else round(self.cost_per_result, 6),
            "unpriced_attempts": self.unpriced,
        }


@dataclass(frozen=True, slots=True)
class Report:
    by: str
    since: float
    until: float
    currency: str
    rows: Sequence[Totals]
    total: Totals
    cards: Sequence[str] = field(default_factory=tuple)
    """The card versions the charges were made under."""

    def as_dict(self) -> dict[str, object]:
        return {
            "by": self.by,
            "since": self.since,
            "until": self.until,
            "currency": self.currency,
            "rows": [row.as_dict() for row in self.rows],
            "total": self.total.as_dict(),
            "cards": list(self.cards),
        }


def cost_of(job: Job, attempt: Attempt, book: CardBook) -> AttemptCost:
    """The charge recorded with a finished attempt, or its price now if none was."""
    recorded = AttemptCost.from_details(attempt.details.get("cost"))
    return recorded if recorded is not None else price(job, attempt, book)


def report(store: Store, book: CardBook, *, by: str, since: float, until: float) -> Report:
    """The report over the store: recorded charges summed by the store (one grouped
    query), attempts without a recorded charge priced here."""
    check_grouping(by)
    if until <= since:
        raise ConfigError("--until must be after --since; widen the window")
    found = store.cost_totals(since, until, by)
    groups = {g.group: _totals(g) for g in found.groups}
    total = Totals("total")
    for row in groups.values():
        total.merge(row)
    currencies = {currency for currency, _ in found.charged_under}
    cards = {card for _, card in found.charged_under}
    _fold(found.unrecorded, book, by, groups, total, currencies, cards)
    return _report(by, since, until, groups, total, currencies, cards)


def summarize(
    ended: Iterable[tuple[Job, Attempt]], book: CardBook, *, by: str, since: float, until: float
) -> Report:
    groups: dict[str, Totals] = {}
    total = Totals("total")
    currencies: set[str] = set()
    cards: set[str] = set()
    _fold(ended, book, by, groups, total, currencies, cards)
    return _report(by, since, until, groups, total, currencies, cards)


def _fold(
    ended: Iterable[tuple[Job, Attempt]],
    book: CardBook,
    by: str,
    groups: dict[str, Totals],
    total: Totals,
    currencies: set[str],
    cards: set[str],
) -> None:
    for job, attempt in ended:
        cost = cost_of(job, attempt, book)
        succeeded = attempt.state is AttemptState.SUCCEEDED
        key = group_of(job, by)
        groups.setdefault(key, Totals(key)).add(cost, succeeded)
        total.add(cost, succeeded)
        if cost.card:
            currencies.add(cost.currency)
            cards.add(cost.card)


def _totals(group: CostGroup) -> Totals:
    return Totals(
        group.group,
        spend=group.spend,
        waste=group.waste,
        core_hours=group.core_hours,
        gpu_hours=group.gpu_hours,
        attempts=group.attempts,
        results=group.results,
        unpriced=group.unpriced,
    )


def _report(
    by: str,
    since: float,
    until: float,
    groups: dict[str, Totals],
    total: Totals,
    currencies: set[str],
    cards: set[str],
) -> Report:
    if len(currencies) > 1:
        raise ConfigError(
            f"the charges are in several currencies ({', '.join(sorted(currencies))}); "
            "give every rate card the same currency"
        )
    rows = sorted(groups.values(), key=lambda row: (-row.spend, row.group))
    return Report(
        by=by,
        since=since,
        until=until,
        currency=currencies.pop() if currencies else "",
        rows=rows,
        total=total,
        cards=tuple(sorted(cards)),
    )
