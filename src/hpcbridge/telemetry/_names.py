"""Metric names, labels and bucket bounds exported by hpcbridge, as plain data.

The eight series SLOs are written against, their labels and the bucket bounds promised to
SLO thresholds come from the metric contract in ``hpcbridge.events``, which the SLO module
reads too. Labels are bounded: project, workload class, outcome, failure class, backend,
partition kind, state, node. Never a job id or a user name.
"""

from __future__ import annotations

from collections.abc import Mapping

from hpcbridge.events import (
    ATTEMPTS_FINISHED,
    BASE_LABELS,
    CHECKPOINT_DURATION,
    EXPORTED_LABELS,
    GPU_UTILIZATION,
    JOBS_FINISHED,
    LICENCE_WAIT,
    PARTITION_KINDS,
    PREEMPTIONS,
    PROMISED_BUCKETS,
    QUEUE_WAIT,
    RUN_SECONDS,
    Outcome,
)
from hpcbridge.states import FailureClass, JobState

__all__ = [
    "ACTIVE_STATES",
    "ATTEMPTS_FINISHED",
    "BACKEND_NODES",
    "BACKEND_POLL_DURATION",
    "BACKEND_POLL_ERRORS",
    "BACKEND_UP",
    "BASE_LABELS",
    "CHECKPOINT_DURATION",
    "CHECKSUM_CHECKS",
    "CHECKSUM_MISMATCHES",
    "COST",
    "CYCLES",
    "CYCLE_DURATION",
    "CYCLE_ERRORS",
    "EVENTS_PROCESSED",
    "FABRIC_LATENCY",
    "FAILED_CLASSES",
    "FOLDED_HISTOGRAMS",
    "GPU_UTILIZATION",
    "HELP",
    "HISTOGRAM_BUCKETS",
    "JOBS",
    "JOBS_FINISHED",
    "LABELS",
    "LAST_CYCLE",
    "LICENCE_WAIT",
    "LOST_CORE_SECONDS",
    "MAKESPAN",
    "NODE_RUNNING_ATTEMPTS",
    "OPERATION_CHECKPOINT_WRITE",
    "OUTCOME_CANCELLED",
    "OUTCOME_CLASSES",
    "OUTCOME_FAILED",
    "OUTCOME_SUCCEEDED",
    "PARTITION_KINDS",
    "PREEMPTIONS",
    "QUEUE_WAIT",
    "RUN_SECONDS",
    "STAGE_DIRECTIONS",
    "STAGING_BYTES",
    "STAGING_DURATION",
    "STAGING_TRANSFER_SECONDS",
    "STORAGE_THROUGHPUT",
    "TIME_TO_RECOVER",
    "TRANSITIONS",
    "exported_series",
    "histogram_series",
]

# -- more from the store (the SLO contract's eight are imported above) ----------------------
FABRIC_LATENCY = "hpcbridge_fabric_latency_seconds"
STORAGE_THROUGHPUT = "hpcbridge_storage_throughput_bytes_per_second"
MAKESPAN = "hpcbridge_job_makespan_seconds"
TIME_TO_RECOVER = "hpcbridge_time_to_recover_seconds"
LOST_CORE_SECONDS = "hpcbridge_lost_core_seconds_total"
COST = "hpcbridge_cost_total"
JOBS = "hpcbridge_jobs"
TRANSITIONS = "hpcbridge_job_transitions_total"
NODE_RUNNING_ATTEMPTS = "hpcbridge_node_running_attempts"
EVENTS_PROCESSED = "hpcbridge_telemetry_events_processed_total"
STAGING_BYTES = "hpcbridge_staging_bytes_total"
STAGING_TRANSFER_SECONDS = "hpcbridge_staging_transfer_seconds_total"
STAGING_DURATION = "hpcbridge_staging_duration_seconds"
CHECKSUM_MISMATCHES = "hpcbridge_checksum_mismatches_total"

# -- reported by the reconciler (ReconcilerStats) -------------------------------------------
BACKEND_UP = "hpcbridge_backend_up"
BACKEND_POLL_DURATION = "hpcbridge_backend_poll_duration_seconds"
BACKEND_POLL_ERRORS = "hpcbridge_backend_poll_errors_total"
BACKEND_NODES = "hpcbridge_backend_nodes"
CYCLES = "hpcbridge_reconciler_cycles_total"
CYCLE_DURATION = "hpcbridge_reconciler_cycle_duration_seconds"
CYCLE_ERRORS = "hpcbridge_reconciler_errors_total"
LAST_CYCLE = "hpcbridge_reconciler_last_cycle_timestamp_seconds"

