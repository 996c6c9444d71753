"""From Slurm's records of one attempt to an Observation: a pure function of its inputs.

Rules that matter (the golden README shows why):

* absent from squeue *and* sacct -> UNKNOWN (the reconciler calls it lost after a grace
  period), never "completed";
* finished in squeue but not yet in sacct -> still RUNNING/PENDING for up to
  ``accounting_wait_s`` when sacct decides the class (memory use of a killed job, who
  cancelled it), and up to ``usage_wait_s`` otherwise (complete usage for cost);
* FAILED with signal 9 and MaxRSS above the memory per node -> oom (OverMemoryKill without
  cgroups); any other signal on the batch script -> lost (our wrapper never dies of one);
* an attempt hpcbridge killed reports the class it was killed for;
* PENDING again after running (restarts > 0) -> PENDING "requeued ...".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hpcbridge.backends._protocol import Observation, Phase
from hpcbridge.backends.slurm._parse import TERMINAL_STATES
from hpcbridge.backends.slurm._records import JobRecord
from hpcbridge.backends.slurm._tables import (
    LIMIT_PREFIXES,
    PENDING_REASONS,
    REQUEUED_REASON,
    SIGNAL_NAMES,
    STATE_PHASE,
    TERMINAL_FAILURE,
)
from hpcbridge.states import FailureClass

KILL_REASONS: Mapping[FailureClass, str] = {
    FailureClass.TIMEOUT: "hpcbridge stopped the job: it ran past its walltime",
    FailureClass.OOM: "hpcbridge stopped the job: it used more memory than it asked for",
    FailureClass.CANCELLED: "cancelled",
}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def licences_phrase(licences: Mapping[str, int]) -> str:
    """``{'fluent': 3}`` -> ``3 licences of fluent``."""
    if not licences:
        return "licences"
    return " and ".join(
        f"{count} licence{'s' if count != 1 else ''} of {name}"
        for name, count in sorted(licences.items())
    )


def reason_sentence(record: JobRecord) -> str:
    """Slurm's pending reason of ``record`` as a sentence a user understands."""
    context = _Blank(
        licences=licences_phrase(record.licences),
        partition=record.partition or "?",
        job_id=record.key,
        reason=record.reason,
    )
    template = PENDING_REASONS.get(record.reason)
    if template is None:
        template = next(
            (text for prefix, text in LIMIT_PREFIXES.items() if record.reason.startswith(prefix)),
            "waiting; Slurm says {reason}",
        )
    return template.format_map(context)


def pending_sentence(record: JobRecord) -> str:
    waiting = reason_sentence(record)
    if record.restarts > 0 or record.state in ("REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"):
        return REQUEUED_REASON.format(restarts=max(record.restarts, 1), waiting=waiting)
    if record.state == "CONFIGURING":
        return "its nodes are starting up"
    return waiting


def signal_name(signal: int) -> str:
    name = SIGNAL_NAMES.get(signal)
    return f"{signal} ({name})" if name else str(signal)


def accounting_details(record: JobRecord, cluster: str) -> dict[str, Any]:
    """What hpcbridge keeps of an attempt for SLIs and cost (Observation.details['slurm'])."""
    tres = dict(record.alloc_tres)
    slurm: dict[str, Any] = {
        "cluster": cluster,
        "job_id": record.key,
        "state": record.state,
        "partition": record.partition or None,
        "nodes": list(record.nodes),
        "submitted_at": record.submitted_at,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "elapsed_s": record.elapsed_s,
        "alloc_tres": tres,
        "cpus": _count(tres.get("cpu")),
        "mem_mb": record.mem_per_node_mb,
        "gpus": _count(tres.get("gres/gpu")),
        "licences": dict(record.licences),
        "exit_code": record.exit_code,
        "signal": record.signal,
        "max_rss_mb": None if record.max_rss_mb is None else round(record.max_rss_mb, 1),
        "restarts": record.restarts,
    }
    if record.cancelled_by:
        slurm["cancelled_by"] = record.cancelled_by
    return {"slurm": {key: value for key, value in slurm.items() if value not in (None, {}, [])}}


