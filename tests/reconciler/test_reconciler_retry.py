"""Backoff and retry rules: exponential, capped, jittered within bounds, and deterministic."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcbridge.reconciler import backoff_s, decide_retry, retry_classes
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.states import DEFAULT_RETRY_ON, FailureClass


def spec_with(**backoff: Any) -> JobSpec:
    return load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "r",
            "command": ["x"],
            "retry": {"max_attempts": 100, "backoff": backoff},
        }
    )


def test_exponential_then_capped_without_jitter() -> None:
    spec = spec_with(initial="10s", factor=2, max="100s", jitter=0)
    delays = [backoff_s(spec, "j", n) for n in range(1, 9)]
    assert delays == [10, 20, 40, 80, 100, 100, 100, 100]


def test_attempt_zero_is_the_initial_delay() -> None:
    spec = spec_with(initial="10s", jitter=0)
    assert backoff_s(spec, "j", 0) == backoff_s(spec, "j", 1) == 10


@given(
    initial=st.integers(1, 600),
    factor=st.floats(1.0, 10.0),
    cap=st.integers(1, 86400),
    attempts=st.integers(1, 100),
)
@settings(max_examples=200, deadline=None)
def test_without_jitter_monotone_up_to_the_cap(
    initial: int, factor: float, cap: int, attempts: int
) -> None:
    spec = spec_with(initial=initial, factor=factor, max=cap, jitter=0)
    delays = [backoff_s(spec, "job", n) for n in range(1, attempts + 1)]
    assert delays == sorted(delays)
    assert all(0 < d <= max(cap, initial) for d in delays)
    assert delays[0] == min(initial, cap)


@given(
    initial=st.integers(1, 600),
    factor=st.floats(1.0, 10.0),
    cap=st.integers(1, 86400),
    jitter=st.floats(0.0, 1.0),
    attempts=st.integers(1, 100),
    job_id=st.text(min_size=1, max_size=12),
)
@settings(max_examples=300, deadline=None)
def test_jitter_stays_within_its_fraction(
    initial: int, factor: float, cap: int, jitter: float, attempts: int, job_id: str
) -> None:
    spec = spec_with(initial=initial, factor=factor, max=cap, jitter=jitter)
    base = backoff_s(spec_with(initial=initial, factor=factor, max=cap, jitter=0), job_id, attempts)
    delay = backoff_s(spec, job_id, attempts)
    assert base * (1 - jitter) - 1e-9 <= delay <= base * (1 + jitter) + 1e-9
    assert delay >= 0
    assert backoff_s(spec, job_id, attempts) == delay  # deterministic: no hidden randomness


def test_jitter_spreads_jobs_apart() -> None:
    spec = spec_with(initial="100s", jitter=0.5)
    delays = {backoff_s(spec, f"job-{i}", 1) for i in range(50)}
    assert len(delays) > 40
    assert min(delays) < 80
    assert max(delays) > 120


def test_default_retry_classes_and_checkpoint_adds_timeout() -> None:
    plain = load_spec_document(
        {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": "r", "command": ["x"]}
    )
    assert retry_classes(plain) == DEFAULT_RETRY_ON
    with_checkpoint = plain.model_copy(
        update={
            "checkpoint": load_spec_document(
                {
                    "apiVersion": "hpcbridge/v1",
                    "kind": "Job",
                    "name": "r",
                    "command": ["x"],
                    "checkpoint": {},
                }
            ).checkpoint
        }
    )
    assert retry_classes(with_checkpoint) == DEFAULT_RETRY_ON | {FailureClass.TIMEOUT}


@pytest.mark.parametrize(
    ("failure", "history_before", "retry", "why"),
    [
        (FailureClass.NODE_FAILURE, [], True, "retrying after node_failure"),
        (
            FailureClass.NODE_FAILURE,
            [FailureClass.LOST, FailureClass.LOST],
            False,
            "all 3 attempts used",
        ),
        (FailureClass.APP_ERROR, [], False, "app_error is not retried by default"),
        (FailureClass.OOM, [], False, "oom is not retried"),
        (FailureClass.TIMEOUT, [], False, "no checkpoint policy"),
        (FailureClass.SPEC_ERROR, [], False, "spec_error is not retried"),
    ],
)
def test_decide_retry(
    failure: FailureClass, history_before: list[FailureClass], retry: bool, why: str
) -> None:
    spec = load_spec_document(
        {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": "r", "command": ["x"]}
    )
    decision = decide_retry(spec, "j", failure, [*history_before, failure])
    assert decision.retry is retry
    assert why in decision.why
    if retry:
        assert decision.delay_s == backoff_s(spec, "j", len(history_before) + 1)
    else:
        assert decision.delay_s == 0
