"""Slurm's states and reasons in hpcbridge's words: plain data, read by ``_classify``."""

from __future__ import annotations

from collections.abc import Mapping

from hpcbridge.backends._protocol import Phase
from hpcbridge.states import FailureClass

STATE_PHASE: Mapping[str, Phase] = {
    "PENDING": Phase.PENDING,
    "REQUEUED": Phase.PENDING,
    "REQUEUE_FED": Phase.PENDING,
    "REQUEUE_HOLD": Phase.PENDING,
    "RESV_DEL_HOLD": Phase.PENDING,
    "CONFIGURING": Phase.PENDING,  # nodes are booting (cloud power-up): not running yet
    "RUNNING": Phase.RUNNING,
    "COMPLETING": Phase.RUNNING,
    "SUSPENDED": Phase.RUNNING,
    "STOPPED": Phase.RUNNING,
    "SIGNALING": Phase.RUNNING,
    "STAGE_OUT": Phase.RUNNING,
    "RESIZING": Phase.RUNNING,
    "SPECIAL_EXIT": Phase.FAILED,
    "COMPLETED": Phase.SUCCEEDED,
    "FAILED": Phase.FAILED,
    "CANCELLED": Phase.FAILED,
    "TIMEOUT": Phase.FAILED,
    "NODE_FAIL": Phase.FAILED,
    "PREEMPTED": Phase.FAILED,
    "BOOT_FAIL": Phase.FAILED,
    "DEADLINE": Phase.FAILED,
    "OUT_OF_MEMORY": Phase.FAILED,
    "REVOKED": Phase.FAILED,
}
"""Slurm job state -> phase. A state missing here is reported as UNKNOWN, never guessed."""

TERMINAL_FAILURE: Mapping[str, tuple[FailureClass, str]] = {
    "TIMEOUT": (FailureClass.TIMEOUT, "Slurm stopped the job at its time limit"),
    "DEADLINE": (FailureClass.TIMEOUT, "Slurm stopped the job at its deadline"),
    "NODE_FAIL": (FailureClass.NODE_FAILURE, "a node of the job failed"),
    "BOOT_FAIL": (FailureClass.NODE_FAILURE, "a node of the job failed to boot"),
    "PREEMPTED": (FailureClass.PREEMPTED, "the job was preempted by a higher-priority job"),
    "OUT_OF_MEMORY": (
        FailureClass.OOM,
        "the job used more memory than it asked for and was killed",
    ),
    "REVOKED": (FailureClass.LOST, "Slurm revoked the job (it ran on another cluster)"),
    "SPECIAL_EXIT": (FailureClass.APP_ERROR, "the job ended with Slurm's special exit state"),
}
"""Terminal states whose failure class the state alone decides. FAILED (exit code, signal,
memory) and CANCELLED (by whom) are decided in ``_classify``."""

PENDING_REASONS: Mapping[str, str] = {
    "": "waiting to be scheduled",
    "Priority": "waiting behind jobs of higher priority",
    "Resources": "waiting for resources (nodes, CPUs, memory or GPUs) to free up",
    "Licenses": "waiting for {licences}",
    "Dependency": "waiting for the jobs it depends on",
    "DependencyNeverSatisfied": "its dependency can never be satisfied; cancel it",
    "BeginTime": "waiting for its start time",
    "JobHeldUser": "held by its owner; release it with 'scontrol release {job_id}'",
    "JobHeldAdmin": "held by a Slurm administrator",
    "PartitionDown": "partition {partition} is down",
    "PartitionInactive": "partition {partition} is inactive",
    "PartitionNodeLimit": "it asks for more nodes than partition {partition} allows",
    "PartitionTimeLimit": "its time limit is longer than partition {partition} allows",
    "PartitionConfig": "it asks for more than partition {partition} can give",
    "ReqNodeNotAvail": "a node it needs is not available (down, drained or reserved)",
    "NodeDown": "a node it needs is down",
    "Nodes_required_for_job_are_DOWN,_DRAINED_or_reserved_for_jobs_in_higher_priority_partitions": (
        "nodes it needs are down, drained or reserved for higher-priority partitions"
    ),
    "BadConstraints": "no node has the features it asks for",
    "Reservation": "waiting for its reservation to start",
    "InvalidAccount": "its account is not valid on this cluster",
    "InvalidQOS": "its QOS is not valid on this cluster",
    "JobArrayTaskLimit": "waiting: the array's limit of tasks running at once is reached",
    "PowerUpNode": "waiting for cloud nodes to power up",
    "Prolog": "the node prolog is running",
    "Cleaning": "waiting for the nodes of its previous run to be cleaned up",
    "launch_failed_requeued_held": "held after a failed launch; release it to try again",
    "BurstBufferResources": "waiting for burst-buffer space",
    "FrontEndDown": "the front-end node is down",
    "SystemFailure": "waiting after a Slurm system failure",
    "JobLaunchFailure": "its launch failed",
}
"""Slurm pending reason -> a sentence. Placeholders: licences, partition, job_id, reason."""

LIMIT_PREFIXES: Mapping[str, str] = {
    "Assoc": "waiting: its account's limit {reason} is reached",
    "QOS": "waiting: the QOS limit {reason} is reached",
    "MaxCpu": "waiting: the CPU limit {reason} is reached",
}
"""Reason prefixes of the many limit reasons (AssocGrpCpuLimit, QOSMaxJobsPerUserLimit...)."""

REQUEUED_REASON = "requeued after preemption or a node failure (restart {restarts}); {waiting}"

SIGNAL_NAMES: Mapping[int, str] = {
    1: "SIGHUP",
    2: "SIGINT",
    3: "SIGQUIT",
    4: "SIGILL",
    6: "SIGABRT",
    7: "SIGBUS",
    8: "SIGFPE",
    9: "SIGKILL",
    10: "SIGUSR1",
    11: "SIGSEGV",
    12: "SIGUSR2",
    13: "SIGPIPE",
    14: "SIGALRM",
    15: "SIGTERM",
}