def _count(text: str | None) -> int | None:
    try:
        return int(float(text)) if text else None
    except ValueError:
        return None


def merge(queue: JobRecord, accounting: JobRecord) -> JobRecord:
    """squeue's verdict (its raw exit status is exact) with sacct's usage and allocation."""
    return replace(
        queue,
        max_rss_mb=accounting.max_rss_mb,
        alloc_tres=accounting.alloc_tres or queue.alloc_tres,
        mem_per_node_mb=accounting.mem_per_node_mb or queue.mem_per_node_mb,
        cancelled_by=accounting.cancelled_by,
        batch_state=accounting.batch_state,
        elapsed_s=accounting.elapsed_s if accounting.elapsed_s is not None else queue.elapsed_s,
        licences=accounting.licences or queue.licences,
        started_at=queue.started_at or accounting.started_at,
        ended_at=queue.ended_at or accounting.ended_at,
    )


def observe(
    native_id: str,
    queue: JobRecord | None,
    accounting: JobRecord | None,
    *,
    cluster: str,
    kill: FailureClass | None,
    now: float,
    accounting_wait_s: float,
    usage_wait_s: float = 0.0,
    oom_in_stderr: bool = False,
) -> Observation:
    """The Observation of one attempt from its squeue and sacct records (either may be None)."""
    if queue is None and accounting is None:
        return Observation(
            phase=Phase.UNKNOWN,
            reason=f"Slurm knows no job {native_id} on cluster {cluster}: "
            "neither squeue nor sacct lists it",
        )
    if queue is None:
        assert accounting is not None
        if accounting.state not in TERMINAL_STATES:
            return Observation(
                phase=Phase.UNKNOWN,
                reason=f"sacct says job {native_id} is {accounting.state} but slurmctld "
                "does not know it",
            )
        return _observe_record(accounting, cluster, kill, oom_in_stderr)
    if queue.state not in TERMINAL_STATES or (queue.state == "PREEMPTED" and queue.requeue):
        return _observe_record(queue, cluster, kill, oom_in_stderr)
    if accounting is None or accounting.state not in TERMINAL_STATES:
        waited = now - queue.ended_at if queue.ended_at else 0.0
        decisive = (queue.state == "FAILED" and queue.signal is not None) or (
            queue.state == "CANCELLED" and kill is None
        )
        if waited < (accounting_wait_s if decisive else usage_wait_s):
            return Observation(
                phase=Phase.RUNNING if queue.started_at else Phase.PENDING,
                reason=f"finished ({queue.state}); waiting for Slurm's accounting record",
                nodes=queue.nodes,
                started_at=queue.started_at,
            )
        return _observe_record(queue, cluster, kill, oom_in_stderr)
    return _observe_record(merge(queue, accounting), cluster, kill, oom_in_stderr)


def _observe_record(
    record: JobRecord, cluster: str, kill: FailureClass | None, oom_in_stderr: bool
) -> Observation:
    phase = STATE_PHASE.get(record.state)
    details = accounting_details(record, cluster)
    if phase is None:
        return Observation(
            phase=Phase.UNKNOWN,
            reason=f"Slurm reports state {record.state or '(none)'} for job {record.key}, "
            "which hpcbridge does not know",
            details=details,
        )
    if record.state == "PREEMPTED" and record.source == "queue" and record.requeue:
        return Observation(
            phase=Phase.PENDING,
            reason="preempted; Slurm is requeueing it",
            failure_class=FailureClass.PREEMPTED,
            ended_at=record.ended_at,
            details=details,
        )
    if phase is Phase.PENDING:
        return Observation(phase=phase, reason=pending_sentence(record), details=details)
    if phase is Phase.RUNNING:
        running_reason = {
            "SUSPENDED": "suspended by Slurm",
            "STOPPED": "stopped by Slurm",
            "COMPLETING": "finishing",
        }.get(record.state)
        return Observation(
            phase=phase,
            reason=running_reason,
            nodes=record.nodes,
            started_at=record.started_at,
            details=details,
        )
    failure, reason, exit_code, signal = _verdict(record, kill, oom_in_stderr)
    return Observation(
        phase=Phase.SUCCEEDED if failure is None else Phase.FAILED,
        failure_class=failure,
        reason=reason,
        exit_code=exit_code,
        signal=signal,
        nodes=record.nodes,
        # Slurm gives a job cancelled while pending a start time equal to its end, but no
        # node: only a job that was given nodes ever started.
        started_at=record.started_at if record.nodes else None,
        ended_at=record.ended_at,
        rss_mb=record.max_rss_mb,
        details=details,
    )


