"""Budgets past their soft limit as alerts, sent with the SLO alerts (same sinks, same
deduplication and repeat interval); an alert resolves when its budget's period rolls over
or its limits are raised."""

from __future__ import annotations

from pathlib import Path

from hpcbridge.cost import BudgetUse, budget_use, load_budgets, load_cards
from hpcbridge.slo import Alert
from hpcbridge.store import Store

BUDGET_ALERT_NAME = "HpcbridgeBudgetSoftLimit"


class BudgetAlerts:
    """Called at each evaluation: the alerts of budgets over a limit, and resolutions."""

    def __init__(self, store: Store, budgets_file: Path, rate_cards: Path) -> None:
        self._store = store
        self._budgets_file = budgets_file
        self._rate_cards = rate_cards
        self._firing: dict[str, Alert] = {}

    def __call__(self, now: float) -> list[Alert]:
        budgets = load_budgets(self._budgets_file)
        uses = budget_use(self._store, load_cards(self._rate_cards), budgets, now)
        alerts: list[Alert] = []
        firing: dict[str, Alert] = {}
        for use in uses:
            if not (use.over_soft or use.over_hard):
                continue
            earlier = self._firing.get(use.budget.name)
            alert = _alert(use, earlier.starts_at if earlier else now)
            firing[use.budget.name] = alert
            alerts.append(alert)
        for name, earlier in self._firing.items():
            if name not in firing:
                alerts.append(
                    Alert("resolved", earlier.labels, earlier.annotations, earlier.starts_at, now)
                )
        self._firing = firing
        return alerts


def _alert(use: BudgetUse, starts_at: float) -> Alert:
    kind, name = use.budget.scope
    labels = {
        "alertname": BUDGET_ALERT_NAME,
        "budget": use.budget.name,
        kind: name,
        "severity": "ticket",
    }
    annotations = {
        "summary": f"budget {use.budget.name} is past its "
        + ("hard limit: new jobs are refused" if use.over_hard else "soft limit"),
        "description": use.refusal() if use.over_hard else use.warning(),
    }
    return Alert("firing", labels, annotations, starts_at)
