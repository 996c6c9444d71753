"""``decide()``: a pure function of a job's record, what the backend saw, policy and ``now``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hpcbridge.backends import Observation, Phase
from hpcbridge.checkpoint import REQUEUE_EXIT_CODE
from hpcbridge.reconciler._actions import (
    Action,
    CancelTasks,
    Continue,
    Kill,
    Note,
    RecordAttempt,
    Submit,
    Transition,
)
from hpcbridge.reconciler._licence_wait import LicenceNeed, licence_wait, released
from hpcbridge.reconciler._retry import decide_retry
from hpcbridge.reconciler._stage_outcome import StageOutcome
from hpcbridge.spec import JobSpec, format_duration
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import Attempt, Job

_S = JobState


@dataclass(frozen=True, slots=True)
class Policy:
    lost_grace_s: float = 60.0
    project_running_quota: int | None = None
    """Jobs of one project that may hold the scheduler at once (None: no limit)."""
    project_running_quotas: Mapping[str, int | None] = field(default_factory=dict)
    """Projects with a running quota of their own (None: no limit for that project)."""

    def running_quota_of(self, project: str) -> int | None:
        if project in self.project_running_quotas:
            return self.project_running_quotas[project]
        return self.project_running_quota


@dataclass(frozen=True, slots=True)
class JobView:
    """Everything ``decide()`` may look at for one job."""

    job: Job
    spec: JobSpec
    attempt: Attempt | None = None
    history: tuple[FailureClass | None, ...] = ()
    """Failure class of each finished attempt so far (None for a success)."""
    observation: Observation | None = None
    unknown_since: float | None = None
    children: Mapping[JobState, int] | None = None
    staged: StageOutcome | None = None
    """The finished data stage of a job in ``staging_in``/``staging_out`` (None: running)."""
    licences: tuple[LicenceNeed, ...] = ()
    """Managed licence pools the job asks of, with what is free this cycle."""


def decide(view: JobView, policy: Policy, now: float) -> list[Action]:
    if view.job.state.terminal:
        return []
    if view.job.is_array_parent:
        return _decide_parent(view)
    if view.job.cancel_requested:
        return _decide_cancel(view, now)
    state = view.job.state
    if state is _S.ACCEPTED:
        if view.spec.stage_in:
            return [Transition(_S.STAGING_IN, "staging inputs")]
        return _queue(view, "waiting to start", now)
    if state is _S.RETRY_WAIT:
        due = view.job.next_attempt_at is None or now >= view.job.next_attempt_at
        if due and view.spec.stage_in:  # inputs are verified again before every attempt
            return [Transition(_S.STAGING_IN, "retrying: staging inputs")]
        return _queue(view, "retrying", now) if due else []
    if state in (_S.STAGING_IN, _S.STAGING_OUT):
        return _decide_staged(view, now)
    if state is _S.HELD:
        return _decide_held(view, now)
    attempt = view.attempt
    if attempt is None or attempt.state.finished or attempt.state is AttemptState.PREPARED:
        if state is _S.LOST:
            return _after_failure(
                view, FailureClass.LOST, None, "the attempt was lost", view.history, now
            )
        return [Submit()]
    seen = view.observation
    if seen is None:
        return []  # no news this cycle (backend unreachable): never guess
    if seen.phase is Phase.PENDING:
        if attempt.state is AttemptState.RUNNING and seen.failure_class is not None:
            return _decide_requeued(view, seen, now)
        if state in (_S.RUNNING, _S.LOST):
            return [Transition(_S.QUEUED, seen.reason or "requeued by the scheduler")]
        return [Note(seen.reason)] if seen.reason and seen.reason != view.job.reason else []
    if seen.phase is Phase.RUNNING:
        return _decide_running(view, seen, now)
    if seen.phase is Phase.UNKNOWN:
        return _decide_unknown(view, policy, now)
    return _decide_finished(view, seen, now)


def _queue(
    view: JobView, reason: str | None, now: float, data: dict[str, Any] | None = None
) -> list[Action]:
    """Queue and submit, unless managed licences are short: then it waits held."""
    wait = licence_wait(view.licences, view.job.state, view.job.reason, now)
    if wait is None:
        return [Transition(_S.QUEUED, reason, data=data or {}), Submit()]
    if data:  # keep what the stage recorded on the way to held
        wait = [
            replace(a, data={**data, **a.data}) if isinstance(a, Transition) else a for a in wait
        ]
    return wait


def _decide_held(view: JobView, now: float) -> list[Action]:
    """Held for licences: released once they are free. Other holds are not ours to end."""
    if not view.licences:
        return []
    wait = licence_wait(view.licences, view.job.state, view.job.reason, now)
    return [released(view.licences), Submit()] if wait is None else wait


def _decide_requeued(view: JobView, seen: Observation, now: float) -> list[Action]:
    """It ran, and the backend says why it waits in the queue again: the scheduler requeued
    it (preemption in REQUEUE mode, a node failure with ``--requeue``). That run ends as a
    failed attempt of that class; a new attempt follows the same native job. Pending again
    without a reason (a restarted slurmctld recovering its state) keeps the attempt."""
    failure = seen.failure_class or FailureClass.PREEMPTED
    reason = seen.reason or "requeued by the scheduler"
    return [
        RecordAttempt(
            {
                "state": AttemptState.FAILED,
                "failure_class": failure,
                "ended_at": seen.ended_at or now,
                "reason": reason,
                **_accounting(seen),
            }
        ),
        Transition(_S.QUEUED, reason, {"failure_class": failure}),
        Continue(),
    ]


def _record_start(view: JobView, seen: Observation, now: float) -> list[Action]:
    """The attempt runs: record it once (and the job as running)."""
    attempt = view.attempt
    assert attempt is not None  # callers only come here with an active attempt
    actions: list[Action] = []
    if attempt.state is not AttemptState.RUNNING:
        actions.append(
            RecordAttempt(
                {
                    "state": AttemptState.RUNNING,
                    "started_at": seen.started_at or now,
                    "nodes": seen.nodes,
                    "details": {**attempt.details, **seen.details},
                }
            )
        )
    if view.job.state is not _S.RUNNING:
        actions.append(Transition(_S.RUNNING, "running on " + (", ".join(seen.nodes) or "?")))
    return actions


def _decide_running(view: JobView, seen: Observation, now: float) -> list[Action]:
    attempt = view.attempt
    assert attempt is not None
    actions = _record_start(view, seen, now)
    if attempt.kill_order is not None:
        return actions
    resources = view.spec.resources
    started = seen.started_at or attempt.started_at
    if (
        resources.walltime_s is not None
        and started is not None
        and (now - started > resources.walltime_s)
    ):
        actions.append(
            Kill(
                FailureClass.TIMEOUT,
                f"ran past its walltime of {format_duration(resources.walltime_s)}",
            )
        )
    elif (
        resources.mem_mb is not None
        and seen.rss_mb is not None
        and (seen.rss_mb > resources.mem_mb)
    ):
        actions.append(
            Kill(
                FailureClass.OOM,
                f"used {seen.rss_mb:.0f} MB of memory, more "
                f"than the {resources.mem_mb} MB it asked for",
            )
        )
    return actions


def _decide_finished(view: JobView, seen: Observation, now: float) -> list[Action]:
    succeeded = seen.phase is Phase.SUCCEEDED
    failure = None if succeeded else (seen.failure_class or FailureClass.APP_ERROR)
    if failure is FailureClass.APP_ERROR and _asked_for_requeue(view, seen):
        failure = _requeue_class(view, seen, now)
        reason = (
            f"the job saved a checkpoint and asked to be requeued (exit code {seen.exit_code})"
            + (" at its time limit" if failure is FailureClass.TIMEOUT else " on preemption")
        )
        seen = replace(seen, failure_class=failure, reason=reason)
    actions: list[Action] = [
        RecordAttempt(
            {
                "state": AttemptState.SUCCEEDED if succeeded else AttemptState.FAILED,
                "failure_class": failure,
                "exit_code": seen.exit_code,
                "signal": seen.signal,
                "ended_at": seen.ended_at or now,
                "reason": seen.reason,
                **({"started_at": seen.started_at} if seen.started_at else {}),
                **({"nodes": seen.nodes} if seen.nodes else {}),
                **_accounting(seen),
            }
        )
    ]
    if view.job.state is _S.QUEUED and (seen.started_at is not None or succeeded):
        actions.append(Transition(_S.RUNNING, "started"))
    if failure is None:
        return [
            *actions,
            Transition(
                _S.STAGING_OUT if _stages_out(view.spec, True) else _S.SUCCEEDED,
                "exited with code 0" + ("; staging outputs" if view.spec.stage_out else ""),
                {"exit_code": seen.exit_code, "failure_class": None},
            ),
        ]
    if _stages_out(view.spec, False) and failure is not FailureClass.CANCELLED:
        fields = {"exit_code": seen.exit_code, "failure_class": failure}
        what = seen.reason or failure.value
        return [*actions, Transition(_S.STAGING_OUT, f"{what}; staging outputs", fields)]
    return actions + _after_failure(
        view, failure, seen.exit_code, seen.reason, (*view.history, failure), now
    )


def _stages_out(spec: JobSpec, succeeded: bool) -> bool:
    return any(succeeded or entry.when == "always" for entry in spec.stage_out)


def _decide_staged(view: JobView, now: float) -> list[Action]:
    """A stage finished: queue the job on verified inputs, or end it after its outputs.
    Transfers retry per file already, so a failed stage-in fails the job."""
    staged, job = view.staged, view.job
    if staged is None:
        return []  # still copying
    data = dict(staged.data)
    if job.state is _S.STAGING_IN:
        if staged.ok:
            return _queue(view, staged.reason, now, data)
        failed: dict[str, Any] = {"failure_class": staged.failure_class}
        return [Transition(_S.FAILED, f"stage-in failed: {staged.reason}", failed, data)]
    if job.failure_class is not None:  # outputs of a failed run: its failure decides
        what = (job.reason or job.failure_class.value).removesuffix("; staging outputs")
        what += f"; outputs: {staged.reason}"
        return _after_failure(view, job.failure_class, job.exit_code, what, view.history, now)
    if staged.ok:
        done: dict[str, Any] = {"exit_code": job.exit_code, "failure_class": None}
        return [Transition(_S.SUCCEEDED, f"exited with code 0; {staged.reason}", done, data)]
    failed = {"failure_class": staged.failure_class}
    return [Transition(_S.FAILED, f"stage-out failed: {staged.reason}", failed, data)]


def _asked_for_requeue(view: JobView, seen: Observation) -> bool:
    """The checkpoint SDK's ``exit_for_requeue()``: it saved on the warning signal."""
    return view.spec.checkpoint is not None and seen.exit_code == REQUEUE_EXIT_CODE


