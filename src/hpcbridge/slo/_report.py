"""SLO status reports: dataclasses, a JSON-able form and a Rich table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from hpcbridge.slo._alerts import DEFAULT_RUNBOOK_BASE, Alert, evaluate_alerts
from hpcbridge.slo._duration import format_duration
from hpcbridge.slo._math import ErrorBudget, Samples, as_series, burn_rate
from hpcbridge.slo._model import SloDefinition
from hpcbridge.slo._sinks import rfc3339


@dataclass(frozen=True, slots=True)
class SloStatus:
    """Where one SLO stands at ``now`` over its compliance window."""

    name: str
    service: str
    workload_class: str
    description: str
    objective: float
    window_s: int
    sli: float | None
    events: int
    budget: ErrorBudget
    burn_rates: Mapping[str, float | None]
    alerts: tuple[Alert, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "service": self.service,
            "workload_class": self.workload_class,
            "description": self.description,
            "objective": self.objective,
            "window": format_duration(self.window_s),
            "sli": self.sli,
            "events": self.events,
            "total": self.budget.total,
            "bad": self.budget.bad,
            "error_budget": {
                "allowed_bad": self.budget.allowed_bad,
                "consumed_ratio": self.budget.consumed_ratio,
                "remaining_ratio": self.budget.remaining_ratio,
            },
            "burn_rates": dict(self.burn_rates),
            "alerts": [
                {
                    "severity": a.severity,
                    "labels": dict(a.labels),
                    "annotations": dict(a.annotations),
                    "starts_at": rfc3339(a.starts_at),
                    "job_ids": list(a.job_ids),
                }
                for a in self.alerts
            ],
        }


def slo_report(
    slos: Sequence[SloDefinition],
    samples: Mapping[str, Samples],
    now: float,
    *,
    eval_interval_s: float = 60.0,
    runbook_base: str = DEFAULT_RUNBOOK_BASE,
) -> list[SloStatus]:
    """SLI, budget, burn rate per alert window and firing alerts for every SLO."""
    statuses = []
    for slo in slos:
        series = as_series(samples.get(slo.name, ()))
        totals = series.totals(now - slo.window, now)
        windows = sorted({w.long for _, _, w in slo.alerting.windows()} | {slo.window})
        alerts = evaluate_alerts(
            [slo],
            {slo.name: series},
            now,
            eval_interval_s=eval_interval_s,
            runbook_base=runbook_base,
        )
        ratio = totals.error_ratio
        statuses.append(
            SloStatus(
                name=slo.name,
                service=slo.service,
                workload_class=slo.workload_class,
                description=slo.description,
                objective=slo.objective,
                window_s=slo.window,
                sli=None if ratio is None else 1.0 - ratio,
                events=totals.events,
                budget=ErrorBudget(slo.objective, slo.window, totals.total, totals.bad),
                burn_rates={
                    format_duration(w): burn_rate(series, slo.objective, w, now) for w in windows
                },
                alerts=tuple(alerts),
            )
        )
    return statuses


def report_to_dict(statuses: Sequence[SloStatus], now: float) -> dict[str, Any]:
    """The report as plain JSON-able data (``hpcbridge slo report --json``)."""
    return {"generated_at": rfc3339(now), "slos": [s.to_dict() for s in statuses]}


def _percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _budget_text(status: SloStatus) -> Text:
    if status.events == 0:
        return Text("-", style="dim")
    left = status.budget.remaining_ratio
    style = "red" if left <= 0 else "yellow" if left < 0.25 else "green"
    return Text(_percent(left, 1), style=style)


def _burn_text(burns: Mapping[str, float | None]) -> str:
    return "  ".join(f"{w} {'-' if b is None else f'{b:.2f}x'}" for w, b in burns.items())


def render_report_table(statuses: Sequence[SloStatus]) -> Table:
    """A Rich table of the report, one row per SLO."""
    table = Table(title="SLOs", header_style="bold")
    for column in ("SLO", "Class", "Objective", "SLI", "Budget left", "Burn rate", "Alerts"):
        table.add_column(column, no_wrap=column in ("SLO", "Class"))
    for s in statuses:
        firing = ", ".join(sorted(a.severity for a in s.alerts if a.status == "firing"))
        table.add_row(
            s.name,
            s.workload_class,
            f"{_percent(s.objective, 2)} / {format_duration(s.window_s)}",
            f"{_percent(s.sli, 3)} ({s.events} events)",
            _budget_text(s),
            _burn_text(s.burn_rates),
            Text(firing or "none", style="bold red" if firing else "dim"),
        )
    return table
