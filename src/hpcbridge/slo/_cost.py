"""Cost per successful result (M9) beside the SLOs, from the same finished jobs.

Each finished job carries its attempts with what each cost under the rate card in force
(the event fold reads it from the attempt-end events): a group's spend, waste included,
over its jobs (and array tasks) that succeeded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.table import Table

from hpcbridge.events import FinishedJob, Outcome


@dataclass(slots=True)
class ResultCost:
    project: str
    workload_class: str
    spend: float = 0.0
    waste: float = 0.0
    results: int = 0
    jobs: int = 0

    @property
    def cost_per_result(self) -> float | None:
        return self.spend / self.results if self.results else None

    def to_dict(self) -> dict[str, object]:
        per = self.cost_per_result
        return {
            "project": self.project,
            "workload_class": self.workload_class,
            "spend": round(self.spend, 6),
            "waste": round(self.waste, 6),
            "jobs": self.jobs,
            "results": self.results,
            "cost_per_result": None if per is None else round(per, 6),
        }


def cost_per_result(jobs: Iterable[FinishedJob]) -> list[ResultCost]:
    groups: dict[tuple[str, str], ResultCost] = {}
    for job in jobs:
        key = (job.project, job.workload_class)
        group = groups.setdefault(key, ResultCost(*key))
        group.jobs += 1
        group.results += job.outcome == Outcome.SUCCEEDED
        for attempt in job.attempts:
            group.spend += attempt.cost
            group.waste += attempt.cost if attempt.outcome != Outcome.SUCCEEDED else 0.0
    return sorted((g for g in groups.values() if g.spend), key=lambda g: (-g.spend, g.project))


def render_cost_table(costs: Iterable[ResultCost]) -> Table:
    table = Table(
        "project",
        "class",
        "spend",
        "waste",
        "results",
        "cost/result",
        title="Cost per successful result (M9), rate card currency",
    )
    for cost in costs:
        per = cost.cost_per_result
        table.add_row(
            cost.project,
            cost.workload_class,
            f"{cost.spend:.2f}",
            f"{cost.waste:.2f}",
            str(cost.results),
            "-" if per is None else f"{per:.2f}",
        )
    return table
