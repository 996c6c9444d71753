"""Why a job is where it is, in words: what happened, what it cost and what to do next.

Everything comes from the store (job, attempts, events), the attempt's logs and the job's
checkpoint directory: state and failure class as a sentence, the scheduler's reason,
nodes, exit code or signal, lost work (core-hours), checkpoint state, what hpcbridge
already did, the last log lines and the runbook to read next. Interfaces render it.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcbridge.checkpoint import Checkpointer, CheckpointError
from hpcbridge.client import Client
from hpcbridge.cost import describe_job_cost, load_cards
from hpcbridge.errors import HpcbridgeError
from hpcbridge.runbooks import runbook_url
from hpcbridge.service.reasons import (
    EXIT_COMMAND_NOT_FOUND,
    attempt_reason,
    history_reason,
    is_command_not_found,
    missing_command,
    not_found_text,
    round_durations,
    stderr_tail,
)
from hpcbridge.slo import runbook_for
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import Attempt, Event, Job

_LOG_LINES = 15
_F = FailureClass


SENTENCES: dict[FailureClass, str] = {
    _F.NODE_FAILURE: "A node the job ran on failed (hardware, kernel or network), so the "
    "scheduler ended the job. This is the platform's fault, not the job's.",
    _F.PREEMPTED: "The job was preempted: the scheduler took its nodes back for other work "
    "(or a spot instance was reclaimed).",
    _F.TIMEOUT: "The job ran past its walltime and was stopped.",
    _F.OOM: "The job used more memory than it asked for and was stopped.",
    _F.APP_ERROR: "The job's own program failed: it exited with an error.",
    _F.SPEC_ERROR: "The scheduler refused the job as it was written.",
    _F.STAGING_ERROR: "Copying the job's input or output data failed.",
    _F.CHECKSUM_MISMATCH: "Staged data did not match its expected checksum: it may be "
    "corrupt, or the expected checksum is wrong.",
    _F.LICENCE_UNAVAILABLE: "The licences the job needs were not available.",
    _F.BACKEND_UNAVAILABLE: "The scheduler could not be reached.",
    _F.LOST: "The scheduler stopped knowing the job and it left no exit status: something "
    "outside hpcbridge killed it, or its node vanished.",
    _F.CANCELLED: "The job was cancelled.",
}

NEXT_STEPS: dict[FailureClass, str] = {
    _F.NODE_FAILURE: "hpcbridge retries node failures by itself. If the same node fails "
    "again, drain it and tell the site team.",
    _F.PREEMPTED: "Save checkpoints (hpcbridge.checkpoint) so a preempted job resumes; run "
    "deadline work on a regular (non-spot) partition.",
    _F.TIMEOUT: "Raise resources.walltime, or checkpoint so a retry resumes. If it usually "
    "finishes in time, look for a slow fabric or file system.",
    _F.OOM: "Raise resources.mem, or make the job use less memory.",
    _F.APP_ERROR: "Read the job's error output ('hpcbridge logs JOB --stderr') and fix the "
    "program or its inputs; app errors are not retried unless retry.retry_on says so.",
    _F.SPEC_ERROR: "Run 'hpcbridge validate' on the spec and fix what it reports.",
    _F.STAGING_ERROR: "Check the stage_in/stage_out URLs and that the storage is reachable.",
    _F.CHECKSUM_MISMATCH: "Compare the source data with its expected checksum; do not "
    "trust outputs computed from it.",
    _F.LICENCE_UNAVAILABLE: "Wait for licences, or lower how many the job asks for.",
    _F.BACKEND_UNAVAILABLE: "Check that the scheduler answers (squeue/sacct) from this host.",
    _F.LOST: "Check the node it ran on; hpcbridge retries lost jobs by itself.",
    _F.CANCELLED: "Nothing to fix; resubmit if the cancellation was a mistake.",
}


@dataclass
class Explanation:
    job_id: str
    name: str
    project: str
    workload_class: str
    state: str
    failure_class: str | None
    summary: str
    scheduler_reason: str | None
    nodes: list[str]
    exit: str | None
    attempts: list[dict[str, Any]]
    actions: list[str]
    lost_work: str | None
    checkpoint: str | None
    log_file: str | None
    log_tail: list[str]
    next_step: str
    runbook: str | None
    tasks: dict[str, int] = field(default_factory=dict)
    cost: str | None = None
    """What its attempts (an array's tasks') cost, waste and cost per result included."""


def _signal_text(signum: int) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = "unknown signal"
    return f"killed by signal {signum} ({name})"


def describe_exit(
    exit_code: int | None, signum: int | None, missing: str | None = None
) -> str | None:
    """``exit code 3``, ``killed by signal 9 (SIGKILL)``, ``command not found: foo (exit
    code 127)``; None when nothing is known. ``missing``: the command not found, if known."""
    if exit_code == EXIT_COMMAND_NOT_FOUND and signum is None:
        return not_found_text(missing)
    if signum is not None:
        return _signal_text(signum)
    if exit_code is None:
        return None
    if exit_code > 128:  # how a shell reports death by signal N
        return f"{_signal_text(exit_code - 128)} (exit code {exit_code})"
    return f"exit code {exit_code}"


def duration_text(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"


def _cores(job: Job) -> int:
    resources = job.spec.get("resources", {})
    if not isinstance(resources, dict):
        return 1
    product = 1
    for key in ("nodes", "tasks_per_node", "cpus_per_task"):
        value = resources.get(key, 1)
        product *= value if isinstance(value, int) and value > 0 else 1
    return product


def _run_s(attempt: Attempt) -> float:
    if attempt.started_at is None or attempt.ended_at is None:
        return 0.0
    return max(attempt.ended_at - attempt.started_at, 0.0)


def _actions(events: list[Event]) -> list[str]:
    """What hpcbridge (or someone) did about the job, from its events, in order."""
    done: list[str] = []
    for event in events:
        where = f" (attempt {event.attempt})" if event.attempt else ""
        target = event.to_state
        if event.kind == "kill":
            done.append(f"stopped the job{where}: {event.reason or 'killed'}")
        elif event.kind == "cancel_requested":
            done.append(f"cancel requested by {event.actor}")
        elif event.kind == "transition" and target is JobState.RETRY_WAIT:
            done.append(f"scheduled a retry{where}: {event.reason}")
        elif event.kind == "transition" and target is JobState.LOST:
            done.append(f"marked the job lost{where} instead of assuming it finished")
        elif event.kind == "transition" and target is JobState.QUEUED and event.reason:
            if event.from_state is JobState.RUNNING:
                done.append(f"the scheduler requeued it{where}: {event.reason}")
        elif event.kind == "burst_decided":
            done.append(event.reason or "decided about bursting")
        elif event.kind == "placed":
            done.append(event.reason or f"placed on {event.data.get('node', '?')}")
        elif event.kind == "budget_warning":
            done.append(f"accepted it past a budget's soft limit: {event.reason}")
        elif event.kind == "node_drained":
            done.append(f"drained node {event.data.get('node', '?')}: {event.reason}")
        elif event.kind == "node_quarantine_refused":
            done.append(f"did not drain node {event.data.get('node', '?')}: {event.reason}")
        elif event.kind == "transition" and target is JobState.FAILED:
            done.append(f"gave up{where}: {event.reason}")
    return done


def _checkpoint(client: Client, job: Job) -> str | None:
    policy = job.spec.get("checkpoint")
    configured = policy.get("dir") if isinstance(policy, dict) else None
    directory = (
        Path(configured) if configured else client.settings.home / "checkpoints" / job.job_id
    )
    if not directory.is_dir():
        return None if policy is None else f"no checkpoint saved yet (in {directory})"
    try:
        # No status directory and an empty environment: reading writes nothing anywhere.
        reader = Checkpointer(directory, environ={})
        found = reader.latest_valid(verify="size")
    except (CheckpointError, OSError) as exc:
        return f"cannot read checkpoints in {directory}: {exc}"
    skipped = reader.last_skipped
    if found is None:
        if skipped:
            return f"{len(skipped)} checkpoint(s) in {directory}, none valid: a retry starts over"
        return f"no checkpoint saved yet (in {directory})"
    text = f"latest valid: step {found.step}, {found.manifest.total_bytes} bytes, in {found.path}"
    if skipped:
        text += f"; {len(skipped)} newer damaged one(s) skipped"
    return text + "; a retry resumes from it"


def _tail(path: Path | None) -> list[str]:
    if path is None or not path.is_file():
        return []
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 32 * 1024))
        lines = handle.read().decode(errors="replace").splitlines()
    return lines[-_LOG_LINES:]


def _not_found_sentence(command: str | None) -> str:
    named = f"'{command}'" if command else "a command it runs"
    return (
        f"The job could not start {named}: the command was not found (exit code 127, how a "
        "shell says 'command not found')."
    )


def _state_sentence(job: Job, attempts: list[Attempt], missing: str | None = None) -> str:
    last = attempts[-1] if attempts else None
    failed = job.state in (JobState.FAILED, JobState.RETRY_WAIT)
    if failed and last is not None and is_command_not_found(last.exit_code, last.failure_class):
        return _not_found_sentence(missing)
    if job.state is JobState.SUCCEEDED:
        return "The job succeeded."
    if job.state is JobState.RUNNING:
        where = ", ".join(last.nodes) if last and last.nodes else "?"
        return f"The job is running (attempt {job.attempt_count}) on {where}."
    if job.state in (JobState.QUEUED, JobState.ACCEPTED, JobState.HELD, JobState.STAGING_IN):
        reason = round_durations(job.reason or "no reason given")
        return f"The job is waiting ({job.state.value}): {reason}."
    if job.state is JobState.RETRY_WAIT:
        cause = SENTENCES.get(job.failure_class, "") if job.failure_class else ""
        return f"The last attempt failed and hpcbridge will retry it. {cause}".strip()
    if job.failure_class is not None:
        return SENTENCES[job.failure_class]
    return f"The job is {job.state.value}."


def _scheduler_reason(job: Job, last: Attempt | None, missing: str | None) -> str | None:
    if last is not None and last.reason:
        return attempt_reason(last, missing)
    return round_durations(job.reason) if job.reason else None


def explain(client: Client, job_id: str) -> Explanation:
    job = client.get(job_id)
    attempts = client.attempts(job_id)
    events = client.events(job_id)
    failure = job.failure_class
    finished = [a for a in attempts if a.state in (AttemptState.SUCCEEDED, AttemptState.FAILED)]
    wasted = [a for a in finished if a.state is AttemptState.FAILED]
    lost_s = sum(_run_s(a) for a in wasted)
    lost_work = None
    if wasted:
        core_h = lost_s * _cores(job) / 3600
        lost_work = (
            f"{duration_text(lost_s)} of run time in {len(wasted)} failed attempt(s) "
            f"({core_h:.2f} core-hours)"
        )
        since_checkpoint = [a.lost_core_hours for a in wasted]
        if all(isinstance(h, int | float) for h in since_checkpoint):
            redo = sum(float(h) for h in since_checkpoint if isinstance(h, int | float))
            lost_work += f"; {redo:.2f} core-hours since the last checkpoint must be redone"
    last = attempts[-1] if attempts else None
    log_file, tail = None, []
    missing = None
    if last is not None:
        try:
            stdout, stderr = client.log_paths(job_id)
        except HpcbridgeError:
            stdout, stderr = None, None
        for path in (stderr, stdout):
            tail = _tail(path)
            if tail:
                log_file = str(path)
                break
        if is_command_not_found(last.exit_code, last.failure_class):
            missing = missing_command(stderr_tail(stderr))
    nodes = sorted({node for a in attempts for node in a.nodes})
    if job.state is JobState.SUCCEEDED:
        next_step, runbook = "Nothing to do.", None
    elif failure is not None and (job.state.terminal or job.state is JobState.RETRY_WAIT):
        next_step = NEXT_STEPS[failure].replace("JOB", job.job_id)
        runbook = runbook_url(runbook_for(failure), client.settings.runbook_url_base)
        if last is not None and is_command_not_found(last.exit_code, last.failure_class):
            what = missing or "the command"
            next_step = (
                f"Install {what} where the job runs, or name it by its full path in the "
                "command, or set PATH in the spec's env; then submit the job again "
                "(retrying the same spec finds the same nothing)."
            )
    else:
        next_step = f"Follow it with 'hpcbridge wait {job_id}' or 'hpcbridge logs -f {job_id}'."
        runbook = None
    tasks: dict[str, int] = {}
    if job.is_array_parent:
        for task in client.tasks(job_id):
            tasks[task.state.value] = tasks.get(task.state.value, 0) + 1
        next_step = "Ask about one task: 'hpcbridge why JOB.INDEX' (see 'hpcbridge status')."
    return Explanation(
        job_id=job.job_id,
        name=job.name,
        project=job.project,
        workload_class=job.workload_class,
        state=job.state.value,
        failure_class=None if failure is None else failure.value,
        summary=_state_sentence(job, attempts, missing),
        scheduler_reason=_scheduler_reason(job, last, missing),
        nodes=nodes,
        exit=None if last is None else describe_exit(last.exit_code, last.signal, missing),
        attempts=[
            {
                "number": a.number,
                "state": a.state.value,
                "failure_class": None if a.failure_class is None else a.failure_class.value,
                "native_id": a.native_id,
                "nodes": list(a.nodes),
                "run_s": round(_run_s(a), 3),
                "exit": describe_exit(a.exit_code, a.signal),
                "reason": attempt_reason(a, missing if a is last else None) or None,
            }
            for a in attempts
        ],
        actions=[history_reason(action, missing) for action in _actions(events)],
        lost_work=lost_work,
        checkpoint=_checkpoint(client, job),
        log_file=log_file,
        log_tail=tail,
        next_step=next_step,
        runbook=runbook,
        tasks=tasks,
        cost=job_cost_text(client, job, attempts),
    )


def job_cost_text(client: Client, job: Job, attempts: list[Attempt]) -> str | None:
    """What the job cost, in words (status and why show it)."""
    pairs = [(job, a) for a in attempts]
    for task in client.tasks(job.job_id) if job.is_array_parent else ():
        pairs += [(task, a) for a in client.attempts(task.job_id)]
    return describe_job_cost(pairs, load_cards(client.settings.resolved_rate_cards))
