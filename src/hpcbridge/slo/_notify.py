"""Sending alerts: dedupe, silences, and grouped per-job failure notifications.

- SLO alerts: a firing alert is not re-sent within ``repeat_interval_s``; a resolved one is
  sent once, and only if its firing was sent. Firing alerts carry ``endsAt = now + ttl`` so
  Alertmanager resolves them by itself if hpcbridge stops sending.
- Job failures: each failed job is notified at most once (dedupe by job id), grouped by
  ``failure_group_by`` (failure class and workload class) into one alert per group.
- Silences: a muted alert is not sent and not recorded as sent, so it goes out when the
  silence ends if it still fires. A job that fails under a silence is never notified.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from hpcbridge.slo._alerts import DEFAULT_RUNBOOK_BASE, Alert
from hpcbridge.slo._records import FinishedJob
from hpcbridge.slo._silences import Silence
from hpcbridge.slo._sinks import AlertGroup, NotifyError, Sink

JOB_FAILURE_ALERT = "HpcbridgeJobFailures"
RUNBOOK_BY_FAILURE_CLASS: dict[str, str] = {
    "node_failure": "node-failure",
    "lost": "node-failure",
    "preempted": "preemption",
    "timeout": "fabric-degradation",
    "staging_error": "storage-slowdown",
    "checksum_mismatch": "silent-data-corruption",
    "licence_unavailable": "licence-exhaustion",
    "backend_unavailable": "scheduler-misconfiguration",
    "spec_error": "scheduler-misconfiguration",
}
"""Runbook per failure class; classes not listed (app_error, oom, ...) go to triage."""


@dataclass
class NotifyReport:
    sent: list[Alert] = field(default_factory=list)
    silenced: list[Alert] = field(default_factory=list)
    deduplicated: list[Alert] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Sent:
    status: Literal["firing", "resolved"]
    at: float


class Notifier:
    """Stateful front of a ``Sink``; pass ``now`` to every call (no clock inside)."""

    def __init__(
        self,
        sink: Sink,
        *,
        repeat_interval_s: float = 3600.0,
        firing_ttl_s: float | None = None,
        silences: Iterable[Silence] = (),
        group_by: Sequence[str] = ("alertname", "slo"),
        failure_group_by: Sequence[str] = ("failure_class", "workload_class"),
        failure_severity: str = "ticket",
        failure_alert_ttl_s: float = 3600.0,
        runbook_base: str = DEFAULT_RUNBOOK_BASE,
        memory_s: float = 7 * 86400.0,
    ) -> None:
        self.sink = sink
        self.repeat_interval_s = repeat_interval_s
        self.firing_ttl_s = (
            max(2 * repeat_interval_s, 300.0) if firing_ttl_s is None else firing_ttl_s
        )
        self.silences: list[Silence] = list(silences)
        self.group_by = tuple(group_by)
        self.failure_group_by = tuple(failure_group_by)
        self.failure_severity = failure_severity
        self.failure_alert_ttl_s = failure_alert_ttl_s
        self.runbook_base = runbook_base.rstrip("/")
        self.memory_s = memory_s
        self._sent: dict[str, _Sent] = {}
        self._jobs: dict[str, float] = {}

    def silenced(self, labels: Mapping[str, str] | Alert, now: float) -> bool:
        values = labels.labels if isinstance(labels, Alert) else labels
        return any(s.mutes(values, now) for s in self.silences)

    def notify(self, alerts: Sequence[Alert], now: float) -> NotifyReport:
        """Send what is new: first firings, repeats past the interval, and resolutions."""
        self._forget(now)
        report = NotifyReport()
        outgoing: list[Alert] = []
        for alert in alerts:
            last = self._sent.get(alert.fingerprint)
            if self.silenced(alert, now):
                report.silenced.append(alert)
            elif alert.status == "firing":
                repeat = self.repeat_interval_s
                if last is not None and last.status == "firing" and now - last.at < repeat:
                    report.deduplicated.append(alert)
                else:
                    outgoing.append(replace(alert, ends_at=now + self.firing_ttl_s))
            elif last is not None and last.status == "firing":
                outgoing.append(alert)
            else:
                report.deduplicated.append(alert)
        if self._deliver(_group(outgoing, self.group_by), report):
            for alert in outgoing:
                self._sent[alert.fingerprint] = _Sent(alert.status, now)
            report.sent.extend(outgoing)
        return report

    def notify_failures(self, jobs: Iterable[FinishedJob], now: float) -> NotifyReport:
        """One alert per group of newly failed jobs; each job is notified at most once."""
        self._forget(now)
        report = NotifyReport()
        fresh: list[tuple[FinishedJob, dict[str, str]]] = []
        for job in jobs:
            if job.outcome != "failed" or job.job_id in self._jobs:
                continue
            labels = self._job_labels(job)
            if self.silenced(labels, now):
                self._jobs[job.job_id] = now
                report.silenced.append(
                    Alert("firing", labels, {}, job.finished_at, job_ids=(job.job_id,))
                )
            else:
                fresh.append((job, labels))
        alerts = self._failure_alerts(fresh, now)
        if self._deliver(
            [AlertGroup(_pick(a.labels, self.failure_group_by), (a,)) for a in alerts], report
        ):
            self._jobs.update((job.job_id, now) for job, _ in fresh)
            report.sent.extend(alerts)
        return report

    def _job_labels(self, job: FinishedJob) -> dict[str, str]:
        return {
            "alertname": JOB_FAILURE_ALERT,
            "severity": self.failure_severity,
            "project": job.project,
            "workload_class": job.workload_class,
            "failure_class": job.failure_class,
        }

    def _failure_alerts(
        self, fresh: Sequence[tuple[FinishedJob, dict[str, str]]], now: float
    ) -> list[Alert]:
        groups: dict[tuple[str, ...], list[FinishedJob]] = {}
        for job, labels in fresh:
            key = tuple(labels.get(name, "") for name in self.failure_group_by)
            groups.setdefault(key, []).append(job)
        alerts = []
        for key, members in sorted(groups.items()):
            members.sort(key=lambda j: j.finished_at, reverse=True)
            labels = {
                "alertname": JOB_FAILURE_ALERT,
                "severity": self.failure_severity,
                **dict(zip(self.failure_group_by, key, strict=True)),
            }
            alerts.append(
                Alert(
                    "firing",
                    labels,
                    _failure_annotations(members, labels, self.runbook_base),
                    min(j.finished_at for j in members),
                    now + self.failure_alert_ttl_s,
                    tuple(j.job_id for j in members),
                )
            )
        return alerts

    def _deliver(self, groups: Sequence[AlertGroup], report: NotifyReport) -> bool:
        if not groups:
            return True
        try:
            self.sink.send(groups)
        except NotifyError as exc:
            report.errors.append(str(exc))
            return False
        return True

    def _forget(self, now: float) -> None:
        horizon = now - self.memory_s
        self._jobs = {j: at for j, at in self._jobs.items() if at >= horizon}
        self._sent = {
            f: s for f, s in self._sent.items() if s.status == "firing" or s.at >= horizon
        }


def _pick(labels: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    return {name: labels.get(name, "") for name in names}


def _group(alerts: Sequence[Alert], names: Sequence[str]) -> list[AlertGroup]:
    groups: dict[tuple[str, ...], list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(tuple(alert.labels.get(n, "") for n in names), []).append(alert)
    return [
        AlertGroup(dict(zip(names, key, strict=True)), tuple(members))
        for key, members in groups.items()
    ]


def _failure_annotations(
    jobs: Sequence[FinishedJob], labels: dict[str, str], runbook_base: str
) -> dict[str, str]:
    failure_class = labels.get("failure_class", "")
    where = ", ".join(f"{k}={v}" for k, v in labels.items() if k not in ("alertname", "severity"))
    shown = ", ".join(f"{j.job_id} ({j.project})" for j in jobs[:20])
    more = f" and {len(jobs) - 20} more" if len(jobs) > 20 else ""
    runbook = RUNBOOK_BY_FAILURE_CLASS.get(failure_class, "triage")
    return {
        "summary": f"{len(jobs)} job(s) failed ({where})",
        "description": f"Failed jobs: {shown}{more}. Run `hpcbridge why JOB` for each.",
        "runbook_url": f"{runbook_base}/{runbook}.md",
    }
