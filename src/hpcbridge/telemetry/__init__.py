"""Telemetry: Prometheus metrics computed from the store, reconciler stats, log context,
OpenTelemetry traces (off by default).

Metrics are read-only views of the store, folded from its append-only events; labels are
bounded (never a job id or a user). Grafana dashboards are built by
``hpcbridge.telemetry.dashboards`` (imported on demand). See docs/observability.md.
"""

from hpcbridge.telemetry._alert_rules import data_integrity_rules
from hpcbridge.telemetry._collector import StoreCollector
from hpcbridge.telemetry._context import LOG_CONTEXT_KEYS, job_log_context
from hpcbridge.telemetry._names import (
    HISTOGRAM_BUCKETS,
    LABELS,
    OUTCOME_CLASSES,
    exported_series,
)
from hpcbridge.telemetry._stats import ReconcilerStats
from hpcbridge.telemetry._status import (
    StatusEvent,
    ingestable_events,
    latest_gpu_utilization,
    read_status_events,
)
from hpcbridge.telemetry._textfile import MetricsExport
from hpcbridge.telemetry._tracing import (
    annotate,
    annotate_current,
    configure_tracing,
    shutdown_tracing,
    span,
    tracing_enabled,
    tracing_wanted,
)

__all__ = [
    "HISTOGRAM_BUCKETS",
    "LABELS",
    "LOG_CONTEXT_KEYS",
    "OUTCOME_CLASSES",
    "MetricsExport",
    "ReconcilerStats",
    "StatusEvent",
    "StoreCollector",
    "annotate",
    "annotate_current",
    "configure_tracing",
    "data_integrity_rules",
    "exported_series",
    "ingestable_events",
    "job_log_context",
    "latest_gpu_utilization",
    "read_status_events",
    "shutdown_tracing",
    "span",
    "tracing_enabled",
    "tracing_wanted",
]
