"""Minute-by-minute job scenarios, rendered both as Python records and promtool series.

A scenario lists, per minute, how many jobs finished good and bad. The same scenario
feeds the Python evaluator (``FinishedJob`` records at ``minute * 60``) and ``promtool
test rules`` (cumulative counters sampled every minute), so the two can be compared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from hpcbridge.slo import (
    Alert,
    FinishedJob,
    SloDefinition,
    build_samples_by_slo,
    evaluate_alerts,
)

PROJECT = "proj"
WORKLOAD_CLASS = "batch"
BAD_CLASS = "node_failure"
Counts = Callable[[int], int]


@dataclass(frozen=True)
class Scenario:
    name: str
    minutes: int
    good: Counts
    bad: Counts
    user_errors: Counts = lambda _m: 0

    def jobs(self) -> list[FinishedJob]:
        out: list[FinishedJob] = []
        for minute in range(1, self.minutes + 1):
            for kind, count, outcome, failure in (
                ("ok", self.good(minute), "succeeded", ""),
                ("bad", self.bad(minute), "failed", BAD_CLASS),
                ("usr", self.user_errors(minute), "failed", "app_error"),
            ):
                out.extend(
                    FinishedJob(
                        job_id=f"{kind}-{minute}-{i}",
                        project=PROJECT,
                        workload_class=WORKLOAD_CLASS,
                        outcome=outcome,
                        failure_class=failure,
                        finished_at=minute * 60.0,
                    )
                    for i in range(count)
                )
        return out

    def input_series(self) -> list[dict[str, str]]:
        base = f'project="{PROJECT}", workload_class="{WORKLOAD_CLASS}"'
        series = (
            (f'outcome="succeeded", {base}', self.good),
            (f'outcome="failed", failure_class="{BAD_CLASS}", {base}', self.bad),
            (f'outcome="failed", failure_class="app_error", {base}', self.user_errors),
        )
        return [
            {
                "series": f"hpcbridge_jobs_finished_total{{{labels}}}",
                "values": compress(cumulative(counts, self.minutes)),
            }
            for labels, counts in series
        ]

    def alerts_at(self, slos: Sequence[SloDefinition], minute: int) -> list[Alert]:
        samples = build_samples_by_slo(slos, self._jobs)
        return evaluate_alerts(slos, samples, minute * 60.0)

    @cached_property
    def _jobs(self) -> list[FinishedJob]:
        return self.jobs()


def cumulative(counts: Counts, minutes: int) -> list[int]:
    values = [0]
    for minute in range(1, minutes + 1):
        values.append(values[-1] + counts(minute))
    return values


def compress(values: Sequence[int]) -> str:
    """promtool's expanding notation: ``a+bxn`` stands for a, a+b, ..., a+n*b."""
    tokens: list[str] = []
    i = 0
    while i < len(values):
        j = i
        if i + 1 < len(values):
            step = values[i + 1] - values[i]
            while j + 1 < len(values) and values[j + 1] - values[j] == step:
                j += 1
            tokens.append(f"{values[i]}+{step}x{j - i}" if j > i else str(values[i]))
        else:
            tokens.append(str(values[i]))
        i = j + 1
    return " ".join(tokens)


def promtool_test(
    scenario: Scenario, slos: Sequence[SloDefinition], check_minutes: Sequence[int]
) -> dict[str, Any]:
    """A promtool unit-test file whose expectations are the Python evaluator's verdicts."""
    samples = build_samples_by_slo(slos, scenario._jobs)
    alert_tests = []
    for minute in check_minutes:
        firing = [a for a in evaluate_alerts(slos, samples, minute * 60.0) if a.status == "firing"]
        alert_tests.append(
            {
                "eval_time": f"{minute}m",
                "alertname": "HpcbridgeSloBurnRate",
                "exp_alerts": [
                    {
                        "exp_labels": {k: v for k, v in a.labels.items() if k != "alertname"},
                        "exp_annotations": dict(a.annotations),
                    }
                    for a in firing
                ],
            }
        )
    return {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": scenario.name,
                "interval": "1m",
                "input_series": scenario.input_series(),
                "alert_rule_test": alert_tests,
            }
        ],
    }


def firing(alerts: Sequence[Alert]) -> set[tuple[str, str]]:
    """(slo, severity) of the firing alerts."""
    return {(a.slo, a.severity) for a in alerts if a.status == "firing"}


def every(period: int, count: int = 1, *, start: int = 0, end: int | None = None) -> Counts:
    """``count`` events on minutes that are multiples of ``period`` within [start, end)."""

    def counts(minute: int) -> int:
        inside = minute >= start and (end is None or minute < end)
        return count if inside and minute % period == 0 else 0

    return counts


def phases(*parts: tuple[int, Counts]) -> Counts:
    """Piecewise counts: each part applies from its start minute until the next part."""

    def counts(minute: int) -> int:
        started = [fn for start, fn in parts if minute >= start]
        return started[-1](minute) if started else 0

    return counts