LAUNCH_FAILURES = frozenset({"JobLaunchFailure", "launch_failed_requeued_held"})
"""Reasons of a FAILED job whose program never started: the node's fault, not the job's."""


def _verdict(
    record: JobRecord, kill: FailureClass | None, oom_in_stderr: bool
) -> tuple[FailureClass | None, str | None, int | None, int | None]:
    """(failure class, reason, exit code, signal) of a finished record."""
    exit_code, signal = record.exit_code, record.signal
    if record.state == "COMPLETED":
        return None, None, 0 if exit_code is None else exit_code, None
    if kill is not None:
        return (
            kill,
            KILL_REASONS.get(kill, f"hpcbridge stopped the job ({kill.value})"),
            (exit_code),
            signal,
        )
    fixed = TERMINAL_FAILURE.get(record.state)
    if fixed is not None:
        return fixed[0], fixed[1], exit_code, signal
    if record.state == "CANCELLED":
        who = f" by {record.cancelled_by}" if record.cancelled_by else ""
        return FailureClass.CANCELLED, f"cancelled outside hpcbridge{who}", exit_code, signal
    # FAILED
    if signal is not None:
        rss, mem = record.max_rss_mb, record.mem_per_node_mb
        if signal == 9 and ((rss is not None and mem and rss > mem) or oom_in_stderr):
            used = f"{rss:.0f} MB" if rss is not None else "more memory"
            limit = f"the {mem:.0f} MB per node" if mem else "what"
            return (
                FailureClass.OOM,
                f"the job used {used}, more than {limit} it asked for; Slurm killed it",
                None,
                signal,
            )
        return (
            FailureClass.LOST,
            f"the job's batch script was killed by signal {signal_name(signal)} from "
            "outside hpcbridge",
            None,
            signal,
        )
    if record.reason in LAUNCH_FAILURES:  # (a memory kill has this reason too, with SIGKILL)
        nodes = ", ".join(record.nodes) or "its node"
        return (
            FailureClass.NODE_FAILURE,
            f"Slurm could not launch the job on {nodes} ({record.reason}); the program never ran",
            exit_code,
            signal,
        )
    if record.batch_state == "CANCELLED":
        # FAILED while its batch step was cancelled, by no one: Slurm ended the program itself.
        # Seen when slurmctld restarts from a state save older than the job's start and starts
        # it again ("job credential revoked"). Not the program's failure: retried as lost.
        return (
            FailureClass.LOST,
            "Slurm ended the job's batch script itself (after a slurmctld restart it started "
            "the job again and revoked the running one); the program did not fail",
            exit_code,
            signal,
        )
    if exit_code is None:
        return (
            FailureClass.APP_ERROR,
            "the job failed; Slurm's accounting did not keep its exit code",
            None,
            None,
        )
    if exit_code > 128:
        return (
            FailureClass.APP_ERROR,
            f"the job was killed by signal {signal_name(exit_code - 128)}",
            exit_code,
            exit_code - 128,
        )
    return FailureClass.APP_ERROR, f"the job exited with code {exit_code}", exit_code, None
