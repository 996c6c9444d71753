"""The metric contract SLOs are written against, as plain data.

The telemetry module exports these series; SLO selectors may name only them, so the Python
evaluator (which rebuilds the same increments from finished jobs) and the generated
Prometheus rules always agree on what a selector means.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from hpcbridge.states import FailureClass


class MetricKind(StrEnum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"


OUTCOMES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
FAILURE_CLASSES: frozenset[str] = frozenset({"", *(c.value for c in FailureClass)})
PARTITION_KINDS: frozenset[str] = frozenset({"spot", "regular"})

JOBS_FINISHED = "hpcbridge_jobs_finished_total"
ATTEMPTS_FINISHED = "hpcbridge_attempts_finished_total"
QUEUE_WAIT = "hpcbridge_queue_wait_seconds"
CHECKPOINT_DURATION = "hpcbridge_checkpoint_duration_seconds"
RUN_SECONDS = "hpcbridge_run_seconds_total"
GPU_UTILIZATION = "hpcbridge_gpu_utilization_ratio"
PREEMPTIONS = "hpcbridge_preemptions_total"

METRIC_KINDS: Mapping[str, MetricKind] = {
    JOBS_FINISHED: MetricKind.COUNTER,
    ATTEMPTS_FINISHED: MetricKind.COUNTER,
    QUEUE_WAIT: MetricKind.HISTOGRAM,
    CHECKPOINT_DURATION: MetricKind.HISTOGRAM,
    RUN_SECONDS: MetricKind.COUNTER,
    GPU_UTILIZATION: MetricKind.GAUGE,
    PREEMPTIONS: MetricKind.COUNTER,
}

_BASE = ("project", "workload_class")
METRIC_LABELS: Mapping[str, tuple[str, ...]] = {
    JOBS_FINISHED: (*_BASE, "outcome", "failure_class"),
    ATTEMPTS_FINISHED: (*_BASE, "backend", "outcome", "failure_class"),
    QUEUE_WAIT: _BASE,
    CHECKPOINT_DURATION: _BASE,
    RUN_SECONDS: _BASE,
    GPU_UTILIZATION: _BASE,
    PREEMPTIONS: (*_BASE, "partition_kind"),
}

LABEL_VALUES: Mapping[str, frozenset[str]] = {
    "outcome": OUTCOMES,
    "failure_class": FAILURE_CLASSES,
    "partition_kind": PARTITION_KINDS,
}
"""Labels whose values are a closed set; a selector naming another value is a typo."""

HISTOGRAM_BUCKETS: Mapping[str, tuple[float, ...]] = {
    QUEUE_WAIT: (60, 300, 900, 1800, 3600, 7200, 14400),
}
"""Bucket bounds the telemetry module promises; a threshold SLI must sit on one of them."""


def counter_series() -> dict[str, tuple[str, ...]]:
    """Every counter-like series a ratio SLI may name, with its labels.

    Histograms contribute their ``_count`` and ``_sum`` series, which are counters too.
    """
    series: dict[str, tuple[str, ...]] = {}
    for name, kind in METRIC_KINDS.items():
        if kind is MetricKind.COUNTER:
            series[name] = METRIC_LABELS[name]
        elif kind is MetricKind.HISTOGRAM:
            series[f"{name}_count"] = METRIC_LABELS[name]
            series[f"{name}_sum"] = METRIC_LABELS[name]
    return series


def metrics_of_kind(kind: MetricKind) -> list[str]:
    return sorted(name for name, k in METRIC_KINDS.items() if k is kind)
