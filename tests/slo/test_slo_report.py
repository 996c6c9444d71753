"""SLO reports: status values, the JSON form and the Rich table."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from hpcbridge.slo import (
    FinishedJob,
    build_samples_by_slo,
    default_slos,
    render_report_table,
    report_to_dict,
    slo_report,
)

DAY = 86400.0
NOW = 40 * DAY


def _jobs() -> list[FinishedJob]:
    jobs = [
        FinishedJob(f"ok-{i}", "climate", "critical", "succeeded", "", NOW - i * 60.0)
        for i in range(1, 186)
    ]
    jobs += [
        FinishedJob(f"nf-{i}", "climate", "critical", "failed", "node_failure", NOW - i * 10.0)
        for i in range(15)
    ]
    jobs.append(FinishedJob("old", "climate", "critical", "failed", "lost", NOW - 31 * DAY))
    return jobs


def test_report_values() -> None:
    slos = default_slos()
    statuses = slo_report(slos, build_samples_by_slo(slos, _jobs()), NOW)
    platform = next(s for s in statuses if s.name == "platform-success")
    assert platform.events == 200  # the 31-day-old failure is outside the 30d window
    assert platform.sli == pytest.approx(0.925)
    assert platform.budget.allowed_bad == pytest.approx(2.0)
    assert platform.budget.remaining_ratio == pytest.approx(1 - 15 / 2)
    assert set(platform.burn_rates) == {"1h", "6h", "3d", "30d"}
    assert platform.burn_rates["30d"] == pytest.approx(7.5)
    assert {a.severity for a in platform.alerts} == {"page", "ticket"}
    queue = next(s for s in statuses if s.name == "queue-wait-priority")
    assert queue.sli is None and queue.events == 0 and queue.budget.remaining_ratio == 1.0


def test_report_dict_is_json() -> None:
    slos = default_slos()
    statuses = slo_report(slos, build_samples_by_slo(slos, _jobs()), NOW)
    data = json.loads(json.dumps(report_to_dict(statuses, NOW)))
    assert data["generated_at"] == "1970-02-10T00:00:00.000Z"
    first = data["slos"][0]
    assert first["name"] == "platform-success"
    assert first["window"] == "30d"
    assert first["error_budget"]["remaining_ratio"] == pytest.approx(-6.5)
    assert first["alerts"][0]["job_ids"][:2] == ["nf-0", "nf-1"]


def test_report_table_renders() -> None:
    slos = default_slos()
    statuses = slo_report(slos, build_samples_by_slo(slos, _jobs()), NOW)
    console = Console(record=True, width=200, color_system=None)
    console.print(render_report_table(statuses))
    text = console.export_text()
    for slo in slos:
        assert slo.name in text
    assert "page, ticket" in text
    assert "-650.0%" in text
