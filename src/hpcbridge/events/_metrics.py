"""The metric contract: the series the fold's records are exported under, as plain data.

``hpcbridge.telemetry`` exports these series (and more); SLO selectors may name only
these, so the SLO module's Python evaluator, which rebuilds the same increments from
``FinishedJob`` records, and the generated Prometheus rules agree on what a selector
means. Labels are bounded: never a job id or a user name.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from hpcbridge.states import FailureClass


class MetricKind(StrEnum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"


class Outcome(StrEnum):
    """How a job or an attempt ended, as the ``outcome`` label says it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


REGULAR, SPOT = "regular", "spot"
PARTITION_KINDS: tuple[str, ...] = (REGULAR, SPOT)
"""Values of ``partition_kind``; an attempt that says nothing (or anything else) is regular."""

JOBS_FINISHED = "hpcbridge_jobs_finished_total"
ATTEMPTS_FINISHED = "hpcbridge_attempts_finished_total"
QUEUE_WAIT = "hpcbridge_queue_wait_seconds"
LICENCE_WAIT = "hpcbridge_licence_wait_seconds"
CHECKPOINT_DURATION = "hpcbridge_checkpoint_duration_seconds"
RUN_SECONDS = "hpcbridge_run_seconds_total"
GPU_UTILIZATION = "hpcbridge_gpu_utilization_ratio"
PREEMPTIONS = "hpcbridge_preemptions_total"

METRIC_KINDS: Mapping[str, MetricKind] = {
    JOBS_FINISHED: MetricKind.COUNTER,
    ATTEMPTS_FINISHED: MetricKind.COUNTER,
    QUEUE_WAIT: MetricKind.HISTOGRAM,
    LICENCE_WAIT: MetricKind.HISTOGRAM,
    CHECKPOINT_DURATION: MetricKind.HISTOGRAM,
    RUN_SECONDS: MetricKind.COUNTER,
    GPU_UTILIZATION: MetricKind.GAUGE,
    PREEMPTIONS: MetricKind.COUNTER,
}

BASE_LABELS = ("project", "workload_class")

EXPORTED_LABELS: Mapping[str, tuple[str, ...]] = {
    JOBS_FINISHED: (*BASE_LABELS, "outcome", "failure_class"),
    ATTEMPTS_FINISHED: (*BASE_LABELS, "backend", "partition_kind", "outcome", "failure_class"),
    QUEUE_WAIT: BASE_LABELS,
    LICENCE_WAIT: BASE_LABELS,
    CHECKPOINT_DURATION: BASE_LABELS,
    RUN_SECONDS: BASE_LABELS,
    GPU_UTILIZATION: BASE_LABELS,
    PREEMPTIONS: (*BASE_LABELS, "partition_kind"),
}
"""The labels each series is exported with."""

_NOT_SELECTABLE = frozenset({(ATTEMPTS_FINISHED, "partition_kind")})
"""Exported labels the SLO evaluator does not rebuild (docs/slo.md, known limits)."""

SLO_LABELS: Mapping[str, tuple[str, ...]] = {
    name: tuple(label for label in labels if (name, label) not in _NOT_SELECTABLE)
    for name, labels in EXPORTED_LABELS.items()
}
"""The labels an SLO selector may name on each series."""

OUTCOMES: frozenset[str] = frozenset(o.value for o in Outcome)
FAILURE_CLASSES: frozenset[str] = frozenset({"", *(c.value for c in FailureClass)})
"""Values of ``failure_class``: empty for success."""

LABEL_VALUES: Mapping[str, frozenset[str]] = {
    "outcome": OUTCOMES,
    "failure_class": FAILURE_CLASSES,
    "partition_kind": frozenset(PARTITION_KINDS),
}
"""Labels whose values are a closed set; a selector naming another value is a typo."""

PROMISED_BUCKETS: Mapping[str, tuple[float, ...]] = {
    QUEUE_WAIT: (60, 300, 900, 1800, 3600, 7200, 14400),
    LICENCE_WAIT: (60, 300, 900, 1800, 3600, 7200, 14400),
}
"""Bucket bounds the collector always exports; a threshold SLI must sit on one of them."""
