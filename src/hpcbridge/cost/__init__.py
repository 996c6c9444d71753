"""Cost: rate cards, the charge of every attempt, chargeback reports and budgets.

- ``load_cards`` / ``CardBook``: versioned rate cards per cluster and partition;
- ``price``: a finished attempt's charge (``AttemptCost``) from what its scheduler
  accounted, under the card in force when it started; the reconciler keeps it in the
  attempt's details (``cost``) and on its end event;
- ``report``: spend, waste, core- and GPU-hours and cost per successful result, grouped;
- ``load_budgets`` / ``budget_verdicts``: soft and hard limits per project or team;
- ``estimate`` / ``burst_use``: a spec's price before it runs and the burst budgets' use.
"""

from hpcbridge.cost._budgets import (
    Budget,
    BudgetUse,
    budget_use,
    load_budget_file,
    load_budgets,
    period_bounds,
    uses_for,
)
from hpcbridge.cost._burst import BurstUse, Estimate, burst_use, estimate
from hpcbridge.cost._cards import ANY, CardBook, RateCard, Rates, load_cards
from hpcbridge.cost._job import describe_job_cost, format_amount, job_totals
from hpcbridge.cost._price import LOCAL_CLUSTER, AttemptCost, Usage, price, usage_of
from hpcbridge.cost._report import (
    GROUPINGS,
    Report,
    Totals,
    check_grouping,
    cost_of,
    group_of,
    report,
    summarize,
)

__all__ = [
    "ANY",
    "GROUPINGS",
    "LOCAL_CLUSTER",
    "AttemptCost",
    "Budget",
    "BudgetUse",
    "BurstUse",
    "CardBook",
    "Estimate",
    "RateCard",
    "Rates",
    "Report",
    "Totals",
    "Usage",
    "budget_use",
    "burst_use",
    "check_grouping",
    "cost_of",
    "describe_job_cost",
    "estimate",
    "format_amount",
    "group_of",
    "job_totals",
    "load_budget_file",
    "load_budgets",
    "load_cards",
    "period_bounds",
    "price",
    "report",
    "summarize",
    "usage_of",
    "uses_for",
]