LABELS: Mapping[str, tuple[str, ...]] = {
    JOBS_FINISHED: EXPORTED_LABELS[JOBS_FINISHED],
    ATTEMPTS_FINISHED: EXPORTED_LABELS[ATTEMPTS_FINISHED],
    QUEUE_WAIT: EXPORTED_LABELS[QUEUE_WAIT],
    LICENCE_WAIT: EXPORTED_LABELS[LICENCE_WAIT],
    CHECKPOINT_DURATION: EXPORTED_LABELS[CHECKPOINT_DURATION],
    FABRIC_LATENCY: BASE_LABELS,
    STORAGE_THROUGHPUT: (*BASE_LABELS, "operation"),
    RUN_SECONDS: EXPORTED_LABELS[RUN_SECONDS],
    GPU_UTILIZATION: EXPORTED_LABELS[GPU_UTILIZATION],
    PREEMPTIONS: EXPORTED_LABELS[PREEMPTIONS],
    MAKESPAN: (*BASE_LABELS, "outcome"),
    TIME_TO_RECOVER: (*BASE_LABELS, "failure_class"),
    LOST_CORE_SECONDS: (*BASE_LABELS, "failure_class"),
    COST: (*BASE_LABELS, "outcome"),
    JOBS: (*BASE_LABELS, "state"),
    TRANSITIONS: ("from_state", "to_state"),
    NODE_RUNNING_ATTEMPTS: ("backend", "node"),
    EVENTS_PROCESSED: (),
    STAGING_BYTES: (*BASE_LABELS, "direction", "endpoint"),
    STAGING_TRANSFER_SECONDS: (*BASE_LABELS, "direction", "endpoint"),
    STAGING_DURATION: (*BASE_LABELS, "direction"),
    CHECKSUM_MISMATCHES: (*BASE_LABELS, "check"),
    BACKEND_UP: ("backend",),
    BACKEND_POLL_DURATION: ("backend",),
    BACKEND_POLL_ERRORS: ("backend",),
    BACKEND_NODES: ("backend", "state"),
    CYCLES: (),
    CYCLE_DURATION: (),
    CYCLE_ERRORS: (),
    LAST_CYCLE: (),
}

HELP: Mapping[str, str] = {
    JOBS_FINISHED: "Logical jobs (and array tasks) that reached a terminal state.",
    ATTEMPTS_FINISHED: "Scheduler submissions (attempts) that ended; retries count each time.",
    QUEUE_WAIT: "Seconds from acceptance to the first start of a job.",
    LICENCE_WAIT: (
        "Seconds a job waited in held for licences of a managed pool, observed when the wait "
        "ends (released to the queue, or failed as licence_unavailable) (F4)."
    ),
    CHECKPOINT_DURATION: "Seconds one checkpoint save took, as reported by the checkpoint SDK.",
    FABRIC_LATENCY: (
        "Median TCP round trip between a multi-node job's first two nodes, probed at its "
        "start (M7)."
    ),
    STORAGE_THROUGHPUT: (
        "Bytes per second of one storage operation of a job (M8): operation=checkpoint_write "
        "for each checkpoint save (bytes written over the save's duration), stage_in and "
        "stage_out for each data stage that copied bytes (bytes copied over its duration)."
    ),
    RUN_SECONDS: "Wall-clock seconds attempts ran, counted when each attempt ends.",
    GPU_UTILIZATION: "Mean GPU utilisation (0..1) of running GPU jobs; absent when none runs.",
    PREEMPTIONS: "Attempts ended by preemption.",
    MAKESPAN: "Seconds from acceptance to the terminal state of a job (time to result).",
    TIME_TO_RECOVER: "Seconds from a failed attempt to the next attempt of the job running.",
    LOST_CORE_SECONDS: (
        "Core-seconds of attempts that did not succeed (an upper bound: progress kept in "
        "checkpoints is not subtracted). Divide by 3600 for core-hours."
    ),
    COST: (
        "What attempts cost under the rate card in force when each started (the card's "
        "currency), counted when each ends; outcome other than succeeded is waste. Cost per "
        "result: divide by the succeeded jobs of hpcbridge_jobs_finished_total."
    ),
    JOBS: "Jobs in each non-terminal state now (array parents excluded).",
    TRANSITIONS: "Job state transitions written to the store.",
    NODE_RUNNING_ATTEMPTS: "Running attempts per node now.",
    EVENTS_PROCESSED: "Store events the telemetry collector has folded into its counters.",
    STAGING_BYTES: (
        "Bytes data stages copied per storage endpoint (file, s3://bucket, https://host); "
        "inputs reused from the cache copy none."
    ),
    STAGING_TRANSFER_SECONDS: (
        "Seconds spent copying per storage endpoint (parallel copies add up); "
        "rate(bytes) / rate(seconds) is an endpoint's per-stream throughput."
    ),
    STAGING_DURATION: "Seconds one data stage of a job took, copies and verification included.",
    CHECKSUM_MISMATCHES: (
        "Jobs failed on a checksum mismatch: check=stage_in or stage_out while staging, "
        "check=node when the job wrapper found an input changed after staging (F7)."
    ),
    BACKEND_UP: "1 when the backend's latest poll succeeded, 0 when it failed.",
    BACKEND_POLL_DURATION: "Seconds one batched poll of a backend took.",
    BACKEND_POLL_ERRORS: "Polls of a backend that failed.",
    BACKEND_NODES: "Nodes of a backend by state (idle, allocated, drained, down...).",
    CYCLES: "Reconciler cycles run by this process.",
    CYCLE_DURATION: "Seconds one reconciler cycle took.",
    CYCLE_ERRORS: "Per-job errors reported by reconciler cycles.",
    LAST_CYCLE: "Unix time at which the latest reconciler cycle ended.",
}

