"""The metric contract SLOs are written against, read from ``hpcbridge.events``.

The telemetry module exports these series from the same contract; SLO selectors may name
only them, so the Python evaluator (which rebuilds the same increments from finished
jobs) and the generated Prometheus rules always agree on what a selector means.
"""

from __future__ import annotations

from collections.abc import Mapping

from hpcbridge.events import (
    ATTEMPTS_FINISHED,
    CHECKPOINT_DURATION,
    FAILURE_CLASSES,
    GPU_UTILIZATION,
    JOBS_FINISHED,
    LABEL_VALUES,
    LICENCE_WAIT,
    METRIC_KINDS,
    OUTCOMES,
    PREEMPTIONS,
    PROMISED_BUCKETS,
    QUEUE_WAIT,
    RUN_SECONDS,
    SLO_LABELS,
    MetricKind,
)

__all__ = [
    "ATTEMPTS_FINISHED",
    "CHECKPOINT_DURATION",
    "FAILURE_CLASSES",
    "GPU_UTILIZATION",
    "HISTOGRAM_BUCKETS",
    "JOBS_FINISHED",
    "LABEL_VALUES",
    "LICENCE_WAIT",
    "METRIC_KINDS",
    "METRIC_LABELS",
    "OUTCOMES",
    "PARTITION_KINDS",
    "PREEMPTIONS",
    "QUEUE_WAIT",
    "RUN_SECONDS",
    "MetricKind",
    "counter_series",
    "metrics_of_kind",
]

PARTITION_KINDS: frozenset[str] = LABEL_VALUES["partition_kind"]

METRIC_LABELS: Mapping[str, tuple[str, ...]] = SLO_LABELS
"""The labels a selector may name on each series."""

HISTOGRAM_BUCKETS: Mapping[str, tuple[float, ...]] = PROMISED_BUCKETS
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
