"""The built-in SLO evaluator: for servers without Prometheus.

Every ``evaluation_interval`` it reads the jobs that finished since the last step, keeps
those inside the longest SLO window, evaluates the burn-rate alerts and sends what is new
(and per-job failure notices, grouped) through a ``Notifier``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from hpcbridge.slo import (
    Alert,
    FinishedJob,
    FinishedJobFeed,
    Notifier,
    NotifyReport,
    SloDefinition,
    build_samples_by_slo,
    evaluate_alerts,
)
from hpcbridge.store import Store

log = structlog.get_logger("hpcbridge.api")


class SloEvaluator:
    def __init__(
        self,
        store: Store,
        slos: Sequence[SloDefinition],
        notifier: Notifier,
        *,
        evaluation_interval_s: float = 60.0,
        extra_alerts: Callable[[float], list[Alert]] | None = None,
    ) -> None:
        """``extra_alerts(now)``: more alerts to send with the SLOs' (budgets)."""
        self._extra_alerts = extra_alerts
        self.slos = list(slos)
        self.notifier = notifier
        self.evaluation_interval_s = evaluation_interval_s
        self._feed = FinishedJobFeed(store)
        self._jobs: list[FinishedJob] = []
        self._horizon_s = max((slo.window for slo in self.slos), default=0)
        self.alerts: list[Alert] = []
        self.last_errors: list[str] = []
        self.steps = 0

    def step(self, now: float) -> tuple[NotifyReport, NotifyReport]:
        """One evaluation at ``now``: (SLO alerts report, job failure notices report)."""
        new = self._feed.poll()
        self._jobs = [j for j in self._jobs if j.finished_at >= now - self._horizon_s] + new
        samples = build_samples_by_slo(self.slos, self._jobs)
        self.alerts = evaluate_alerts(
            self.slos,
            samples,
            now,
            previous=self.alerts,
            eval_interval_s=self.evaluation_interval_s,
        )
        extra = self._extra_alerts(now) if self._extra_alerts else []
        sent = self.notifier.notify([*self.alerts, *extra], now)
        failures = self.notifier.notify_failures(new, now)
        self.last_errors = sent.errors + failures.errors
        for error in self.last_errors:
            log.warning("alert_delivery_failed", error=error)
        self.steps += 1
        return sent, failures