def _requeue_class(view: JobView, seen: Observation, now: float) -> FailureClass:
    """The warning came from the time limit if the run reached its walltime's grace
    window; otherwise the scheduler was taking the nodes back."""
    walltime = view.spec.resources.walltime_s
    checkpoint = view.spec.checkpoint
    started = seen.started_at or (view.attempt.started_at if view.attempt else None)
    if walltime is None or checkpoint is None or started is None:
        return FailureClass.PREEMPTED
    ran = (seen.ended_at or now) - started
    return (
        FailureClass.TIMEOUT
        if ran >= walltime - checkpoint.grace_s - 5
        else (FailureClass.PREEMPTED)
    )


def _accounting(seen: Observation) -> dict[str, Any]:
    """What the backend measured (Slurm's accounting, peak memory), kept with the attempt;
    the loop merges it into the details recorded at submission."""
    details = dict(seen.details)
    if seen.rss_mb is not None:
        details["max_rss_mb"] = seen.rss_mb
    return {"details": details} if details else {}


def _after_failure(
    view: JobView,
    failure: FailureClass,
    exit_code: int | None,
    reason: str | None,
    history: tuple[FailureClass | None, ...],
    now: float,
) -> list[Action]:
    """Retry or fail, after the latest attempt failed; ``history`` includes that failure."""
    if failure is FailureClass.CANCELLED:
        return [
            Transition(
                _S.CANCELLED, reason or "cancelled outside hpcbridge", {"failure_class": failure}
            )
        ]
    decision = decide_retry(view.spec, view.job.job_id, failure, history)
    what = reason or failure.value
    fields: dict[str, object] = {"failure_class": failure, "exit_code": exit_code}
    if decision.retry:
        fields["next_attempt_at"] = now + decision.delay_s
        return [
            Transition(
                _S.RETRY_WAIT,
                f"{what}; {decision.why} in {_readable(decision.delay_s)}",
                fields,
            )
        ]
    return [Transition(_S.FAILED, f"{what}; {decision.why}", fields)]


