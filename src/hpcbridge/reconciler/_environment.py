"""The HPCBRIDGE_* environment every attempt receives (read by the checkpoint SDK)."""

from __future__ import annotations

from pathlib import Path

from hpcbridge.spec import JobSpec
from hpcbridge.store import Job


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
    policy = spec.checkpoint
    if policy is not None:
        env["HPCBRIDGE_CHECKPOINT_DIR"] = policy.dir or str(checkpoints / job.job_id)
        env["HPCBRIDGE_CHECKPOINT_KEEP"] = str(policy.keep)
        env["HPCBRIDGE_CHECKPOINT_INTERVAL_S"] = (
            "auto" if policy.interval == "auto" else f"{policy.interval:g}"
        )
        env["HPCBRIDGE_CHECKPOINT_SIGNAL"] = policy.signal
    return env
