"""``decide()``, table by table: one job's record and observation in, actions out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcbridge.backends import Observation, Phase
from hpcbridge.reconciler import (
    Action,
    CancelTasks,
    Continue,
    JobView,
    Kill,
    Note,
    Policy,
    RecordAttempt,
    Submit,
    Transition,
    backoff_s,
    decide,
)
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.states import AttemptState, FailureClass, JobState, can_transition
from hpcbridge.store import Attempt, Job, JobId

S = JobState
A = AttemptState
NOW = 10_000.0
POLICY = Policy(lost_grace_s=60.0)
JOB_ID = JobId("jdecide01")


def spec(**fields: Any) -> JobSpec:
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "d",
        "command": ["run"],
    }
    document.update(fields)
    return load_spec_document(document)


def job(state: JobState = S.QUEUED, **fields: Any) -> Job:
    values: dict[str, Any] = {
        "job_id": JOB_ID,
        "name": "d",
        "project": "p",
        "workload_class": "batch",
        "backend": "fake",
        "spec": {},
        "state": state,
        "version": 4,
        "created_at": 0.0,
        "updated_at": 0.0,
        "attempt_count": 1,
    }
    values.update(fields)
    return Job(**values)


def attempt(state: AttemptState = A.RUNNING, **fields: Any) -> Attempt:
    values: dict[str, Any] = {
        "job_id": JOB_ID,
        "number": 1,
        "token": "tok",
        "backend": "fake",
        "state": state,
        "created_at": 0.0,
        "native_id": "n1",
    }
    values.update(fields)
    return Attempt(**values)


def view(
    state: JobState = S.QUEUED,
    *,
    the_spec: JobSpec | None = None,
    the_attempt: Attempt | None = None,
    seen: Observation | None = None,
    history: tuple[FailureClass | None, ...] = (),
    unknown_since: float | None = None,
    children: Mapping[JobState, int] | None = None,
    **job_fields: Any,
) -> JobView:
    return JobView(
        job=job(state, **job_fields),
        spec=the_spec or spec(),
        attempt=the_attempt,
        history=history,
        observation=seen,
        unknown_since=unknown_since,
        children=children,
    )


def transitions(actions: list[Action]) -> list[JobState]:
    return [a.target for a in actions if isinstance(a, Transition)]


def only(actions: list[Action], kind: type[Any]) -> Any:
    [found] = [a for a in actions if isinstance(a, kind)]
    return found


def finished(phase: Phase = Phase.FAILED, **fields: Any) -> Observation:
    fields.setdefault("started_at", NOW - 100)
    fields.setdefault("ended_at", NOW - 1)
    fields.setdefault("nodes", ("n1",))
    return Observation(phase=phase, **fields)


# -- before an attempt runs ----------------------------------------------------------------------


def test_accepted_is_queued_and_submitted() -> None:
    assert decide(view(S.ACCEPTED), POLICY, NOW) == [
        Transition(S.QUEUED, "waiting to start"),
        Submit(),
    ]


@pytest.mark.parametrize(
    ("next_attempt_at", "expected"),
    [
        (NOW + 1, []),
        (NOW, [Transition(S.QUEUED, "retrying"), Submit()]),
        (NOW - 1, [Transition(S.QUEUED, "retrying"), Submit()]),
        (None, [Transition(S.QUEUED, "retrying"), Submit()]),
    ],
)
def test_retry_wait_waits_until_due(next_attempt_at: float | None, expected: list[Action]) -> None:
    the_view = view(S.RETRY_WAIT, next_attempt_at=next_attempt_at)
    assert decide(the_view, POLICY, NOW) == expected


@pytest.mark.parametrize("state", [S.HELD, S.STAGING_IN, S.STAGING_OUT])
def test_states_owned_by_other_components_are_left_alone(state: JobState) -> None:
    running = attempt(A.RUNNING)
    assert decide(view(state, the_attempt=running, seen=finished()), POLICY, NOW) == []


@pytest.mark.parametrize(
    "the_attempt", [None, attempt(A.PREPARED, native_id=None), attempt(A.FAILED)]
)
def test_queued_without_a_live_attempt_submits(the_attempt: Attempt | None) -> None:
    assert decide(view(S.QUEUED, the_attempt=the_attempt), POLICY, NOW) == [Submit()]


@pytest.mark.parametrize("state", [S.QUEUED, S.RUNNING])
def test_no_observation_means_no_action(state: JobState) -> None:
    assert decide(view(state, the_attempt=attempt(A.SUBMITTED)), POLICY, NOW) == []


@pytest.mark.parametrize("state", [S.SUCCEEDED, S.FAILED, S.CANCELLED])
def test_terminal_jobs_get_no_actions(state: JobState) -> None:
    the_view = view(state, the_attempt=attempt(A.RUNNING), seen=finished(), cancel_requested=True)
    assert decide(the_view, POLICY, NOW) == []


# -- pending and running -----------------------------------------------------------------------


def test_pending_reason_becomes_a_note_once() -> None:
    pending = Observation(Phase.PENDING, reason="waiting for 1 CPU(s)")
    submitted = attempt(A.SUBMITTED)
    assert decide(view(S.QUEUED, the_attempt=submitted, seen=pending), POLICY, NOW) == [
        Note("waiting for 1 CPU(s)")
    ]
    same = view(S.QUEUED, the_attempt=submitted, seen=pending, reason="waiting for 1 CPU(s)")
    assert decide(same, POLICY, NOW) == []
    silent = Observation(Phase.PENDING)
    assert decide(view(S.QUEUED, the_attempt=submitted, seen=silent), POLICY, NOW) == []


@pytest.mark.parametrize("state", [S.RUNNING, S.LOST])
def test_a_requeue_the_backend_explains_ends_the_attempt(state: JobState) -> None:
    """The scheduler requeued the job itself: that run is a failed attempt, and a new
    attempt follows the same native job (no second submission)."""
    seen = Observation(Phase.PENDING, failure_class=FailureClass.PREEMPTED)
    the_view = view(state, the_attempt=attempt(A.RUNNING), seen=seen)
    actions = decide(the_view, POLICY, NOW)
    assert Submit() not in actions
    assert actions[-1] == Continue()
    record = only(actions, RecordAttempt)
    assert (record.fields["state"], record.fields["failure_class"]) == (
        A.FAILED,
        FailureClass.PREEMPTED,
    )
    assert only(actions, Transition) == Transition(
        S.QUEUED, "requeued by the scheduler", {"failure_class": FailureClass.PREEMPTED}
    )


@pytest.mark.parametrize("state", [S.RUNNING, S.LOST])
def test_pending_again_without_a_reason_keeps_the_attempt(state: JobState) -> None:
    """A restarted slurmctld may recover a running job as pending: no run was lost."""
    the_view = view(state, the_attempt=attempt(A.RUNNING), seen=Observation(Phase.PENDING))
    assert decide(the_view, POLICY, NOW) == [Transition(S.QUEUED, "requeued by the scheduler")]


def test_a_requeue_keeps_the_class_and_reason_the_backend_gives() -> None:
    seen = Observation(
        Phase.PENDING,
        reason="node n3 failed; Slurm requeued it",
        failure_class=FailureClass.NODE_FAILURE,
    )
    actions = decide(view(S.RUNNING, the_attempt=attempt(A.RUNNING), seen=seen), POLICY, NOW)
    record = only(actions, RecordAttempt)
    assert record.fields["failure_class"] is FailureClass.NODE_FAILURE
    assert record.fields["reason"] == "node n3 failed; Slurm requeued it"


def test_first_running_observation_records_the_start() -> None:
    seen = Observation(Phase.RUNNING, nodes=("n1", "n2"), started_at=NOW - 5)
    actions = decide(view(S.QUEUED, the_attempt=attempt(A.SUBMITTED), seen=seen), POLICY, NOW)
    record = only(actions, RecordAttempt)
    assert record.fields["state"] is A.RUNNING
    assert record.fields["started_at"] == NOW - 5
    assert tuple(record.fields["nodes"]) == ("n1", "n2")
    assert only(actions, Transition) == Transition(S.RUNNING, "running on n1, n2")
    assert actions.index(record) < actions.index(only(actions, Transition))


def test_steady_running_needs_nothing() -> None:
    seen = Observation(Phase.RUNNING, nodes=("n1",), started_at=NOW - 5, rss_mb=10)
    the_view = view(
        S.RUNNING,
        the_spec=spec(resources={"walltime": "1h", "mem": "1G"}),
        the_attempt=attempt(A.RUNNING, started_at=NOW - 5),
        seen=seen,
    )
    assert decide(the_view, POLICY, NOW) == []


@pytest.mark.parametrize(("elapsed", "killed"), [(59.0, False), (60.0, False), (60.5, True)])
def test_walltime(elapsed: float, killed: bool) -> None:
    seen = Observation(Phase.RUNNING, nodes=("n1",), started_at=NOW - elapsed)
    the_view = view(
        S.RUNNING,
        the_spec=spec(resources={"walltime": "1m"}),
        the_attempt=attempt(A.RUNNING, started_at=NOW - elapsed),
        seen=seen,
    )
    actions = decide(the_view, POLICY, NOW)
    if killed:
        assert actions == [Kill(FailureClass.TIMEOUT, "ran past its walltime of 1m")]
    else:
        assert actions == []


def test_walltime_counts_from_the_attempt_start_when_the_backend_has_none() -> None:
    seen = Observation(Phase.RUNNING, nodes=("n1",))
    the_view = view(
        S.RUNNING,
        the_spec=spec(resources={"walltime": "1m"}),
        the_attempt=attempt(A.RUNNING, started_at=NOW - 61),
        seen=seen,
    )
    assert decide(the_view, POLICY, NOW) == [
        Kill(FailureClass.TIMEOUT, "ran past its walltime of 1m")
    ]


@pytest.mark.parametrize(
    ("rss_mb", "killed"), [(None, False), (511.0, False), (512.0, False), (513.0, True)]
)
def test_memory(rss_mb: float | None, killed: bool) -> None:
    seen = Observation(Phase.RUNNING, nodes=("n1",), started_at=NOW - 1, rss_mb=rss_mb)
    the_view = view(
        S.RUNNING,
        the_spec=spec(resources={"mem": "512M"}),
        the_attempt=attempt(A.RUNNING),
        seen=seen,
    )
    actions = decide(the_view, POLICY, NOW)
    if killed:
        kill = only(actions, Kill)
        assert kill.failure_class is FailureClass.OOM
        assert "513 MB" in kill.reason
        assert "512 MB" in kill.reason
    else:
        assert actions == []


def test_walltime_wins_over_memory() -> None:
    seen = Observation(Phase.RUNNING, nodes=("n1",), started_at=NOW - 120, rss_mb=4096)
    the_view = view(
        S.RUNNING,
        the_spec=spec(resources={"mem": "1G", "walltime": "1m"}),
        the_attempt=attempt(A.RUNNING),
        seen=seen,
    )
    assert only(decide(the_view, POLICY, NOW), Kill).failure_class is FailureClass.TIMEOUT


def test_a_kill_is_ordered_once() -> None:
    seen = Observation(Phase.RUNNING, nodes=("n1",), started_at=NOW - 120, rss_mb=4096)
    killing = attempt(A.RUNNING, details={"kill": {"failure_class": "timeout", "at": NOW - 1}})
    the_view = view(
        S.RUNNING,
        the_spec=spec(resources={"mem": "1G", "walltime": "1m"}),
        the_attempt=killing,
        seen=seen,
    )
    assert decide(the_view, POLICY, NOW) == []


# -- finished attempts ---------------------------------------------------------------------------


def test_success_seen_from_queued_passes_through_running() -> None:
    seen = finished(Phase.SUCCEEDED, exit_code=0)
    actions = decide(view(S.QUEUED, the_attempt=attempt(A.SUBMITTED), seen=seen), POLICY, NOW)
    assert [type(a) for a in actions] == [RecordAttempt, Transition, Transition]
    record = only(actions, RecordAttempt)
    assert record.fields["state"] is A.SUCCEEDED
    assert record.fields["exit_code"] == 0
    assert record.fields["failure_class"] is None
    assert record.fields["ended_at"] == NOW - 1
    assert record.fields["started_at"] == NOW - 100
    assert transitions(actions) == [S.RUNNING, S.SUCCEEDED]
    assert actions[-1] == Transition(
        S.SUCCEEDED, "exited with code 0", {"exit_code": 0, "failure_class": None}
    )


def test_success_seen_from_queued_without_a_start_time() -> None:
    """Whatever the backend omits, decide() must only ask for moves the table allows.

    From queued, succeeded is not allowed; today decide() asks for it when the observation
    has no ``started_at``, the store refuses, and the next cycle runs the job again.
    """
    seen = Observation(Phase.SUCCEEDED, exit_code=0)
    actions = decide(view(S.QUEUED, the_attempt=attempt(A.SUBMITTED), seen=seen), POLICY, NOW)
    assert_allowed(S.QUEUED, actions)
    assert transitions(actions)[-1] is S.SUCCEEDED


def test_success_from_running() -> None:
    seen = finished(Phase.SUCCEEDED, exit_code=0)
    actions = decide(view(S.RUNNING, the_attempt=attempt(A.RUNNING), seen=seen), POLICY, NOW)
    assert transitions(actions) == [S.SUCCEEDED]


def test_app_error_is_not_retried_by_default() -> None:
    seen = finished(
        failure_class=FailureClass.APP_ERROR, exit_code=3, reason="the job exited with code 3"
    )
    actions = decide(view(S.RUNNING, the_attempt=attempt(A.RUNNING), seen=seen), POLICY, NOW)
    record = only(actions, RecordAttempt)
    assert (record.fields["state"], record.fields["failure_class"], record.fields["exit_code"]) == (
        A.FAILED,
        FailureClass.APP_ERROR,
        3,
    )
    final = only(actions, Transition)
    assert final.target is S.FAILED
    assert final.reason.startswith("the job exited with code 3; app_error is not retried")
    assert "add app_error to retry.retry_on" in final.reason
    assert final.fields == {"failure_class": FailureClass.APP_ERROR, "exit_code": 3}


def test_a_failure_without_a_class_is_an_app_error() -> None:
    seen = finished(exit_code=1)
    actions = decide(view(S.RUNNING, the_attempt=attempt(A.RUNNING), seen=seen), POLICY, NOW)
    assert only(actions, Transition).fields["failure_class"] is FailureClass.APP_ERROR


def test_app_error_is_retried_when_the_spec_says_so() -> None:
    the_spec = spec(retry={"retry_on": ["app_error"]})
    seen = finished(failure_class=FailureClass.APP_ERROR, exit_code=1)
    actions = decide(
        view(S.RUNNING, the_spec=the_spec, the_attempt=attempt(A.RUNNING), seen=seen), POLICY, NOW
    )
    assert transitions(actions) == [S.RETRY_WAIT]


def test_node_failure_waits_with_backoff() -> None:
    the_spec = spec(retry={"backoff": {"initial": "30s", "jitter": 0}})
    seen = finished(failure_class=FailureClass.NODE_FAILURE, reason="node n1 died")
    actions = decide(
        view(S.RUNNING, the_spec=the_spec, the_attempt=attempt(A.RUNNING), seen=seen), POLICY, NOW
    )
    wait = only(actions, Transition)
    assert wait.target is S.RETRY_WAIT
    assert wait.fields["next_attempt_at"] == NOW + 30
    assert wait.fields["failure_class"] is FailureClass.NODE_FAILURE
    assert wait.reason == "node n1 died; retrying after node_failure in 30s"


def test_backoff_grows_with_the_attempt_number() -> None:
    the_spec = spec(retry={"max_attempts": 5})
    seen = finished(failure_class=FailureClass.PREEMPTED)
    history = (FailureClass.PREEMPTED, FailureClass.PREEMPTED)
    actions = decide(
        view(
            S.RUNNING,
            the_spec=the_spec,
            the_attempt=attempt(A.RUNNING, number=3),
            seen=seen,
            history=history,
        ),
        POLICY,
        NOW,
    )
    wait = only(actions, Transition)
    assert wait.fields["next_attempt_at"] == NOW + backoff_s(the_spec, JOB_ID, 3)


def test_max_attempts_exhausted() -> None:
    seen = finished(failure_class=FailureClass.NODE_FAILURE)
    history = (FailureClass.NODE_FAILURE, FailureClass.NODE_FAILURE)
    actions = decide(
        view(S.RUNNING, the_attempt=attempt(A.RUNNING, number=3), seen=seen, history=history),
        POLICY,
        NOW,
    )
    final = only(actions, Transition)
    assert final.target is S.FAILED
    assert "all 3 attempts used" in final.reason


@pytest.mark.parametrize(
    ("history", "retried"),
    [
        ((), True),
        ((FailureClass.NODE_FAILURE,), False),
        ((FailureClass.PREEMPTED, FailureClass.LOST), True),
    ],
)
def test_per_class_limit(history: tuple[FailureClass, ...], retried: bool) -> None:
    the_spec = spec(retry={"max_attempts": 10, "per_class_max": {"node_failure": 2}})
    seen = finished(failure_class=FailureClass.NODE_FAILURE)
    actions = decide(
        view(
            S.RUNNING, the_spec=the_spec, the_attempt=attempt(A.RUNNING), seen=seen, history=history
        ),
        POLICY,
        NOW,
    )
    final = only(actions, Transition)
    if retried:
        assert final.target is S.RETRY_WAIT
    else:
        assert final.target is S.FAILED
        assert "node_failure retry limit 2 reached" in final.reason


def test_timeout_with_a_checkpoint_policy_is_retried() -> None:
    seen = finished(failure_class=FailureClass.TIMEOUT)
    the_view = view(
        S.RUNNING,
        the_spec=spec(checkpoint={"interval": "10m"}),
        the_attempt=attempt(A.RUNNING),
        seen=seen,
    )
    assert transitions(decide(the_view, POLICY, NOW)) == [S.RETRY_WAIT]


def test_timeout_without_a_checkpoint_policy_fails_and_says_why() -> None:
    seen = finished(
        failure_class=FailureClass.TIMEOUT, reason="the job ran past its walltime and was stopped"
    )
    actions = decide(view(S.RUNNING, the_attempt=attempt(A.RUNNING), seen=seen), POLICY, NOW)
    final = only(actions, Transition)
    assert final.target is S.FAILED
    assert "timeout is not retried" in final.reason
    assert "checkpoint" in final.reason
    assert final.fields["failure_class"] is FailureClass.TIMEOUT


def test_oom_is_not_retried_by_default() -> None:
    seen = finished(failure_class=FailureClass.OOM)
    actions = decide(view(S.RUNNING, the_attempt=attempt(A.RUNNING), seen=seen), POLICY, NOW)
    assert transitions(actions) == [S.FAILED]


def test_cancelled_outside_hpcbridge() -> None:
    seen = finished(failure_class=FailureClass.CANCELLED)
    actions = decide(view(S.RUNNING, the_attempt=attempt(A.RUNNING), seen=seen), POLICY, NOW)
    assert transitions(actions) == [S.CANCELLED]


# -- unknown and lost ----------------------------------------------------------------------------


@pytest.mark.parametrize("unknown_since", [None, NOW, NOW - 59.9, NOW - 60 + 1e-6])
def test_unknown_within_the_grace_period_is_not_news(unknown_since: float | None) -> None:
    the_view = view(
        S.RUNNING,
        the_attempt=attempt(A.RUNNING),
        seen=Observation(Phase.UNKNOWN),
        unknown_since=unknown_since,
    )
    assert decide(the_view, POLICY, NOW) == []


@pytest.mark.parametrize("state", [S.QUEUED, S.RUNNING])
def test_unknown_past_the_grace_period_is_lost_then_retried(state: JobState) -> None:
    the_view = view(
        state,
        the_attempt=attempt(A.RUNNING),
        seen=Observation(Phase.UNKNOWN),
        unknown_since=NOW - 61,
    )
    actions = decide(the_view, POLICY, NOW)
    record = only(actions, RecordAttempt)
    assert (record.fields["state"], record.fields["failure_class"]) == (A.FAILED, FailureClass.LOST)
    assert "lost, not assumed finished" in record.fields["reason"]
    assert transitions(actions) == [S.LOST, S.RETRY_WAIT]
    assert_allowed(state, actions)


def test_reasons_carry_readable_durations() -> None:
    """Reasons are read by people: 61.237 s reads 1m1s, not a raw float."""
    the_view = view(
        S.RUNNING,
        the_attempt=attempt(A.RUNNING),
        seen=Observation(Phase.UNKNOWN),
        unknown_since=NOW - 61.237,
    )
    reason = only(decide(the_view, POLICY, NOW), RecordAttempt).fields["reason"]
    assert "has not known the attempt for 1m1s;" in reason


def test_unknown_when_already_lost_does_not_repeat_the_move() -> None:
    the_view = view(
        S.LOST,
        the_attempt=attempt(A.RUNNING),
        seen=Observation(Phase.UNKNOWN),
        unknown_since=NOW - 61,
    )
    assert transitions(decide(the_view, POLICY, NOW)) == [S.RETRY_WAIT]


def test_lost_too_often_fails() -> None:
    the_view = view(
        S.RUNNING,
        the_attempt=attempt(A.RUNNING, number=3),
        seen=Observation(Phase.UNKNOWN),
        unknown_since=NOW - 61,
        history=(FailureClass.LOST, FailureClass.LOST),
    )
    actions = decide(the_view, POLICY, NOW)
    assert transitions(actions) == [S.LOST, S.FAILED]
    final = actions[-1]
    assert isinstance(final, Transition)
    assert "all 3 attempts used" in (final.reason or "")


def test_a_lost_job_whose_attempt_is_already_closed_is_retried() -> None:
    the_view = view(S.LOST, the_attempt=None, history=(FailureClass.LOST,))
    assert transitions(decide(the_view, POLICY, NOW)) == [S.RETRY_WAIT]


def test_a_lost_attempt_that_reappears_running_resumes() -> None:
    seen = Observation(Phase.RUNNING, nodes=("n1",), started_at=NOW - 5)
    actions = decide(view(S.LOST, the_attempt=attempt(A.RUNNING), seen=seen), POLICY, NOW)
    assert transitions(actions) == [S.RUNNING]


# -- cancellation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt_state", [A.SUBMITTED, A.RUNNING])
@pytest.mark.parametrize("seen", [None, Observation(Phase.RUNNING), Observation(Phase.PENDING)])
def test_cancel_kills_a_live_attempt(attempt_state: AttemptState, seen: Observation | None) -> None:
    the_view = view(S.RUNNING, the_attempt=attempt(attempt_state), seen=seen, cancel_requested=True)
    actions = decide(the_view, POLICY, NOW)
    assert actions[-1] == Kill(FailureClass.CANCELLED, "cancelled")
    started_now = attempt_state is A.SUBMITTED and seen is not None and seen.phase is Phase.RUNNING
    if started_now:  # it started before the kill reached it: the record says so first
        assert only(actions, RecordAttempt).fields["state"] is A.RUNNING
    else:
        assert actions == [Kill(FailureClass.CANCELLED, "cancelled")]


def test_a_cancelled_queued_job_that_ran_is_recorded_as_started_then_cancelled() -> None:
    """The kill reached a queued attempt after the backend had started it."""
    seen = Observation(
        Phase.FAILED,
        exit_code=143,
        signal=15,
        failure_class=FailureClass.CANCELLED,
        started_at=NOW - 5,
        ended_at=NOW - 1,
        nodes=("n1",),
    )
    the_view = view(S.QUEUED, the_attempt=attempt(A.SUBMITTED), seen=seen, cancel_requested=True)
    actions = decide(the_view, POLICY, NOW)
    record = only(actions, RecordAttempt)
    assert record.fields["started_at"] == NOW - 5
    assert record.fields["nodes"] == ("n1",)
    assert record.fields["reason"] == "cancelled"
    moves = [a.target for a in actions if isinstance(a, Transition)]
    assert moves == [S.RUNNING, S.CANCELLED]


@pytest.mark.parametrize("phase", [Phase.SUCCEEDED, Phase.FAILED])
def test_a_job_that_ran_to_its_end_before_the_cancel_reached_it_succeeded(phase: Phase) -> None:
    failure = FailureClass.CANCELLED if phase is Phase.FAILED else None
    seen = Observation(phase, exit_code=0, failure_class=failure, started_at=NOW - 5)
    the_view = view(S.RUNNING, the_attempt=attempt(A.RUNNING), seen=seen, cancel_requested=True)
    actions = decide(the_view, POLICY, NOW)
    assert only(actions, RecordAttempt).fields["state"] is A.SUCCEEDED
    assert [a.target for a in actions if isinstance(a, Transition)] == [S.SUCCEEDED]


def test_a_cancelled_queued_job_that_never_ran_goes_straight_to_cancelled() -> None:
    seen = Observation(Phase.FAILED, ended_at=NOW - 1)
    the_view = view(S.QUEUED, the_attempt=attempt(A.SUBMITTED), seen=seen, cancel_requested=True)
    actions = decide(the_view, POLICY, NOW)
    assert only(actions, RecordAttempt).fields["reason"] == "cancelled before it started"
    assert [a.target for a in actions if isinstance(a, Transition)] == [S.CANCELLED]


def test_a_job_cancelled_before_it_started_is_cancelled_despite_exit_code_0() -> None:
    """Slurm reads ``CANCELLED 0:0`` for a job cancelled while it waited: no start, no
    success."""
    seen = Observation(
        Phase.FAILED, exit_code=0, failure_class=FailureClass.CANCELLED, ended_at=NOW - 1
    )
    the_view = view(S.QUEUED, the_attempt=attempt(A.SUBMITTED), seen=seen, cancel_requested=True)
    actions = decide(the_view, POLICY, NOW)
    assert only(actions, RecordAttempt).fields["state"] is A.FAILED
    assert [a.target for a in actions if isinstance(a, Transition)] == [S.CANCELLED]


def test_cancel_kills_only_once() -> None:
    killing = attempt(A.RUNNING, details={"kill": {"failure_class": "cancelled", "at": NOW}})
    the_view = view(
        S.RUNNING, the_attempt=killing, seen=Observation(Phase.RUNNING), cancel_requested=True
    )
    assert decide(the_view, POLICY, NOW) == []


@pytest.mark.parametrize("phase", [Phase.SUCCEEDED, Phase.FAILED, Phase.UNKNOWN])
def test_cancel_completes_once_the_attempt_is_gone(phase: Phase) -> None:
    seen = Observation(phase, exit_code=143, ended_at=NOW - 1)
    the_view = view(S.RUNNING, the_attempt=attempt(A.RUNNING), seen=seen, cancel_requested=True)
    actions = decide(the_view, POLICY, NOW)
    record = only(actions, RecordAttempt)
    assert (record.fields["state"], record.fields["failure_class"]) == (
        A.FAILED,
        FailureClass.CANCELLED,
    )
    assert actions[-1] == Transition(
        S.CANCELLED, "cancelled", {"failure_class": FailureClass.CANCELLED}
    )


@pytest.mark.parametrize("state", [S.ACCEPTED, S.QUEUED, S.RETRY_WAIT, S.HELD, S.LOST])
def test_cancel_without_an_attempt(state: JobState) -> None:
    assert decide(view(state, cancel_requested=True), POLICY, NOW) == [
        Transition(S.CANCELLED, "cancelled", {"failure_class": FailureClass.CANCELLED})
    ]


def test_cancel_closes_a_prepared_attempt() -> None:
    the_view = view(
        S.QUEUED, the_attempt=attempt(A.PREPARED, native_id=None), cancel_requested=True
    )
    actions = decide(the_view, POLICY, NOW)
    record = only(actions, RecordAttempt)
    assert record.fields["reason"] == "cancelled before it started"
    assert transitions(actions) == [S.CANCELLED]


# -- array parents -------------------------------------------------------------------------------


def parent_view(state: JobState, children: Mapping[JobState, int], **fields: Any) -> JobView:
    return view(state, children=children, task_count=sum(children.values()), **fields)


def test_parent_waits_for_its_tasks_with_a_summary() -> None:
    actions = decide(parent_view(S.ACCEPTED, {S.QUEUED: 3}), POLICY, NOW)
    assert actions == [Note("0/3 tasks done, 0 running, 3 queued")]
    same = parent_view(S.ACCEPTED, {S.QUEUED: 3}, reason="0/3 tasks done, 0 running, 3 queued")
    assert decide(same, POLICY, NOW) == []


def test_parent_runs_when_a_task_starts() -> None:
    actions = decide(parent_view(S.ACCEPTED, {S.RUNNING: 1, S.QUEUED: 2}), POLICY, NOW)
    assert actions == [
        Transition(S.RUNNING, "tasks started"),
        Note("0/3 tasks done, 1 running, 2 queued"),
    ]


@pytest.mark.parametrize(
    ("children", "target", "reason"),
    [
        ({S.SUCCEEDED: 3}, S.SUCCEEDED, "all 3 tasks succeeded"),
        ({S.SUCCEEDED: 2, S.FAILED: 1}, S.FAILED, "1 of 3 tasks failed"),
        ({S.SUCCEEDED: 2, S.CANCELLED: 1}, S.CANCELLED, "1 of 3 tasks cancelled"),
        ({S.FAILED: 1, S.CANCELLED: 2}, S.FAILED, "1 of 3 tasks failed"),
    ],
)
def test_parent_final_state(
    children: Mapping[JobState, int], target: JobState, reason: str
) -> None:
    assert decide(parent_view(S.RUNNING, children), POLICY, NOW) == [Transition(target, reason)]
    from_accepted = decide(parent_view(S.ACCEPTED, children), POLICY, NOW)
    assert from_accepted == [Transition(S.RUNNING, "tasks started"), Transition(target, reason)]


def test_cancelling_a_parent_cancels_its_tasks() -> None:
    the_view = parent_view(S.RUNNING, {S.RUNNING: 2, S.SUCCEEDED: 1}, cancel_requested=True)
    assert decide(the_view, POLICY, NOW) == [CancelTasks()]
    done = parent_view(S.RUNNING, {S.CANCELLED: 2, S.SUCCEEDED: 1}, cancel_requested=True)
    assert transitions(decide(done, POLICY, NOW)) == [S.CANCELLED]


# -- every decision follows the table ------------------------------------------------------------


def assert_allowed(state: JobState, actions: list[Action]) -> None:
    for target in transitions(actions):
        assert can_transition(state, target), f"{state} -> {target} in {actions}"
        state = target


_observations = st.builds(
    Observation,
    phase=st.sampled_from(list(Phase)),
    failure_class=st.none() | st.sampled_from(list(FailureClass)),
    exit_code=st.none() | st.integers(0, 255),
    started_at=st.none() | st.floats(NOW - 1000, NOW),
    ended_at=st.none() | st.floats(NOW - 1000, NOW),
    rss_mb=st.none() | st.floats(0, 10_000),
    nodes=st.lists(st.sampled_from(["n1", "n2"]), max_size=2).map(tuple),
    reason=st.none() | st.sampled_from(["r1", "r2"]),
)
_specs = st.sampled_from(
    [
        spec(),
        spec(resources={"walltime": "5m", "mem": "1G"}),
        spec(checkpoint={"interval": "auto"}, retry={"max_attempts": 2}),
        spec(retry={"retry_on": ["app_error", "oom"], "per_class_max": {"oom": 1}}),
    ]
)


@given(
    state=st.sampled_from([s for s in JobState if not s.terminal]),
    the_spec=_specs,
    attempt_state=st.none() | st.sampled_from(list(AttemptState)),
    seen=st.none() | _observations,
    history=st.lists(st.none() | st.sampled_from(list(FailureClass)), max_size=3).map(tuple),
    unknown_since=st.none() | st.floats(NOW - 200, NOW),
    cancel_requested=st.booleans(),
    killing=st.booleans(),
    reason=st.none() | st.just("r1"),
)
@settings(max_examples=400, deadline=None, derandomize=True, database=None)
def test_decisions_only_ask_for_allowed_moves(
    state: JobState,
    the_spec: JobSpec,
    attempt_state: AttemptState | None,
    seen: Observation | None,
    history: tuple[FailureClass | None, ...],
    unknown_since: float | None,
    cancel_requested: bool,
    killing: bool,
    reason: str | None,
) -> None:
    details = {"kill": {"failure_class": "timeout", "at": NOW}} if killing else {}
    the_attempt = (
        None
        if attempt_state is None
        else attempt(attempt_state, started_at=NOW - 500, details=details)
    )
    the_view = view(
        state,
        the_spec=the_spec,
        the_attempt=the_attempt,
        seen=seen,
        history=history,
        unknown_since=unknown_since,
        cancel_requested=cancel_requested,
        reason=reason,
    )
    actions = decide(the_view, POLICY, NOW)
    assert_allowed(state, actions)
    assert sum(isinstance(a, Kill) for a in actions) <= 1
    assert sum(isinstance(a, RecordAttempt) for a in actions) <= 1
    if any(isinstance(a, (Kill, RecordAttempt)) for a in actions):
        assert the_attempt is not None
    assert decide(the_view, POLICY, NOW) == actions  # pure: same input, same answer


@given(
    state=st.sampled_from([S.ACCEPTED, S.RUNNING]),
    counts=st.dictionaries(st.sampled_from(list(JobState)), st.integers(1, 5), min_size=1),
    cancel_requested=st.booleans(),
)
def test_parent_decisions_only_ask_for_allowed_moves(
    state: JobState, counts: dict[JobState, int], cancel_requested: bool
) -> None:
    actions = decide(parent_view(state, counts, cancel_requested=cancel_requested), POLICY, NOW)
    assert_allowed(state, actions)
    final = transitions(actions)
    done = sum(n for s, n in counts.items() if s.terminal)
    if done == sum(counts.values()):
        assert final and final[-1].terminal
    else:
        assert not any(s.terminal for s in final)


# -- a job that saved and asked to be requeued (checkpoint SDK, exit code 75) ---------------------


@pytest.mark.parametrize(
    ("walltime", "expected"),
    [
        (None, FailureClass.PREEMPTED),  # no time limit: the scheduler took the nodes back
        ("1h", FailureClass.PREEMPTED),  # far from its limit
        ("100s", FailureClass.TIMEOUT),  # it ran into its limit's grace window
    ],
)
def test_exit_code_75_with_a_checkpoint_policy_is_a_requeue_request(
    walltime: str | None, expected: FailureClass
) -> None:
    resources = {"walltime": walltime} if walltime else {}
    the_spec = spec(checkpoint={"grace": "10s"}, resources=resources)
    seen = finished(exit_code=75)
    the_view = view(S.RUNNING, the_spec=the_spec, the_attempt=attempt(), seen=seen)
    record = only(decide(the_view, POLICY, NOW), RecordAttempt)
    assert record.fields["failure_class"] is expected
    assert "asked to be requeued" in record.fields["reason"]


def test_exit_code_75_without_a_checkpoint_policy_is_an_app_error() -> None:
    the_view = view(S.RUNNING, the_attempt=attempt(), seen=finished(exit_code=75))
    record = only(decide(the_view, POLICY, NOW), RecordAttempt)
    assert record.fields["failure_class"] is FailureClass.APP_ERROR
