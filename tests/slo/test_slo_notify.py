"""The notifier against a fake webhook receiver on 127.0.0.1: dedupe, silences, grouping."""

from __future__ import annotations

from typing import Literal

import pytest

from hpcbridge.slo import (
    Alert,
    FinishedJob,
    Notifier,
    Silence,
    WebhookSink,
    parse_matchers,
)
from tests.slo.conftest import Receiver

HOUR = 3600.0


def _alert(
    slo: str = "platform-success",
    severity: str = "page",
    status: Literal["firing", "resolved"] = "firing",
    workload_class: str = "*",
) -> Alert:
    labels = {
        "alertname": "HpcbridgeSloBurnRate",
        "slo": slo,
        "severity": severity,
        "workload_class": workload_class,
        "service": "hpcbridge",
    }
    return Alert(
        status,
        labels,
        {"summary": f"{slo} burns"},
        100.0,
        None if status == "firing" else 5000.0,
        ("job-1", "job-2"),
    )


def _failed(
    job_id: str,
    failure_class: str = "node_failure",
    workload_class: str = "critical",
    project: str = "climate",
    at: float = 50.0,
) -> FinishedJob:
    return FinishedJob(job_id, project, workload_class, "failed", failure_class, at)


def test_firing_alert_is_posted_in_webhook_format(webhook: Receiver) -> None:
    notifier = Notifier(WebhookSink(webhook.url), repeat_interval_s=HOUR)
    report = notifier.notify([_alert()], now=1000.0)
    assert len(report.sent) == 1 and not report.errors
    [body] = webhook.bodies
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["groupLabels"] == {"alertname": "HpcbridgeSloBurnRate", "slo": "platform-success"}
    [sent] = body["alerts"]
    assert sent["labels"]["severity"] == "page"
    assert sent["jobIds"] == ["job-1", "job-2"]
    assert sent["annotations"]["job_ids"] == "job-1, job-2"
    assert sent["startsAt"] == "1970-01-01T00:01:40.000Z"
    assert sent["endsAt"] == "1970-01-01T02:16:40.000Z"  # now + 2 x repeat interval


def test_same_alert_is_not_resent_within_the_repeat_interval(webhook: Receiver) -> None:
    notifier = Notifier(WebhookSink(webhook.url), repeat_interval_s=HOUR)
    notifier.notify([_alert()], now=0.0)
    report = notifier.notify([_alert()], now=HOUR - 1)
    assert len(report.deduplicated) == 1 and not report.sent
    assert len(notifier.notify([_alert()], now=HOUR).sent) == 1
    assert len(webhook.bodies) == 2


def test_resolved_is_sent_once_and_only_after_a_firing(webhook: Receiver) -> None:
    notifier = Notifier(WebhookSink(webhook.url))
    assert not notifier.notify([_alert(status="resolved")], now=0.0).sent
    notifier.notify([_alert()], now=10.0)
    assert len(notifier.notify([_alert(status="resolved")], now=20.0).sent) == 1
    assert not notifier.notify([_alert(status="resolved")], now=30.0).sent
    assert [b["status"] for b in webhook.bodies] == ["firing", "resolved"]
    # After resolving, a new firing goes out at once.
    assert len(notifier.notify([_alert()], now=40.0).sent) == 1


def test_silence_mutes_until_it_ends(webhook: Receiver) -> None:
    silence = Silence(
        parse_matchers('workload_class="critical"'), 0.0, 100.0, comment="maintenance"
    )
    notifier = Notifier(WebhookSink(webhook.url), silences=[silence])
    critical, other = _alert("a", workload_class="critical"), _alert("b")
    report = notifier.notify([critical, other], now=50.0)
    assert [a.slo for a in report.silenced] == ["a"]
    assert [a.slo for a in report.sent] == ["b"]
    assert len(notifier.notify([critical], now=100.0).sent) == 1  # silence over
    assert [b["alerts"][0]["labels"]["slo"] for b in webhook.bodies] == ["b", "a"]