HISTOGRAM_BUCKETS: Mapping[str, tuple[float, ...]] = {
    QUEUE_WAIT: (1, 10, *PROMISED_BUCKETS[QUEUE_WAIT], 43200, 86400),
    LICENCE_WAIT: (1, 10, *PROMISED_BUCKETS[LICENCE_WAIT], 43200, 86400),
    CHECKPOINT_DURATION: (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
    FABRIC_LATENCY: (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.05),
    STORAGE_THROUGHPUT: (1e6, 1e7, 5e7, 1e8, 2.5e8, 5e8, 1e9, 2.5e9, 5e9, 1e10, 2.5e10),
    STAGING_DURATION: (0.1, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400),
    MAKESPAN: (10, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800),
    TIME_TO_RECOVER: (1, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 86400),
    BACKEND_POLL_DURATION: (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    CYCLE_DURATION: (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
}

FOLDED_HISTOGRAMS = (
    QUEUE_WAIT,
    LICENCE_WAIT,
    CHECKPOINT_DURATION,
    MAKESPAN,
    TIME_TO_RECOVER,
    FABRIC_LATENCY,
    STORAGE_THROUGHPUT,
    STAGING_DURATION,
)
"""Histograms folded from the event log (the reconciler's own are in ``ReconcilerStats``)."""

OUTCOME_SUCCEEDED, OUTCOME_FAILED, OUTCOME_CANCELLED = (o.value for o in Outcome)
OPERATION_CHECKPOINT_WRITE = "checkpoint_write"
STAGE_DIRECTIONS: tuple[str, ...] = ("stage_in", "stage_out")
"""Values of ``direction`` (and of ``operation`` for stages)."""
CHECKSUM_CHECKS: tuple[str, ...] = (*STAGE_DIRECTIONS, "node")
"""Values of ``check`` on the checksum mismatch counter."""

FAILED_CLASSES: tuple[str, ...] = tuple(
    c.value for c in FailureClass if c is not FailureClass.CANCELLED
)
"""Failure classes pre-initialised at 0 for failed jobs and attempts, so that ``rate()``
sees the first failure of each class."""

OUTCOME_CLASSES: tuple[tuple[str, str], ...] = (
    (OUTCOME_SUCCEEDED, ""),
    *((OUTCOME_FAILED, c) for c in FAILED_CLASSES),
    (OUTCOME_CANCELLED, FailureClass.CANCELLED.value),
)
"""Every (outcome, failure_class) pair a finished job or attempt is exported under."""

ACTIVE_STATES: tuple[str, ...] = tuple(s.value for s in JobState if not s.terminal)


def histogram_series(name: str) -> tuple[str, str, str]:
    return f"{name}_bucket", f"{name}_sum", f"{name}_count"


def exported_series() -> frozenset[str]:
    """Every sample name the collector can export (histograms as _bucket/_sum/_count)."""
    names: set[str] = set()
    for name in LABELS:
        if name in HISTOGRAM_BUCKETS:
            names.update(histogram_series(name))
        else:
            names.add(name)
    return frozenset(names)
