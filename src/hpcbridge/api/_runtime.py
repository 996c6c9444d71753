"""What runs inside ``hpcbridge serve`` besides HTTP: the reconciler loop, the SLO
evaluator and the metrics collector, each in a daemon thread, stopped together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from hpcbridge.api._budget_alerts import BudgetAlerts
from hpcbridge.api._evaluator import SloEvaluator
from hpcbridge.api._options import ServeOptions
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.slo import (
    DEFAULT_RUNBOOK_BASE,
    AlertmanagerSink,
    Notifier,
    default_slos,
    load_slo_file,
)
from hpcbridge.telemetry import ReconcilerStats, StoreCollector

log = structlog.get_logger("hpcbridge.api")


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: dict[str, Any]


class Runtime:
    """Owns the embedded client and the background loops of one server process."""

    def __init__(
        self,
        settings: Settings,
        options: ServeOptions,
        *,
        client: Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.options = options
        self.client = client or Client(settings)
        self._clock = clock
        found = getattr(self.client.reconciler, "stats", None)
        self.stats = found if isinstance(found, ReconcilerStats) else ReconcilerStats()
        self._own_stats = not isinstance(found, ReconcilerStats)
        self.collector = StoreCollector(self.client.store, stats=self.stats, clock=clock)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        self.evaluator = self._evaluator() if options.alertmanager_url else None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.leader = False
        self.loop_errors = 0
        self.caught_up = False

    def _evaluator(self) -> SloEvaluator:
        assert self.options.alertmanager_url is not None
        if self.options.slo_file is not None:
            document = load_slo_file(self.options.slo_file)  # fails at start, not later
            slos, interval = list(document.slos), float(document.evaluation_interval)
        else:
            slos, interval = default_slos(), 60.0
        notifier = Notifier(
            AlertmanagerSink(self.options.alertmanager_url),
            repeat_interval_s=self.options.repeat_interval_s,
            runbook_base=self.settings.runbook_url_base or DEFAULT_RUNBOOK_BASE,
        )
        budgets = BudgetAlerts(
            self.client.store,
            self.settings.resolved_budgets_file,
            self.settings.resolved_rate_cards,
        )
        return SloEvaluator(
            self.client.store,
            slos,
            notifier,
            evaluation_interval_s=interval,
            extra_alerts=budgets,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._spawn("telemetry-catch-up", self._catch_up)
        if self.options.reconcile:
            self._spawn("reconciler", self._reconcile_loop)
        if self.evaluator is not None:
            self._spawn("slo-evaluator", self._evaluate_loop)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"hpcbridge-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the loops (a cycle in progress finishes) and release the leader lock."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        self.client.close()

    # -- loops -----------------------------------------------------------------------------

    def _catch_up(self) -> None:
        """Fold the event log once before the first scrape asks for it."""
        try:
            self.collector.refresh()
            self.caught_up = True
        except Exception:
            log.exception("telemetry_catch_up_failed")

    def _reconcile_loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                report = self.client.reconcile_once()
            except Exception:  # the loop outlives any one cycle's failure
                self.loop_errors += 1
                log.exception("reconcile_cycle_failed")
                self._stop.wait(self.settings.poll_interval_s)
                continue
            self.leader = report is not None
            if report is not None and self._own_stats:
                self.stats.record_cycle(
                    time.monotonic() - started,
                    now=self._clock(),
                    errors=len(report.errors),
                    unavailable_backends=report.unavailable_backends,
                )
            if report is None or not (report.changes or report.submitted):
                self._stop.wait(self.settings.poll_interval_s)

    def _evaluate_loop(self) -> None:
        evaluator = self.evaluator
        assert evaluator is not None
        while not self._stop.is_set():
            try:
                evaluator.step(self._clock())
            except Exception:
                log.exception("slo_evaluation_failed")
            self._stop.wait(evaluator.evaluation_interval_s)

    # -- health ----------------------------------------------------------------------------

    def health(self) -> Health:
        detail: dict[str, Any] = {"caught_up": self.caught_up}
        ok = True
        try:
            self.client.store.all_events(after_seq=self.collector.last_seq, limit=1)
            detail["store"] = "ok"
        except Exception as exc:
            detail["store"] = f"unreachable: {exc}"
            ok = False
        if self.options.reconcile:
            alive = any(t.name == "hpcbridge-reconciler" and t.is_alive() for t in self._threads)
            snapshot = self.stats.snapshot()
            detail["reconciler"] = {
                "running": alive,
                "leader": self.leader,
                "cycles": snapshot.cycles,
                "last_cycle_at": snapshot.last_cycle_at,
                "backends_down": sorted(n for n, b in snapshot.backends.items() if not b.up),
            }
            ok = ok and alive
        if self.evaluator is not None:
            detail["slo_evaluator"] = {
                "slos": len(self.evaluator.slos),
                "evaluations": self.evaluator.steps,
                "firing": sorted(
                    f"{a.slo}/{a.severity}" for a in self.evaluator.alerts if a.status == "firing"
                ),
                "delivery_errors": self.evaluator.last_errors,
            }
        return Health(ok, {"status": "ok" if ok else "unhealthy", **detail})
