"""``parse_state_filter``: hpcbridge's states and Slurm's codes and names, any case."""

from __future__ import annotations

import pytest

from hpcbridge.states import (
    SLURM_STATE_CODES,
    FailureClass,
    JobState,
    StateFilter,
    parse_state_filter,
)


@pytest.mark.parametrize("text", ["running", "RUNNING", " Running "])
def test_own_states_in_any_case(text: str) -> None:
    found = parse_state_filter(text)
    assert found is not None and found.states is not None
    # RUNNING is also Slurm's name; both sides mean the job runs.
    assert JobState.RUNNING in found.states


@pytest.mark.parametrize(
    ("code", "state", "failure", "selected"),
    [
        ("pd", JobState.QUEUED, None, True),
        ("PD", JobState.RETRY_WAIT, None, True),
        ("PENDING", JobState.RUNNING, None, False),
        ("cd", JobState.SUCCEEDED, None, True),
        ("F", JobState.FAILED, FailureClass.APP_ERROR, True),
        ("ca", JobState.CANCELLED, FailureClass.CANCELLED, True),
        ("TO", JobState.FAILED, FailureClass.TIMEOUT, True),
        ("timeout", JobState.FAILED, FailureClass.APP_ERROR, False),
        ("oom", JobState.FAILED, FailureClass.OOM, True),
        ("OUT_OF_MEMORY", JobState.FAILED, FailureClass.OOM, True),
        ("NF", JobState.FAILED, FailureClass.NODE_FAILURE, True),
        ("PR", JobState.RETRY_WAIT, FailureClass.PREEMPTED, True),
        ("pr", JobState.FAILED, FailureClass.PREEMPTED, True),
        ("PR", JobState.QUEUED, None, False),
    ],
)
def test_slurm_codes(
    code: str, state: JobState, failure: FailureClass | None, selected: bool
) -> None:
    found = parse_state_filter(code)
    assert found is not None
    assert found.matches(state, failure) is selected


def test_unknown_is_none() -> None:
    assert parse_state_filter("XX") is None
    assert parse_state_filter("") is None


def test_every_code_selects_something() -> None:
    for code, selected in SLURM_STATE_CODES.items():
        assert isinstance(selected, StateFilter), code
        assert selected.states is None or selected.states, code
