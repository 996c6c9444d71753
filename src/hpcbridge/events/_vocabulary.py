"""Every kind of event hpcbridge writes, who writes it and the data it carries.

Two logs share these names. The store's append-only event log (``Event.kind``) is
written by the store (acceptance, transitions), the client (cancel requests) and the
reconciler (attempts, kill orders, node fencing). The job side appends JSON lines to its
status directory (``events.jsonl``, the name under ``"type"``), because compute nodes may
not reach the control plane; the reconciler copies some of them into the store when the
attempt ends (``INGESTED_KINDS``).

Producers that run inside the job (the checkpoint SDK, the GPU sampler, the fabric probe)
import nothing from the rest of hpcbridge, and the store sits below this package, so they
spell the same strings; ``tests/telemetry/test_events_vocabulary.py`` holds every producer
to this table and every kind in it to a producer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class EventKind(StrEnum):
    # The store, with each write.
    ACCEPTED = "accepted"
    TRANSITION = "transition"
    # The client.
    CANCEL_REQUESTED = "cancel_requested"
    BUDGET_WARNING = "budget_warning"
    BURST_DECIDED = "burst_decided"
    # The reconciler: ``attempt_<AttemptState>`` whenever an attempt changes state.
    ATTEMPT_SUBMITTED = "attempt_submitted"
    PLACED = "placed"
    ATTEMPT_RUNNING = "attempt_running"
    ATTEMPT_SUCCEEDED = "attempt_succeeded"
    ATTEMPT_FAILED = "attempt_failed"
    KILL = "kill"
    NODE_DRAINED = "node_drained"
    NODE_QUARANTINE_REFUSED = "node_quarantine_refused"
    # The job side (status directory).
    CHECKPOINT_SAVED = "checkpoint_saved"
    CHECKPOINT_SAVE_FAILED = "checkpoint_save_failed"
    CHECKPOINT_PRUNED = "checkpoint_pruned"
    CHECKPOINT_RESTORED = "checkpoint_restored"
    CHECKPOINT_SKIPPED_CORRUPT = "checkpoint_skipped_corrupt"
    CHECKPOINT_UNVERIFIED = "checkpoint_unverified"
    REQUEUE_REQUESTED = "requeue_requested"
    FABRIC_LATENCY = "fabric_latency"
    GPU_SAMPLE = "gpu_sample"


# -- data fields read by the fold and the collector -------------------------------------
FAILURE_CLASS: Final = "failure_class"
"""A ``FailureClass`` value: on ``attempt_failed``, ``kill`` and transitions that set one."""
BACKEND: Final = "backend"
PARTITION_KIND: Final = "partition_kind"
"""``spot`` or ``regular`` (Slurm attempts in a cluster's ``spot_partitions`` are spot)."""
RUN_S: Final = "run_s"
LOST_CORE_HOURS: Final = "lost_core_hours"
"""The reconciler's estimate of the work lost since the last valid checkpoint."""
TIME_TO_RECOVER_S: Final = "time_to_recover_s"
DURATION_S: Final = "duration_s"
BYTES: Final = "bytes"
RTT_S_P50: Final = "rtt_s_p50"
UTILIZATION: Final = "utilization"
LICENCES: Final = "licences"
"""Per managed pool, the licences asked for and free: on transitions into and out of held."""
BYTES_COPIED: Final = "bytes_copied"
"""Bytes a data stage copied (inputs already in the cache or kept from before copy none)."""
ENDPOINTS: Final = "endpoints"
"""Per storage endpoint of a data stage, ``{"bytes": copied, "seconds": spent copying}``:
on transitions out of staging_in and staging_out."""
COST: Final = "cost"
"""What the attempt cost under its rate card (in the card's currency); absent: no card."""


@dataclass(frozen=True, slots=True)
class KindInfo:
    """Who writes one kind of event, what ``data`` it carries, and whether it is stored."""

    producer: str
    fields: tuple[str, ...]
    stored: bool = True
    """Reaches the store's event log (job-side kinds: copied when the attempt ends)."""


_ATTEMPT_SUMMARY = (
    "native_id",
    BACKEND,
    "nodes",
    "exit_code",
    FAILURE_CLASS,
    RUN_S,
    PARTITION_KIND,
    LOST_CORE_HOURS,
    "lost_gpu_hours",
    "max_rss_mb",
    COST,
)
_SDK = "checkpoint SDK (hpcbridge.checkpoint)"

VOCABULARY: Mapping[EventKind, KindInfo] = {
    EventKind.ACCEPTED: KindInfo("store", ()),
    EventKind.TRANSITION: KindInfo(
        "store",
        (
            FAILURE_CLASS,
            TIME_TO_RECOVER_S,
            "recovered_from",
            LICENCES,
            DURATION_S,
            BYTES_COPIED,
            ENDPOINTS,
        ),
    ),
    EventKind.CANCEL_REQUESTED: KindInfo("client", ()),
    EventKind.BUDGET_WARNING: KindInfo("client (a budget past its soft limit at submission)", ()),
    EventKind.BURST_DECIDED: KindInfo(
        "client (the burst policy's choice for a burst-eligible job at submission)",
        (
            "burst",
            "partition",
            "onprem_wait_s",
            "burst_wait_s",
            "wait_saved_s",
            "onprem_cost",
            "burst_cost",
            "egress_gb",
            "egress_cost",
            "currency",
            "queue_depth",
        ),
    ),
    EventKind.ATTEMPT_SUBMITTED: KindInfo("reconciler", ("native_id", BACKEND, "requeued")),
    EventKind.PLACED: KindInfo(
        "reconciler (a Slurm attempt pinned to the node whose cache holds its inputs)",
        ("node", "inputs_held", "inputs_total", "bytes_held", "bytes_total"),
    ),
    EventKind.ATTEMPT_RUNNING: KindInfo("reconciler", _ATTEMPT_SUMMARY),
    EventKind.ATTEMPT_SUCCEEDED: KindInfo("reconciler", _ATTEMPT_SUMMARY),
    EventKind.ATTEMPT_FAILED: KindInfo("reconciler", _ATTEMPT_SUMMARY),
    EventKind.KILL: KindInfo("reconciler", (FAILURE_CLASS,)),
    EventKind.NODE_DRAINED: KindInfo("reconciler (node quarantine)", ("node",)),
    EventKind.NODE_QUARANTINE_REFUSED: KindInfo("reconciler (node quarantine)", ("node",)),
    EventKind.CHECKPOINT_SAVED: KindInfo(_SDK, ("step", DURATION_S, BYTES, "files", "path")),
    EventKind.CHECKPOINT_SAVE_FAILED: KindInfo(_SDK, ("step", "reason")),
    EventKind.CHECKPOINT_PRUNED: KindInfo(_SDK, ("step", "path"), stored=False),
    EventKind.CHECKPOINT_RESTORED: KindInfo(
        _SDK, ("step", "path", BYTES, "verify", DURATION_S, "skipped"), stored=False
    ),
    EventKind.CHECKPOINT_SKIPPED_CORRUPT: KindInfo(_SDK, ("step", "path", "reason"), stored=False),
    EventKind.CHECKPOINT_UNVERIFIED: KindInfo(_SDK, ("step", "path", "reason"), stored=False),
    EventKind.REQUEUE_REQUESTED: KindInfo(_SDK, ("exit_code", "signal", "step")),
    EventKind.FABRIC_LATENCY: KindInfo(
        "fabric probe (hpcbridge.backends.slurm.fabric_probe)",
        (RTT_S_P50, "rtt_s_p99", "samples", "nodes"),
    ),
    EventKind.GPU_SAMPLE: KindInfo(
        "GPU sampler (hpcbridge.backends.gpu_sampler)", (UTILIZATION,), stored=False
    ),
}

JOB_SIDE_KINDS: frozenset[EventKind] = frozenset(
    {
        EventKind.CHECKPOINT_SAVED,
        EventKind.CHECKPOINT_SAVE_FAILED,
        EventKind.CHECKPOINT_PRUNED,
        EventKind.CHECKPOINT_RESTORED,
        EventKind.CHECKPOINT_SKIPPED_CORRUPT,
        EventKind.CHECKPOINT_UNVERIFIED,
        EventKind.REQUEUE_REQUESTED,
        EventKind.FABRIC_LATENCY,
        EventKind.GPU_SAMPLE,
    }
)
"""Kinds the job writes into its status directory's ``events.jsonl``."""

INGESTED_KINDS: frozenset[EventKind] = frozenset(
    kind for kind in JOB_SIDE_KINDS if VOCABULARY[kind].stored
)
"""Job-side kinds the reconciler copies into the store when an attempt ends."""

ATTEMPT_END_KINDS: frozenset[EventKind] = frozenset(
    {EventKind.ATTEMPT_SUCCEEDED, EventKind.ATTEMPT_FAILED}
)
