"""slurmrestd's data parser versions: which one to speak, and a job written for each.

slurmrestd names its API version in every path (``/slurm/v0.0.41/jobs``); a server offers
several (22.05: v0.0.36-38; 24.11: v0.0.40-42) and drops old ones as Slurm moves on, so the
transport reads the server's OpenAPI document and speaks the newest version both sides know.
Reading is tolerant of both generations (``_parse``); writing a job is not, so it is here:
v0.0.38 takes ``environment`` as a mapping and plain numbers, v0.0.40 and later a list of
``K=V`` strings, numbers as ``{set, infinite, number}``, ``tres_per_node`` for GRES,
``kill_warning_*`` for the checkpoint signal and ``required_nodes`` as a list of names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hpcbridge.backends.slurm._render import BatchJob, rest_job

SUPPORTED_VERSIONS = ("v0.0.38", "v0.0.40", "v0.0.41")
"""Oldest first. v0.0.38: Slurm 22.05-23.11 (tested on a live 22.05); v0.0.40/41: Slurm
23.11-25.05, written and read after the documented schema (golden/rest_v0.0.41/)."""


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in version.lstrip("v").split(".") if n.isdigit())


def choose_version(offered: Iterable[str]) -> str | None:
    """The newest version both the server and hpcbridge speak; None when there is none."""
    common = set(offered) & set(SUPPORTED_VERSIONS)
    return max(common, key=_key) if common else None


def new_style(version: str) -> bool:
    """v0.0.40 and later: the data_parser generation of Slurm 23.11 onwards."""
    return _key(version) >= (0, 0, 40)


def _number(value: int) -> dict[str, Any]:
    return {"set": True, "infinite": False, "number": value}


def submit_body(job: BatchJob, version: str) -> dict[str, Any]:
    """The body of ``POST /slurm/<version>/job/submit``."""
    if not new_style(version):
        return {"script": job.script, "job": rest_job(job)}
    return {"job": {**job_v41(job), "script": job.script}}


def job_v41(job: BatchJob) -> dict[str, Any]:
    """The ``job`` of a v0.0.40/v0.0.41 submission (``v0.0.41_job_desc_msg``)."""
    body: dict[str, Any] = {
        "name": job.name,
        "comment": job.comment,
        "minimum_nodes": job.nodes,
        "maximum_nodes": job.nodes,
        "tasks": job.nodes * job.tasks_per_node,
        "tasks_per_node": job.tasks_per_node,
        "cpus_per_task": job.cpus_per_task,
        "standard_output": job.stdout,
        "standard_error": job.stderr,
        "open_mode": ["APPEND"],
        "current_working_directory": job.workdir,
        "environment": [f"{name}={value}" for name, value in job.environment.items()],
        "requeue": job.requeue,
    }
    optional: dict[str, Any] = {
        "memory_per_node": _number(job.mem_mb) if job.mem_mb else None,
        "tres_per_node": f"gres/{job.gres}" if job.gres else None,
        "time_limit": _number(job.time_min) if job.time_min else None,
        "partition": job.partition,
        "constraints": job.constraint,
        "licenses": job.licences,
        "array": job.array,
        "account": job.account,
        "qos": job.qos,
        "reservation": job.reservation,
        "nice": job.nice,
        "required_nodes": [job.nodelist] if job.nodelist else None,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if job.signal:  # "B:USR1@60": to the batch shell, 60 s before the end
        target, _, rest = job.signal.rpartition(":")
        name, _, delay = rest.partition("@")
        body["kill_warning_signal"] = name
        body["kill_warning_delay"] = _number(int(delay or 60))
        if target == "B":
            body["kill_warning_flags"] = ["BATCH_JOB"]
    return body
