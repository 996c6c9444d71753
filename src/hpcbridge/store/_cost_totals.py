"""Chargeback totals summed where the data is: one grouped query instead of a million rows.

The reconciler records each finished attempt's charge in ``details['cost']`` (amount,
currency, card, waste, core- and GPU-hours). ``cost_totals`` sums those per group in the
database (``_cost_sql``: SQLite and PostgreSQL alike, through SQLAlchemy's JSON paths) and
hands back,
as pairs, only the attempts with no recorded charge, for the caller to price. The memory
store does the same in Python (``totals_of``), held to the same contract tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hpcbridge.states import AttemptState
from hpcbridge.store._records import Attempt, Job

NONE = "(none)"
"""The group of a job without the grouping's tag (or owner)."""


@dataclass(frozen=True, slots=True)
class CostGroup:
    """The recorded charges of one group's attempts, summed."""

    group: str
    spend: float
    waste: float
    core_hours: float
    gpu_hours: float
    attempts: int
    results: int
    """Attempts that succeeded."""
    unpriced: int
    """Attempts charged without a card (0)."""


@dataclass(frozen=True, slots=True)
class CostTotals:
    groups: tuple[CostGroup, ...]
    charged_under: frozenset[tuple[str, str]]
    """(currency, card) of every recorded charge made under a card."""
    unrecorded: tuple[tuple[Job, Attempt], ...]
    """Finished attempts without a recorded charge, in end order, for the caller to price."""


def group_key(job: Job, by: str) -> str:
    """The group ``job`` falls in for ``by`` (project, team, user, workload_class or
    ``tag:<key>``); the SQL of ``_group_column`` says the same."""
    if by == "project":
        return job.project
    if by == "workload_class":
        return job.workload_class
    if by == "team":
        return job.tags.get("team") or NONE
    if by == "user":
        # Who submitted it; jobs from before owners were recorded fall back to a tag.
        return job.owner or job.tags.get("user") or NONE
    return job.tags.get(by.removeprefix("tag:")) or NONE


def totals_of(ended: Iterable[tuple[Job, Attempt]], by: str) -> CostTotals:
    """``cost_totals`` over pairs already read (the memory store)."""
    sums: dict[str, list[float]] = {}
    charged: set[tuple[str, str]] = set()
    unrecorded = []
    for job, attempt in ended:
        cost = attempt.details.get("cost")
        if not isinstance(cost, dict) or cost.get("amount") is None:
            unrecorded.append((job, attempt))
            continue
        amount = float(cost["amount"])
        row = sums.setdefault(group_key(job, by), [0.0] * 7)
        for index, value in enumerate(
            (
                amount,
                amount if cost.get("waste") else 0.0,
                float(cost.get("core_hours") or 0.0),
                float(cost.get("gpu_hours") or 0.0),
                1.0,
                1.0 if attempt.state is AttemptState.SUCCEEDED else 0.0,
                1.0 if cost.get("card") is None else 0.0,
            )
        ):
            row[index] += value
        if cost.get("card") is not None:
            charged.add((str(cost.get("currency", "")), str(cost["card"])))
    groups = tuple(
        CostGroup(key, s[0], s[1], s[2], s[3], int(s[4]), int(s[5]), int(s[6]))
        for key, s in sorted(sums.items())
    )
    return CostTotals(groups, frozenset(charged), tuple(unrecorded))
