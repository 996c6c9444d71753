"""The HPCBRIDGE_* environment every attempt receives (read by the checkpoint SDK)."""

from __future__ import annotations

import sys
from pathlib import Path

from hpcbridge.spec import JobSpec
from hpcbridge.staging import INPUTS, manifest_dir
from hpcbridge.store import Job


def data_dir(checkpoints: Path, job_id: str) -> Path:
    """A job's data directory (staged inputs and outputs), beside the checkpoints: on the
    storage the cluster shares with this host."""
    return checkpoints.parent / "data" / job_id


def attempt_environment(job: Job, spec: JobSpec, attempt: int, checkpoints: Path) -> dict[str, str]:
    env = {
        "HPCBRIDGE_JOB_ID": job.job_id,
        "HPCBRIDGE_ATTEMPT": str(attempt),
        "HPCBRIDGE_PROJECT": job.project,
    }
    if spec.submit_dir is not None:
        env["HPCBRIDGE_SUBMIT_DIR"] = spec.submit_dir
    if job.task_index is not None:
        env["HPCBRIDGE_ARRAY_INDEX"] = str(job.task_index)
    for name, value in job.task_params.items():
        env[f"HPCBRIDGE_PARAM_{name.upper()}"] = value
    if spec.stage_in or spec.stage_out:
        where = data_dir(checkpoints, job.job_id)
        env["HPCBRIDGE_DATA_DIR"] = str(where)
        if spec.stage_in:
            env["HPCBRIDGE_INPUT_MANIFEST"] = str(manifest_dir(where) / INPUTS)
            env["HPCBRIDGE_PYTHON"] = sys.executable  # runs the check on the node
    if spec.container is not None:
        env["HPCBRIDGE_PYTHON"] = sys.executable  # runs the container's launcher on the node
    policy = spec.checkpoint
    if policy is not None:
        env["HPCBRIDGE_CHECKPOINT_DIR"] = policy.dir or str(checkpoints / job.job_id)
        env["HPCBRIDGE_CHECKPOINT_KEEP"] = str(policy.keep)
        env["HPCBRIDGE_CHECKPOINT_INTERVAL_S"] = (
            "auto" if policy.interval == "auto" else f"{policy.interval:g}"
        )
        env["HPCBRIDGE_CHECKPOINT_SIGNAL"] = policy.signal
    return env