def test_silence_matchers_and_expiry() -> None:
    silence = Silence(parse_matchers('severity="page", slo=~"platform-.*"'), 10.0, 20.0)
    labels = {"severity": "page", "slo": "platform-success"}
    assert silence.mutes(labels, 15.0)
    assert not silence.mutes(labels, 20.0) and not silence.mutes(labels, 9.0)
    assert not silence.mutes({"severity": "ticket", "slo": "platform-success"}, 15.0)
    with pytest.raises(ValueError, match="at least one matcher"):
        Silence((), 0.0, 1.0)
    with pytest.raises(ValueError, match="is not a matcher"):
        parse_matchers("severity")


def test_slo_alerts_are_grouped_per_slo(webhook: Receiver) -> None:
    notifier = Notifier(WebhookSink(webhook.url))
    notifier.notify([_alert("a", "page"), _alert("a", "ticket"), _alert("b", "page")], 0.0)
    groups = {b["groupLabels"]["slo"]: len(b["alerts"]) for b in webhook.bodies}
    assert groups == {"a": 2, "b": 1}


def test_job_failures_are_grouped_and_deduplicated_by_job(webhook: Receiver) -> None:
    notifier = Notifier(WebhookSink(webhook.url), failure_alert_ttl_s=600.0)
    jobs = [
        _failed("n1", at=10.0),
        _failed("n2", at=30.0),
        _failed("n3", workload_class="batch"),
        _failed("a1", "app_error"),
        FinishedJob("ok", "climate", "critical", "succeeded", "", 5.0),
    ]
    report = notifier.notify_failures(jobs, now=100.0)
    assert len(report.sent) == 3
    by_group = {
        (a["labels"]["failure_class"], a["labels"]["workload_class"]): a
        for body in webhook.bodies
        for a in body["alerts"]
    }
    assert set(by_group) == {
        ("node_failure", "critical"),
        ("node_failure", "batch"),
        ("app_error", "critical"),
    }
    node = by_group[("node_failure", "critical")]
    assert node["jobIds"] == ["n2", "n1"]
    assert node["labels"]["alertname"] == "HpcbridgeJobFailures"
    assert node["annotations"]["summary"] == (
        "2 job(s) failed (failure_class=node_failure, workload_class=critical)"
    )
    assert node["annotations"]["runbook_url"] == "docs/runbooks/node-failure.md"
    assert node["startsAt"] == "1970-01-01T00:00:10.000Z"
    assert node["endsAt"] == "1970-01-01T00:11:40.000Z"
    assert by_group[("app_error", "critical")]["annotations"]["runbook_url"].endswith("triage.md")
    webhook.bodies.clear()
    again = notifier.notify_failures([*jobs, _failed("n4")], now=200.0)
    assert [a.job_ids for a in again.sent] == [("n4",)]
    assert len(webhook.bodies) == 1


def test_job_failures_under_a_silence_are_never_sent(webhook: Receiver) -> None:
    silence = Silence(parse_matchers("failure_class=node_failure, project=climate"), 0.0, 100.0)
    notifier = Notifier(WebhookSink(webhook.url), silences=[silence])
    report = notifier.notify_failures([_failed("n1"), _failed("o1", project="other")], 50.0)
    assert [a.job_ids for a in report.silenced] == [("n1",)]
    assert [a.job_ids for a in report.sent] == [("o1",)]
    assert not notifier.notify_failures([_failed("n1")], now=200.0).sent


def test_delivery_failure_is_reported_and_retried(webhook: Receiver) -> None:
    notifier = Notifier(WebhookSink(webhook.url))
    webhook.status = 500
    report = notifier.notify([_alert()], now=0.0)
    assert not report.sent and "answered 500" in report.errors[0]
    failures = notifier.notify_failures([_failed("n1")], now=0.0)
    assert failures.errors and not failures.sent
    webhook.status = 200
    assert len(notifier.notify([_alert()], now=1.0).sent) == 1
    assert len(notifier.notify_failures([_failed("n1")], now=1.0).sent) == 1


def test_unreachable_receiver_is_an_error_not_a_crash() -> None:
    notifier = Notifier(WebhookSink("http://127.0.0.1:9/hook", timeout_s=2))
    report = notifier.notify([_alert()], now=0.0)
    assert report.errors and "is the receiver up?" in report.errors[0]
