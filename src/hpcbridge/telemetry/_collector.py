"""A Prometheus collector over the store, computed at scrape time.

Counters and histograms come from the append-only event log, read by the one event fold
(``hpcbridge.events``) incrementally: each scrape reads only the events written since the
previous one (``seq`` greater than the last one seen). State gauges come from the active
attempts, which are few. Register it in a registry you own, never the global one::

    registry = CollectorRegistry()
    registry.register(StoreCollector(store, stats=stats))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from hpcbridge.events import EventFold, EventReader, JobLabels
from hpcbridge.states import AttemptState
from hpcbridge.store import Attempt, Store
from hpcbridge.telemetry import _names as n
from hpcbridge.telemetry._fold import Histogram, MetricTotals
from hpcbridge.telemetry._stats import ReconcilerStats, StatsSnapshot
from hpcbridge.telemetry._status import latest_gpu_utilization

_COUNTERS = (
    n.JOBS_FINISHED,
    n.ATTEMPTS_FINISHED,
    n.RUN_SECONDS,
    n.PREEMPTIONS,
    n.LOST_CORE_SECONDS,
    n.COST,
    n.TRANSITIONS,
    n.STAGING_BYTES,
    n.STAGING_TRANSFER_SECONDS,
    n.CHECKSUM_MISMATCHES,
)
_HISTOGRAMS = n.FOLDED_HISTOGRAMS


class StoreCollector(Collector):
    """Exports hpcbridge's metrics from a ``Store`` (and, if given, ``ReconcilerStats``)."""

    def __init__(
        self,
        store: Store,
        *,
        stats: ReconcilerStats | None = None,
        clock: Callable[[], float] = time.time,
        chunk_size: int = 5000,
        gpu_max_age_s: float = 120.0,
    ) -> None:
        self._store = store
        self._stats = stats
        self._clock = clock
        self._gpu_max_age_s = gpu_max_age_s
        self._totals = MetricTotals()
        self._fold = EventFold(self._totals)
        self._reader = EventReader(store, self._fold, chunk_size=chunk_size)
        self._lock = threading.Lock()
        self._initialised = False
        self._held_bases: set[tuple[str, ...]] = set()
        self._held_keys: set[tuple[str, ...]] = set()

    @property
    def last_seq(self) -> int:
        """The newest event folded so far."""
        return self._fold.seq

    def refresh(self) -> int:
        """Fold the events written since the last call; returns how many were read."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> int:
        read = self._reader.read()
        self._hold_new_series()
        return read

    def _hold_new_series(self) -> None:
        """Label sets born after start-up are exported at 0 in the next scrape first.

        Otherwise a new project's first jobs, finished between two scrapes, would appear
        with their final value and ``rate()`` would never see them increase. Label sets
        found while folding the history at start-up are exported as they are: their
        values equal what the previous process exported, so nothing is lost.
        """
        totals = self._totals
        if self._initialised:
            self._held_bases.update(totals.new_bases)
            self._held_keys.update(totals.new_keys)
        totals.new_bases.clear()
        totals.new_keys.clear()
        self._initialised = True

    def _held(self, name: str, labels: tuple[str, ...]) -> bool:
        if name == n.TRANSITIONS:
            return False
        if labels[:2] in self._held_bases:
            return True
        return name == n.ATTEMPTS_FINISHED and labels[:3] in self._held_keys

    # -- Collector -----------------------------------------------------------------------

    def describe(self) -> list[Metric]:
        return list(_families().values())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self._refresh()
            families = self._from_fold()
            self._held_bases.clear()  # exported at 0 once: real values from now on
            self._held_keys.clear()
            running = self._running_attempts()
            gpu = self._gpu_utilization(running)
        families[n.NODE_RUNNING_ATTEMPTS] = _nodes(running)
        families[n.GPU_UTILIZATION] = gpu
        if self._stats is not None:
            families.update(_from_stats(self._stats.snapshot()))
        yield from families.values()

    def _from_fold(self) -> dict[str, Metric]:
        totals = self._totals
        families = _families()
        for name in _COUNTERS:
            family = families[name]
            assert isinstance(family, CounterMetricFamily)
            for labels, value in sorted(totals.counters[name].items()):
                family.add_metric(labels, 0.0 if self._held(name, labels) else value)
        for name in _HISTOGRAMS:
            hist = families[name]
            assert isinstance(hist, HistogramMetricFamily)
            for labels, histogram in sorted(totals.histograms[name].items()):
                shown = Histogram(histogram.bounds) if self._held(name, labels) else histogram
                hist.add_metric(labels, shown.cumulative(), shown.total)
        jobs = families[n.JOBS]
        assert isinstance(jobs, GaugeMetricFamily)
        for labels, count in sorted(totals.jobs_by_state.items()):
            jobs.add_metric(labels, float(count))
        processed = families[n.EVENTS_PROCESSED]
        assert isinstance(processed, CounterMetricFamily)
        processed.add_metric((), float(self._fold.events))
        return families

    def _running_attempts(self) -> list[tuple[Attempt, JobLabels | None]]:
        return [
            (a, self._fold.labels(a.job_id))
            for a in self._store.active_attempts()
            if a.state is AttemptState.RUNNING
        ]

    def _gpu_utilization(self, running: list[tuple[Attempt, JobLabels | None]]) -> Metric:
        family = _families()[n.GPU_UTILIZATION]
        since = self._clock() - self._gpu_max_age_s
        readings: dict[tuple[str, ...], list[float]] = {}
        for attempt, info in running:
            directory = attempt.status_dir
            if info is None or info.gpus <= 0 or directory is None:
                continue
            value = latest_gpu_utilization(Path(directory), since=since)
            if value is not None:
                readings.setdefault(info.base, []).append(value)
        assert isinstance(family, GaugeMetricFamily)
        for labels, values in sorted(readings.items()):
            family.add_metric(labels, sum(values) / len(values))
        return family


def _families() -> dict[str, Metric]:
    families: dict[str, Metric] = {}
    for name, labels in n.LABELS.items():
        doc = n.HELP[name]
        if name in n.HISTOGRAM_BUCKETS:
            families[name] = HistogramMetricFamily(name, doc, labels=labels)
        elif name.endswith("_total"):
            families[name] = CounterMetricFamily(name, doc, labels=labels)
        else:
            families[name] = GaugeMetricFamily(name, doc, labels=labels)
    return families


def _nodes(running: list[tuple[Attempt, JobLabels | None]]) -> Metric:
    family = GaugeMetricFamily(
        n.NODE_RUNNING_ATTEMPTS, n.HELP[n.NODE_RUNNING_ATTEMPTS], labels=("backend", "node")
    )
    counts: dict[tuple[str, str], int] = {}
    for attempt, _ in running:
        for node in attempt.nodes:
            key = (attempt.backend, node)
            counts[key] = counts.get(key, 0) + 1
    for labels, count in sorted(counts.items()):
        family.add_metric(labels, float(count))
    return family


def _add_histogram(family: Metric, labels: tuple[str, ...], histogram: Histogram) -> None:
    assert isinstance(family, HistogramMetricFamily)
    family.add_metric(labels, histogram.cumulative(), histogram.total)


def _from_stats(snapshot: StatsSnapshot) -> Mapping[str, Metric]:
    families = {name: _families()[name] for name in _STATS_NAMES}
    for backend, stats in sorted(snapshot.backends.items()):
        _gauge(families[n.BACKEND_UP]).add_metric((backend,), 1.0 if stats.up else 0.0)
        _counter(families[n.BACKEND_POLL_ERRORS]).add_metric((backend,), float(stats.errors))
        _add_histogram(families[n.BACKEND_POLL_DURATION], (backend,), stats.poll_duration)
        for state, count in sorted(stats.nodes.items()):
            _gauge(families[n.BACKEND_NODES]).add_metric((backend, state), float(count))
    _counter(families[n.CYCLES]).add_metric((), float(snapshot.cycles))
    _counter(families[n.CYCLE_ERRORS]).add_metric((), float(snapshot.cycle_errors))
    _add_histogram(families[n.CYCLE_DURATION], (), snapshot.cycle_duration)
    if snapshot.last_cycle_at is not None:
        _gauge(families[n.LAST_CYCLE]).add_metric((), snapshot.last_cycle_at)
    return families


_STATS_NAMES = (
    n.BACKEND_UP,
    n.BACKEND_POLL_DURATION,
    n.BACKEND_POLL_ERRORS,
    n.BACKEND_NODES,
    n.CYCLES,
    n.CYCLE_DURATION,
    n.CYCLE_ERRORS,
    n.LAST_CYCLE,
)


def _gauge(family: Metric) -> GaugeMetricFamily:
    assert isinstance(family, GaugeMetricFamily)
    return family


def _counter(family: Metric) -> CounterMetricFamily:
    assert isinstance(family, CounterMetricFamily)
    return family