def _decide_unknown(view: JobView, policy: Policy, now: float) -> list[Action]:
    since = view.unknown_since
    if since is None or now - since < policy.lost_grace_s:
        return []
    reason = (
        f"the scheduler has not known the attempt for {_readable(now - since)}; "
        "it is lost, not assumed finished"
    )
    actions: list[Action] = [
        RecordAttempt(
            {
                "state": AttemptState.FAILED,
                "ended_at": now,
                "failure_class": FailureClass.LOST,
                "reason": reason,
            }
        )
    ]
    if view.job.state is not _S.LOST:
        actions.append(Transition(_S.LOST, reason, {"failure_class": FailureClass.LOST}))
    return actions + _after_failure(
        view, FailureClass.LOST, None, reason, (*view.history, FailureClass.LOST), now
    )


def _decide_cancel(view: JobView, now: float) -> list[Action]:
    """Stop a live attempt and record what it really did: an attempt that started before
    the kill reached it is recorded as started (and the job as running), then cancelled."""
    attempt = view.attempt
    seen = view.observation
    live = attempt is not None and attempt.state in (AttemptState.SUBMITTED, AttemptState.RUNNING)
    if live and seen is not None and _completed(seen):
        # It did all its work before the cancel could stop it: that is what happened.
        return _decide_finished(view, replace(seen, phase=Phase.SUCCEEDED, failure_class=None), now)
    if live and seen is not None and seen.phase in (Phase.SUCCEEDED, Phase.FAILED):
        assert attempt is not None
        ran = seen.started_at is not None or attempt.started_at is not None
        started: dict[str, Any] = (
            {"started_at": seen.started_at, "nodes": seen.nodes} if seen.started_at else {}
        )
        return [
            RecordAttempt(
                {
                    "state": AttemptState.FAILED,
                    "ended_at": seen.ended_at or now,
                    "failure_class": FailureClass.CANCELLED,
                    "exit_code": seen.exit_code,
                    "signal": seen.signal,
                    "reason": "cancelled" if ran else "cancelled before it started",
                    **started,
                }
            ),
            *_started(view, ran),
            Transition(_S.CANCELLED, "cancelled", {"failure_class": FailureClass.CANCELLED}),
        ]
    if live and seen is not None and seen.phase is Phase.UNKNOWN:
        live = False  # nothing left to stop
    if live:
        assert attempt is not None
        actions: list[Action] = []
        if seen is not None and seen.phase is Phase.RUNNING and view.job.state in _STARTABLE:
            actions = _record_start(view, seen, now)  # it started before the kill: say so
        if attempt.kill_order is None:
            actions.append(Kill(FailureClass.CANCELLED, "cancelled"))
        return actions
    actions = []
    if attempt is not None and not attempt.state.finished:
        actions.append(
            RecordAttempt(
                {
                    "state": AttemptState.FAILED,
                    "ended_at": now,
                    "failure_class": FailureClass.CANCELLED,
                    "reason": "cancelled before it started",
                }
            )
        )
    return [
        *actions,
        Transition(_S.CANCELLED, "cancelled", {"failure_class": FailureClass.CANCELLED}),
    ]


