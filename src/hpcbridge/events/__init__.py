"""The event vocabulary, the one fold of the event log, and the metric contract.

Below ``hpcbridge.telemetry``, ``hpcbridge.slo`` and cost, above the store:

- ``EventKind`` and ``VOCABULARY``: every kind of event written to the store's log or to
  a job's status directory, who writes it, and the data it carries (``RUN_S``, ...:
  the data fields that are read);
- ``EventFold`` (fed by ``EventReader``): one reading of the log per job, from acceptance
  to the end, told to a ``FoldListener`` as it happens; ``FinishedJob`` and
  ``FinishedAttempt`` are the records it closes;
- the metric contract (``METRIC_KINDS``, ``EXPORTED_LABELS``, ``SLO_LABELS``, ...): the
  series those records are exported under, which SLOs may select from.
"""

from hpcbridge.events._fold import RELEVANT_KINDS, EventFold, EventReader, FoldListener
from hpcbridge.events._metrics import (
    ATTEMPTS_FINISHED,
    BASE_LABELS,
    CHECKPOINT_DURATION,
    EXPORTED_LABELS,
    FAILURE_CLASSES,
    GPU_UTILIZATION,
    JOBS_FINISHED,
    LABEL_VALUES,
    LICENCE_WAIT,
    METRIC_KINDS,
    OUTCOMES,
    PARTITION_KINDS,
    PREEMPTIONS,
    PROMISED_BUCKETS,
    QUEUE_WAIT,
    REGULAR,
    RUN_SECONDS,
    SLO_LABELS,
    SPOT,
    MetricKind,
    Outcome,
)
from hpcbridge.events._records import FinishedAttempt, FinishedJob, JobLabels
from hpcbridge.events._vocabulary import (
    ATTEMPT_END_KINDS,
    BACKEND,
    BYTES,
    COST,
    DURATION_S,
    FAILURE_CLASS,
    INGESTED_KINDS,
    JOB_SIDE_KINDS,
    LOST_CORE_HOURS,
    PARTITION_KIND,
    RTT_S_P50,
    RUN_S,
    TIME_TO_RECOVER_S,
    UTILIZATION,
    VOCABULARY,
    EventKind,
    KindInfo,
)

__all__ = [
    "ATTEMPTS_FINISHED",
    "ATTEMPT_END_KINDS",
    "BACKEND",
    "BASE_LABELS",
    "BYTES",
    "CHECKPOINT_DURATION",
    "COST",
    "DURATION_S",
    "EXPORTED_LABELS",
    "FAILURE_CLASS",
    "FAILURE_CLASSES",
    "GPU_UTILIZATION",
    "INGESTED_KINDS",
    "JOBS_FINISHED",
    "JOB_SIDE_KINDS",
    "LABEL_VALUES",
    "LICENCE_WAIT",
    "LOST_CORE_HOURS",
    "METRIC_KINDS",
    "OUTCOMES",
    "PARTITION_KIND",
    "PARTITION_KINDS",
    "PREEMPTIONS",
    "PROMISED_BUCKETS",
    "QUEUE_WAIT",
    "REGULAR",
    "RELEVANT_KINDS",
    "RTT_S_P50",
    "RUN_S",
    "RUN_SECONDS",
    "SLO_LABELS",
    "SPOT",
    "TIME_TO_RECOVER_S",
    "UTILIZATION",
    "VOCABULARY",
    "EventFold",
    "EventKind",
    "EventReader",
    "FinishedAttempt",
    "FinishedJob",
    "FoldListener",
    "JobLabels",
    "KindInfo",
    "MetricKind",
    "Outcome",
]
