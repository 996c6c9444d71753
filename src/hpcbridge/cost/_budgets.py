"""Budgets per project or team and period: a soft limit warns, a hard limit refuses.

A YAML file (``HPCBRIDGE_BUDGETS_FILE``, default ``<home>/budgets.yaml``)::

    budgets:
      - name: physics-monthly
        project: physics          # or team: <the jobs' 'team' tag>
        period: month             # day, week (from Monday), month, quarter or year (UTC)
        soft: 800                 # alert, and a reason on every new job
        hard: 1000                # new submissions refused
        owner: finops@example.org # who can raise it (named in the refusal)
    burst_budgets:                # what bursting to the cloud may spend (hard, else soft)
      - {name: physics-burst, project: physics, period: month, hard: 50}

Use is the charge of every attempt that ended in the current period (for a burst budget,
of those that ran in the burst partition). Nothing here stops
a job already accepted: a budget only decides about new submissions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hpcbridge.cost._cards import CardBook, describe
from hpcbridge.cost._job import format_amount
from hpcbridge.cost._report import cost_of, group_of
from hpcbridge.errors import ConfigError
from hpcbridge.store import Store

Period = Literal["day", "week", "month", "quarter", "year"]


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    project: str | None = None
    team: str | None = None
    period: Period = "month"
    soft: float | None = Field(default=None, ge=0)
    hard: float | None = Field(default=None, ge=0)
    owner: str = Field(default="", description="Who can raise it")

    @model_validator(mode="after")
    def _one_scope_and_a_limit(self) -> Budget:
        if (self.project is None) == (self.team is None):
            raise ValueError("give exactly one of 'project' or 'team'")
        if self.soft is None and self.hard is None:
            raise ValueError("give 'soft', 'hard' or both")
        if self.soft is not None and self.hard is not None and self.soft > self.hard:
            raise ValueError(f"soft ({self.soft:g}) is above hard ({self.hard:g}); swap them")
        return self

    @property
    def scope(self) -> tuple[str, str]:
        """('project', name) or ('team', name)."""
        return ("project", self.project) if self.project is not None else ("team", self.team or "")


class BudgetFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    budgets: tuple[Budget, ...] = ()
    burst_budgets: tuple[Budget, ...] = Field(
        default=(), description="What bursting to the cloud may spend (its hard or soft limit)"
    )

    @model_validator(mode="after")
    def _unique_names(self) -> BudgetFile:
        names = [b.name for b in (*self.budgets, *self.burst_budgets)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"budget names must be unique; {', '.join(twice)} appear twice")
        return self


def load_budgets(path: Path) -> list[Budget]:
    """The budgets of ``path``; none when it does not exist. Raises ConfigError."""
    return list(load_budget_file(path).budgets)


def load_budget_file(path: Path) -> BudgetFile:
    """Every budget of ``path``, burst budgets too; empty when it does not exist."""
    if not path.exists():
        return BudgetFile()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return BudgetFile.model_validate(document)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"budgets {path}: cannot read it as YAML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"budgets {path}: {describe(exc)}") from exc


def period_bounds(period: Period, now: float) -> tuple[float, float]:
    """The UTC calendar period containing ``now``: (start, end)."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = _add_months(start, 1)
    elif period == "quarter":
        start = day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
        end = _add_months(start, 3)
    else:
        start = day.replace(day=1, month=1)
        end = start.replace(year=start.year + 1)
    return start.timestamp(), end.timestamp()


def _add_months(start: datetime, months: int) -> datetime:
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1)


@dataclass(frozen=True, slots=True)
class BudgetUse:
    budget: Budget
    used: float
    currency: str
    period_start: float
    period_end: float

    @property
    def over_hard(self) -> bool:
        return self.budget.hard is not None and self.used >= self.budget.hard

    @property
    def over_soft(self) -> bool:
        return self.budget.soft is not None and self.used >= self.budget.soft

    def _where(self) -> str:
        kind, name = self.budget.scope
        since = datetime.fromtimestamp(self.period_start, UTC).strftime("%Y-%m-%d")
        return f"budget {self.budget.name!r} ({kind} {name}, {self.budget.period} from {since})"

    def _money(self, value: float) -> str:
        return f"{self.currency} {format_amount(value)}".strip()

    def refusal(self) -> str:
        until = datetime.fromtimestamp(self.period_end, UTC).strftime("%Y-%m-%d")
        who = self.budget.owner or "the budget's owner"
        return (
            f"{self._where()} has used {self._money(self.used)} of its hard limit "
            f"{self._money(self.budget.hard or 0.0)}: new jobs are refused until {until} "
            f"(running jobs go on); ask {who} to raise 'hard' in the budgets file"
        )

    def warning(self) -> str:
        return (
            f"{self._where()} has used {self._money(self.used)}, past its soft limit "
            f"{self._money(self.budget.soft or 0.0)}"
            + (f" (hard limit {self._money(self.budget.hard)})" if self.budget.hard else "")
        )

    def as_dict(self) -> dict[str, object]:
        kind, name = self.budget.scope
        return {
            "budget": self.budget.name,
            kind: name,
            "period": self.budget.period,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "used": round(self.used, 6),
            "currency": self.currency,
            "soft": self.budget.soft,
            "hard": self.budget.hard,
            "owner": self.budget.owner,
            "over_soft": self.over_soft,
            "over_hard": self.over_hard,
        }


def budget_use(
    store: Store, book: CardBook, budgets: Sequence[Budget], now: float
) -> list[BudgetUse]:
    """What each budget has used in its current period (one read of the store)."""
    if not budgets:
        return []
    bounds = {b.name: period_bounds(b.period, now) for b in budgets}
    earliest = min(start for start, _ in bounds.values())
    ended = store.attempts_ended(earliest, now + 1.0)
    uses = []
    for budget in budgets:
        start, end = bounds[budget.name]
        kind, name = budget.scope
        used, currency = 0.0, ""
        for job, attempt in ended:
            if attempt.ended_at is None or attempt.ended_at < start:
                continue
            if group_of(job, kind) != name:
                continue
            cost = cost_of(job, attempt, book)
            used += cost.amount
            currency = currency or cost.currency
        uses.append(BudgetUse(budget, used, currency, start, end))
    return uses


def uses_for(uses: Sequence[BudgetUse], project: str, tags: dict[str, str]) -> list[BudgetUse]:
    """The budgets a job of ``project`` with ``tags`` counts against."""
    return [
        use
        for use in uses
        if use.budget.project == project
        or (use.budget.team is not None and tags.get("team") == use.budget.team)
    ]
