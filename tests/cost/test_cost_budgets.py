"""Budgets: periods, use from charged attempts, refusal past a hard limit (running jobs
untouched), a reason past a soft limit, and the soft-limit alert in a real Alertmanager."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hpcbridge.api._budget_alerts import BudgetAlerts
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.cost import load_budgets, period_bounds
from hpcbridge.errors import ConfigError, SpecError
from hpcbridge.slo import AlertmanagerSink, Notifier
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.states import JobState
from tests.slo.conftest import alertmanager

__all__ = ["alertmanager"]

CARD = (
    "cluster: local\nversion: v1\neffective_from: 2020-01-01\ncurrency: EUR\n"
    "partitions: {'*': {core_hour: 36000}}\n"  # 10 per core-second: any run costs
)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def test_periods_are_utc_calendar_periods() -> None:
    now = _utc(2026, 12, 6, 13, 5)  # a Sunday
    assert period_bounds("day", now) == (_utc(2026, 12, 6), _utc(2026, 12, 7))
    assert period_bounds("week", now) == (_utc(2026, 11, 30), _utc(2026, 12, 7))
    assert period_bounds("month", now) == (_utc(2026, 12, 1), _utc(2027, 1, 1))
    assert period_bounds("quarter", now) == (_utc(2026, 10, 1), _utc(2027, 1, 1))
    assert period_bounds("year", now) == (_utc(2026, 1, 1), _utc(2027, 1, 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("budgets: [{name: b, hard: 1}]", "give exactly one of 'project' or 'team'"),
        ("budgets: [{name: b, project: p}]", "give 'soft', 'hard' or both"),
        ("budgets: [{name: b, project: p, soft: 5, hard: 1}]", "soft (5) is above hard (1)"),
        ("budgets: [{name: b, project: p, hard: 1, period: fortnight}]", "budgets.0.period"),
        ("budgets: [{name: b, project: p, hard: 1, limit: 2}]", "budgets.0.limit: unknown"),
    ],
)
def test_an_invalid_budget_file_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"budgets\.yaml") as raised:
        load_budgets(path)
    assert message in str(raised.value)


def _client(tmp_path: Path) -> Client:
    home = tmp_path / "home"
    (home / "rate_cards").mkdir(parents=True)
    (home / "rate_cards" / "local.yaml").write_text(CARD)
    return Client(Settings(home=home, database_url="memory://", local_cpus=4))


def _spec(name: str, *argv: str, team: str = "red") -> JobSpec:
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": name,
        "project": "physics",
        "tags": {"team": team},
        "command": list(argv),
    }
    return load_spec_document(document)


def _budgets(client: Client, text: str) -> None:
    client.settings.resolved_budgets_file.write_text(text)


def test_hard_limit_refuses_new_jobs_and_leaves_running_ones(tmp_path: Path) -> None:
    client = _client(tmp_path)
    try:
        first = client.submit(_spec("first", "sleep", "0.3"))
        client.wait([first.job_id], timeout_s=60)
        running = client.submit(_spec("running", "sleep", "2"))
        deadline = time.monotonic() + 30
        while client.get(running.job_id).state is not JobState.RUNNING:
            client.reconcile_once()
            assert time.monotonic() < deadline
        _budgets(
            client,
            "budgets:\n- {name: physics-monthly, project: physics, soft: 0.5, hard: 1,"
            " owner: finops@example.org}\n",
        )
        with pytest.raises(SpecError) as refused:
            client.submit(_spec("refused", "true"))
        (problem,) = refused.value.problems
        assert problem.startswith("budget 'physics-monthly' (project physics, month from ")
        assert "of its hard limit EUR 1.00: new jobs are refused until " in problem
        assert "ask finops@example.org to raise 'hard'" in problem
        assert [j.name for j in client.list_jobs()] == ["first", "running"]  # nothing stored
        (done,) = client.wait([running.job_id], timeout_s=60)
        assert done.state is JobState.SUCCEEDED  # never killed by a budget
    finally:
        client.close()


def test_soft_limit_accepts_with_a_reason_and_an_event(tmp_path: Path) -> None:
    client = _client(tmp_path)
    try:
        first = client.submit(_spec("first", "sleep", "0.3", team="blue"))
        client.wait([first.job_id], timeout_s=60)
        _budgets(client, "budgets:\n- {name: blue-weekly, team: blue, period: week, soft: 0.1}\n")
        job = client.submit(_spec("next", "true", team="blue"))
        stored = client.get(job.job_id)
        assert stored.reason is not None
        assert stored.reason.startswith("budget 'blue-weekly' (team blue, week from ")
        assert "past its soft limit EUR 0.10" in stored.reason
        kinds = [e.kind for e in client.events(job.job_id)]
        assert "budget_warning" in kinds
        other = client.submit(_spec("other", "true", team="green"))
        assert client.get(other.job_id).reason is None  # another team's budget
    finally:
        client.close()


@pytest.mark.prometheus
def test_soft_limit_alert_reaches_alertmanager(tmp_path: Path, alertmanager: str) -> None:
    client = _client(tmp_path)
    try:
        first = client.submit(_spec("first", "sleep", "0.3"))
        client.wait([first.job_id], timeout_s=60)
        _budgets(client, "budgets:\n- {name: red-daily, team: red, period: day, soft: 0.1}\n")
        alerts = BudgetAlerts(
            client.store,
            client.settings.resolved_budgets_file,
            client.settings.resolved_rate_cards,
        )
        notifier = Notifier(AlertmanagerSink(alertmanager), repeat_interval_s=3600)
        report = notifier.notify(alerts(time.time()), time.time())
        assert len(report.sent) == 1 and not report.errors
        received = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
        (alert,) = [a for a in received if a["labels"].get("budget") == "red-daily"]
        assert alert["labels"]["alertname"] == "HpcbridgeBudgetSoftLimit"
        assert alert["labels"]["team"] == "red"
        assert "past its soft limit" in alert["annotations"]["description"]
        _budgets(client, "budgets:\n- {name: red-daily, team: red, period: day, soft: 1e9}\n")
        later = alerts(time.time())
        assert [a.status for a in later] == ["resolved"]
    finally:
        client.close()