_STARTABLE = (_S.QUEUED, _S.RUNNING)


def _completed(seen: Observation) -> bool:
    """It ran to its end (exit code 0, no signal), whether or not a kill was on its way.
    A job cancelled while it waited also reads exit code 0 (Slurm's ``CANCELLED 0:0``):
    only one that is known to have started can have completed."""
    if seen.exit_code not in (0, None) or seen.signal is not None:
        return False
    return seen.phase is Phase.SUCCEEDED or (
        seen.phase is Phase.FAILED
        and seen.exit_code == 0
        and seen.failure_class is FailureClass.CANCELLED
        and seen.started_at is not None
    )


def _started(view: JobView, ran: bool) -> list[Action]:
    """A queued job whose attempt ran passes through running on its way to its end."""
    if ran and view.job.state is _S.QUEUED:
        return [Transition(_S.RUNNING, "started")]
    return []


def _decide_parent(view: JobView) -> list[Action]:
    job = view.job
    counts = dict(view.children or {})
    done = sum(n for state, n in counts.items() if state.terminal)
    actions: list[Action] = []
    if job.cancel_requested and done < job.task_count:
        return [CancelTasks()]
    started = done + counts.get(_S.RUNNING, 0) + counts.get(_S.STAGING_OUT, 0)
    if job.state is _S.ACCEPTED and (started or done == job.task_count):
        actions.append(Transition(_S.RUNNING, "tasks started"))
    if done < job.task_count:
        summary = (
            f"{done}/{job.task_count} tasks done, {counts.get(_S.RUNNING, 0)} running, "
            f"{counts.get(_S.QUEUED, 0)} queued"
        )
        return actions + ([Note(summary)] if summary != job.reason else [])
    failed = counts.get(_S.FAILED, 0)
    cancelled = counts.get(_S.CANCELLED, 0)
    if failed:
        return [*actions, Transition(_S.FAILED, f"{failed} of {job.task_count} tasks failed")]
    if cancelled:
        return [
            *actions,
            Transition(_S.CANCELLED, f"{cancelled} of {job.task_count} tasks cancelled"),
        ]
    return [*actions, Transition(_S.SUCCEEDED, f"all {job.task_count} tasks succeeded")]


def _readable(seconds: float) -> str:
    """A duration for a reason a person reads: whole seconds, tenths below ten seconds
    (a jittered delay of 37.41 s reads "37s", not "37.4123s")."""
    return format_duration(round(seconds) if seconds >= 10 else round(seconds, 1))
