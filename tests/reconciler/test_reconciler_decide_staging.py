"""``decide()`` for jobs with data stages: queued only on verified inputs, ended after outputs."""

from __future__ import annotations

from tests.reconciler.test_reconciler_decide import NOW, attempt, job, spec

from hpcbridge.backends import Observation, Phase
from hpcbridge.reconciler import JobView, Policy, Submit, Transition, decide
from hpcbridge.reconciler._stage_outcome import StageOutcome
from hpcbridge.states import AttemptState, FailureClass, JobState

S = JobState
POLICY = Policy()
IN = [{"source": "/data/x", "dest": "x"}]
OUT = [{"source": "r", "dest": "/results/r"}]
ALWAYS = [{"source": "logs", "dest": "/results/logs", "when": "always"}]


def test_a_job_with_inputs_stages_them_before_it_is_queued() -> None:
    view = JobView(job=job(S.ACCEPTED), spec=spec(stage_in=IN))
    assert decide(view, POLICY, NOW) == [Transition(S.STAGING_IN, "staging inputs")]
    waiting = JobView(job=job(S.STAGING_IN), spec=spec(stage_in=IN))
    assert decide(waiting, POLICY, NOW) == []  # still copying: nothing is submitted


def test_verified_inputs_queue_the_job_and_a_failed_stage_fails_it() -> None:
    ok = StageOutcome(None, "1 files staged", {"files": 1})
    view = JobView(job=job(S.STAGING_IN), spec=spec(stage_in=IN), staged=ok)
    transition, submit = decide(view, POLICY, NOW)
    assert isinstance(transition, Transition) and transition.target is S.QUEUED
    assert transition.data == {"files": 1} and submit == Submit()
    bad = StageOutcome(FailureClass.CHECKSUM_MISMATCH, "checksum mismatch for /data/x")
    (failed,) = decide(
        JobView(job=job(S.STAGING_IN), spec=spec(stage_in=IN), staged=bad), POLICY, NOW
    )
    assert isinstance(failed, Transition) and failed.target is S.FAILED
    assert failed.fields["failure_class"] is FailureClass.CHECKSUM_MISMATCH


def test_a_retry_stages_inputs_again() -> None:
    view = JobView(job=job(S.RETRY_WAIT, next_attempt_at=NOW - 1), spec=spec(stage_in=IN))
    assert decide(view, POLICY, NOW) == [Transition(S.STAGING_IN, "retrying: staging inputs")]


def _finished(phase: Phase, exit_code: int, **spec_fields: object) -> list[object]:
    view = JobView(
        job=job(S.RUNNING),
        spec=spec(**spec_fields),
        attempt=attempt(AttemptState.RUNNING),
        observation=Observation(phase=phase, exit_code=exit_code, ended_at=NOW),
    )
    return list(decide(view, POLICY, NOW))


def test_success_stages_outputs_before_succeeding() -> None:
    targets = [
        a.target for a in _finished(Phase.SUCCEEDED, 0, stage_out=OUT) if isinstance(a, Transition)
    ]
    assert targets == [S.STAGING_OUT]
    done = StageOutcome(None, "1 files staged out")
    view = JobView(job=job(S.STAGING_OUT, exit_code=0), spec=spec(stage_out=OUT), staged=done)
    (succeeded,) = decide(view, POLICY, NOW)
    assert isinstance(succeeded, Transition) and succeeded.target is S.SUCCEEDED


def test_a_failure_stages_out_only_what_is_wanted_always() -> None:
    plain = [
        a.target for a in _finished(Phase.FAILED, 3, stage_out=OUT) if isinstance(a, Transition)
    ]
    assert plain == [S.FAILED]
    always = [a for a in _finished(Phase.FAILED, 3, stage_out=ALWAYS) if isinstance(a, Transition)]
    assert [a.target for a in always] == [S.STAGING_OUT]
    assert always[0].fields["failure_class"] is FailureClass.APP_ERROR
    # Once the logs are out, the run's own failure decides (app_error: not retried).
    staged = job(S.STAGING_OUT, failure_class=FailureClass.APP_ERROR, exit_code=3)
    view = JobView(
        job=staged,
        spec=spec(stage_out=ALWAYS),
        history=(FailureClass.APP_ERROR,),
        staged=StageOutcome(None, "2 files staged out"),
    )
    (failed,) = decide(view, POLICY, NOW)
    assert isinstance(failed, Transition) and failed.target is S.FAILED
    assert failed.fields["failure_class"] is FailureClass.APP_ERROR
