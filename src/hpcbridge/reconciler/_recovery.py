"""What a failure cost: work lost since the last checkpoint, and time until running again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hpcbridge.spec import JobSpec
from hpcbridge.states import AttemptState
from hpcbridge.store import Attempt, Job, Store

MANIFEST = "manifest.json"


def last_checkpoint_at(directory: Path, *, before: float) -> float | None:
    """When the newest committed checkpoint no later than ``before`` was written.

    Reads manifests only (no verification, no clean-up): this runs in the control plane,
    beside a directory that job code owns.
    """
    newest: float | None = None
    try:
        entries = list(directory.iterdir())
    except OSError:
        return None
    for entry in entries:
        if not entry.name.startswith("step-"):
            continue  # temp and trash directories are never checkpoints
        try:
            created = float(json.loads((entry / MANIFEST).read_text())["created"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if created <= before and (newest is None or created > newest):
            newest = created
    return newest


def lost_work(attempt: Attempt, spec: JobSpec, checkpoint_dir: Path | None) -> dict[str, Any]:
    """Core- and GPU-hours between the last valid checkpoint (or the start) and the failure."""
    if attempt.started_at is None or attempt.ended_at is None:
        return {}
    since = attempt.started_at
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = last_checkpoint_at(checkpoint_dir, before=attempt.ended_at)
        if checkpoint is not None and checkpoint > since:
            since = checkpoint
    lost_s = max(0.0, attempt.ended_at - since)
    resources = spec.resources
    hours = lost_s / 3600.0
    return {
        "lost_s": round(lost_s, 3),
        "lost_core_hours": round(hours * resources.nodes * resources.cpus_per_node, 6),
        "lost_gpu_hours": round(hours * resources.nodes * resources.gpus, 6),
        "last_checkpoint_at": checkpoint,
    }


def time_to_recover(store: Store, job: Job, now: float) -> dict[str, Any]:
    """Time from the last failure to running again (empty unless the job had failed)."""
    if job.failure_class is None:
        return {}
    ended = [
        a.ended_at
        for a in store.attempts(job.job_id)
        if a.state is AttemptState.FAILED and a.ended_at is not None
    ]
    if not ended:
        return {}
    return {
        "time_to_recover_s": round(now - max(ended), 3),
        "recovered_from": job.failure_class,
    }
