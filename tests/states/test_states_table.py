"""The state machine: properties of the transition table, and the store enforcing it."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcbridge.errors import InvalidTransitionError
from hpcbridge.states import (
    DEFAULT_RETRY_ON,
    INFRASTRUCTURE_FAILURES,
    TERMINAL_STATES,
    TRANSITIONS,
    AttemptState,
    FailureClass,
    JobState,
    can_transition,
)
from hpcbridge.store import JobId, MemoryStore, NewJob

S = JobState
NON_TERMINAL = [s for s in JobState if not s.terminal]


def reachable_from(start: JobState) -> set[JobState]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in TRANSITIONS[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def predecessors(target: JobState) -> set[JobState]:
    return {state for state, targets in TRANSITIONS.items() if target in targets}


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(JobState)


def test_terminal_states_are_exactly_those_without_exits() -> None:
    assert {S.SUCCEEDED, S.FAILED, S.CANCELLED} == TERMINAL_STATES
    assert {s for s, targets in TRANSITIONS.items() if not targets} == TERMINAL_STATES
    assert all(s.terminal == (s in TERMINAL_STATES) for s in JobState)


def test_no_self_loops() -> None:
    """A transition is a change; staying put is never an event."""
    assert all(state not in targets for state, targets in TRANSITIONS.items())


@pytest.mark.parametrize("state", NON_TERMINAL)
def test_every_live_state_can_fail_or_be_cancelled_directly(state: JobState) -> None:
    assert can_transition(state, S.CANCELLED)
    assert can_transition(state, S.FAILED)


@pytest.mark.parametrize("state", NON_TERMINAL)
def test_every_live_state_can_still_succeed(state: JobState) -> None:
    assert S.SUCCEEDED in reachable_from(state)


def test_every_state_is_reachable_from_accepted() -> None:
    assert reachable_from(S.ACCEPTED) == set(JobState)


def test_nothing_returns_to_accepted() -> None:
    assert predecessors(S.ACCEPTED) == set()


def test_success_only_after_the_job_ran() -> None:
    """Succeeded comes from running, staging out, or a lost attempt found finished."""
    assert predecessors(S.SUCCEEDED) == {S.RUNNING, S.STAGING_OUT, S.LOST}


def test_running_only_from_queued_lost_or_an_array_parent_accepted() -> None:
    assert predecessors(S.RUNNING) == {S.ACCEPTED, S.QUEUED, S.LOST}


def test_retry_wait_only_after_something_was_tried() -> None:
    assert predecessors(S.RETRY_WAIT) == {S.STAGING_IN, S.QUEUED, S.RUNNING, S.STAGING_OUT, S.LOST}


def test_lost_only_from_states_where_a_scheduler_holds_the_job() -> None:
    assert predecessors(S.LOST) == {S.QUEUED, S.RUNNING}


def test_staging_out_only_after_running() -> None:
    assert predecessors(S.STAGING_OUT) == {S.RUNNING}


def test_failure_class_sets() -> None:
    assert INFRASTRUCTURE_FAILURES <= DEFAULT_RETRY_ON
    assert FailureClass.APP_ERROR not in DEFAULT_RETRY_ON
    assert FailureClass.TIMEOUT not in DEFAULT_RETRY_ON  # only with a checkpoint policy
    assert FailureClass.CANCELLED not in DEFAULT_RETRY_ON
    assert FailureClass.APP_ERROR not in INFRASTRUCTURE_FAILURES


def test_attempt_finished_states() -> None:
    assert {s for s in AttemptState if s.finished} == {AttemptState.SUCCEEDED, AttemptState.FAILED}


# -- the store enforces the table --------------------------------------------------------------


def fresh_job(store: MemoryStore) -> JobId:
    job_id = JobId("j-walk")
    store.create_jobs(
        [
            NewJob(
                job_id=job_id,
                name="walk",
                project="p",
                workload_class="batch",
                backend="local",
                spec={},
            )
        ],
        now=0.0,
        actor="test",
    )
    return job_id


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_random_walks_through_the_store(data: st.DataObject) -> None:
    """Half the steps take an allowed move, half try any state; only allowed ones stick."""
    store = MemoryStore()
    job_id = fresh_job(store)
    steps = data.draw(st.integers(min_value=1, max_value=30), label="steps")
    for step in range(1, steps + 1):
        before = store.get_job(job_id)
        events_before = store.events(job_id)
        allowed = sorted(TRANSITIONS[before.state])
        take_allowed = data.draw(st.booleans(), label="allowed move")
        if allowed and take_allowed:
            target = data.draw(st.sampled_from(allowed), label="target")
        else:
            target = data.draw(st.sampled_from(list(JobState)), label="target")
        if can_transition(before.state, target):
            after = store.transition(
                job_id,
                target,
                expected_version=before.version,
                now=float(step),
                reason=f"step {step}",
                actor="walker",
            )
            assert after.state is target
            assert after.version == before.version + 1
            assert store.get_job(job_id) == after
            new_events = store.events(job_id, after_seq=events_before[-1].seq)
            assert len(new_events) == 1
            [event] = new_events
            assert (event.kind, event.from_state, event.to_state) == (
                "transition",
                before.state,
                target,
            )
            assert (event.reason, event.actor, event.time) == (
                f"step {step}",
                "walker",
                float(step),
            )
            assert after.finished_at == (float(step) if target.terminal else None)
        else:
            with pytest.raises(InvalidTransitionError, match=f"cannot go from {before.state}"):
                store.transition(job_id, target, expected_version=before.version, now=float(step))
            assert store.get_job(job_id) == before
            assert store.events(job_id) == events_before
    # The event log replays to the final state.
    transitions = [e for e in store.events(job_id) if e.kind == "transition"]
    state = S.ACCEPTED
    for event in transitions:
        assert event.from_state is state
        assert event.to_state is not None
        assert can_transition(state, event.to_state)
        state = event.to_state
    assert state is store.get_job(job_id).state


@pytest.mark.parametrize(
    ("state", "target"),
    [(s, t) for s in JobState for t in JobState if not can_transition(s, t)],
    ids=str,
)
def test_each_forbidden_move_is_refused(state: JobState, target: JobState) -> None:
    store = MemoryStore()
    job_id = fresh_job(store)
    path = shortest_path(S.ACCEPTED, state)
    job = store.get_job(job_id)
    for step in path:
        job = store.transition(job_id, step, expected_version=job.version, now=1.0)
    events = store.events(job_id)
    with pytest.raises(InvalidTransitionError):
        store.transition(job_id, target, expected_version=job.version, now=2.0)
    assert store.get_job(job_id) == job
    assert store.events(job_id) == events


def shortest_path(start: JobState, goal: JobState) -> list[JobState]:
    previous: dict[JobState, JobState] = {}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state is goal:
            break
        for nxt in sorted(TRANSITIONS[state]):
            if nxt not in previous and nxt is not start:
                previous[nxt] = state
                queue.append(nxt)
    path = []
    while goal is not start:
        path.append(goal)
        goal = previous[goal]
    return path[::-1]
