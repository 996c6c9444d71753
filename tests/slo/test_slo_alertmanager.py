"""The notifier against a real Alertmanager (Debian's binary) on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from hpcbridge.slo import (
    AlertmanagerSink,
    FinishedJob,
    Notifier,
    build_samples_by_slo,
    default_slos,
    evaluate_alerts,
)

pytestmark = pytest.mark.prometheus
PLATFORM = default_slos()[0]


def _active(url: str, **filters: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v2/alerts", params=filters, timeout=5)
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


def _jobs(now: float, *, recovered: int = 0) -> list[FinishedJob]:
    """20 good jobs, then 10 node failures in the minute before ``now``, then recoveries."""
    good = [
        FinishedJob(f"ok-{i}", "climate", "critical", "succeeded", "", now - 3000 + i)
        for i in range(20)
    ]
    bad = [
        FinishedJob(f"bad-{i}", "climate", "critical", "failed", "node_failure", now - 60 + i)
        for i in range(10)
    ]
    after = [
        FinishedJob(f"after-{i}", "climate", "critical", "succeeded", "", now + 1 + i)
        for i in range(recovered)
    ]
    return good + bad + after


def test_evaluated_alert_reaches_alertmanager_and_resolves(alertmanager: str) -> None:
    now = time.time()
    fired_at = now - 600  # evaluated ten minutes ago, resolved now
    samples = build_samples_by_slo([PLATFORM], _jobs(fired_at, recovered=400))
    alerts = evaluate_alerts([PLATFORM], samples, fired_at)
    assert {a.severity for a in alerts} == {"page", "ticket"}
    notifier = Notifier(AlertmanagerSink(alertmanager), repeat_interval_s=3600)
    report = notifier.notify(alerts, fired_at)
    assert len(report.sent) == 2 and not report.errors

    received = _active(alertmanager, filter='slo="platform-success"')
    assert {a["labels"]["severity"] for a in received} == {"page", "ticket"}
    page = next(a for a in received if a["labels"]["severity"] == "page")
    assert page["labels"]["alertname"] == "HpcbridgeSloBurnRate"
    assert page["annotations"]["runbook_url"] == "docs/runbooks/triage.md"
    assert page["annotations"]["job_ids"].startswith("bad-9, bad-8")
    assert page["status"]["state"] == "active"

    later = evaluate_alerts([PLATFORM], samples, now, previous=alerts)
    assert {(a.severity, a.status) for a in later} == {("page", "resolved"), ("ticket", "firing")}
    report = notifier.notify(later, now)
    assert [a.severity for a in report.sent] == ["page"]  # the ticket was sent recently
    deadline = time.monotonic() + 10
    severities: set[str] = set()
    while time.monotonic() < deadline:
        severities = {a["labels"]["severity"] for a in _active(alertmanager)}
        if severities == {"ticket"}:
            break
        time.sleep(0.1)
    assert severities == {"ticket"}


def test_grouped_job_failures_reach_alertmanager(alertmanager: str) -> None:
    now = time.time()
    notifier = Notifier(AlertmanagerSink(alertmanager))
    report = notifier.notify_failures(_jobs(now), now)
    assert [a.job_ids[:2] for a in report.sent] == [("bad-9", "bad-8")]
    [received] = _active(alertmanager, filter='alertname="HpcbridgeJobFailures"')
    assert received["labels"] == {
        "alertname": "HpcbridgeJobFailures",
        "severity": "ticket",
        "failure_class": "node_failure",
        "workload_class": "critical",
    }
    assert received["annotations"]["summary"].startswith("10 job(s) failed")
    assert not notifier.notify_failures(_jobs(now), now + 1).sent  # deduplicated by job
