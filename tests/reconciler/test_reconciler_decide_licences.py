"""``decide()`` with managed licence pools: free counts and health are inputs, not lookups."""

from __future__ import annotations

from typing import Any

from tests.reconciler.test_reconciler_decide import NOW, POLICY, job, spec

from hpcbridge.reconciler import JobView, LicenceNeed, Note, Submit, Transition, decide
from hpcbridge.states import FailureClass, JobState, can_transition

S = JobState


def need(count: int = 3, free: int = 2, **fields: Any) -> LicenceNeed:
    values: dict[str, Any] = {
        "pool": "fluent",
        "count": count,
        "free": free,
        "total": 4,
        "capacity": 4,
        "down_since": None,
        "grace_s": 600.0,
    }
    values.update(fields)
    return LicenceNeed(**values)


def view(state: JobState, *needs: LicenceNeed, **fields: Any) -> JobView:
    return JobView(
        job=job(state, **fields), spec=spec(licences={"fluent": 3}), licences=tuple(needs)
    )


def test_short_of_licences_the_job_waits_held_with_the_numbers() -> None:
    actions = decide(view(S.ACCEPTED, need()), POLICY, NOW)
    assert actions == [
        Transition(
            S.HELD,
            "waiting for 3 licences of fluent (2 free)",
            data={"licences": {"fluent": {"requested": 3, "free": 2, "total": 4, "capacity": 4}}},
        )
    ]


def test_enough_free_queues_and_submits() -> None:
    actions = decide(view(S.ACCEPTED, need(free=3)), POLICY, NOW)
    assert actions == [Transition(S.QUEUED, "waiting to start"), Submit()]


def test_a_held_job_is_released_when_its_licences_are_free() -> None:
    held = view(S.HELD, need(free=4), reason="waiting for 3 licences of fluent (2 free)")
    first, second = decide(held, POLICY, NOW)
    assert isinstance(first, Transition) and first.target is S.QUEUED
    assert first.reason == "licences free: 3 of fluent (4 free)"
    assert first.data["licences"]["fluent"]["free"] == 4
    assert second == Submit()


def test_a_held_job_says_when_fewer_are_free_and_is_quiet_otherwise() -> None:
    reason = "waiting for 3 licences of fluent (2 free)"
    assert decide(view(S.HELD, need(), reason=reason), POLICY, NOW) == []
    changed = decide(view(S.HELD, need(free=1), reason=reason), POLICY, NOW)
    assert changed == [Note("waiting for 3 licences of fluent (1 free)")]


def test_one_licence_is_singular() -> None:
    (held,) = decide(view(S.ACCEPTED, need(count=1, free=0)), POLICY, NOW)
    assert isinstance(held, Transition)
    assert held.reason == "waiting for 1 licence of fluent (0 free)"


def test_no_healthy_server_holds_within_the_grace_then_fails() -> None:
    down = need(free=0, capacity=0, down_since=NOW - 599)
    (held,) = decide(view(S.ACCEPTED, down), POLICY, NOW)
    assert isinstance(held, Transition) and held.target is S.HELD
    assert held.reason is not None and "no licence server of fluent" in held.reason
    (failed,) = decide(view(S.HELD, down), POLICY, NOW + 1)
    assert isinstance(failed, Transition) and failed.target is S.FAILED
    assert failed.fields["failure_class"] is FailureClass.LICENCE_UNAVAILABLE
    assert failed.reason == "no licence server of fluent has passed its health check for 10m"


def test_a_request_over_the_pool_total_fails_as_unavailable() -> None:
    (failed,) = decide(view(S.ACCEPTED, need(count=5, free=4)), POLICY, NOW)
    assert isinstance(failed, Transition) and failed.target is S.FAILED
    assert failed.fields["failure_class"] is FailureClass.LICENCE_UNAVAILABLE
    assert failed.reason == "asks for 5 licences of fluent, but the pool holds 4"


def test_a_due_retry_and_a_finished_stage_wait_for_licences_too() -> None:
    (retry,) = decide(view(S.RETRY_WAIT, need(), next_attempt_at=NOW - 1), POLICY, NOW)
    assert isinstance(retry, Transition) and retry.target is S.HELD


def test_other_holds_and_unmanaged_licences_are_left_alone() -> None:
    assert decide(view(S.HELD, reason="held by an operator"), POLICY, NOW) == []
    assert decide(view(S.ACCEPTED), POLICY, NOW)[0] == Transition(S.QUEUED, "waiting to start")


def test_every_licence_transition_is_in_the_state_table() -> None:
    cases = [
        (S.ACCEPTED, need()),
        (S.RETRY_WAIT, need()),
        (S.HELD, need(free=4)),
        (S.HELD, need(free=0, capacity=0, down_since=0.0)),
        (S.ACCEPTED, need(count=5)),
    ]
    for state, wanted in cases:
        for action in decide(view(state, wanted, next_attempt_at=0.0), POLICY, NOW):
            if isinstance(action, Transition):
                assert can_transition(state, action.target), (state, action.target)
