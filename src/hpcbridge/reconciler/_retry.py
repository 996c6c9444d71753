"""Retry rules per failure class, with exponential backoff and deterministic jitter."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay_s: float
    why: str


def retry_classes(spec: JobSpec) -> frozenset[FailureClass]:
    classes = set(spec.retry.retry_on)
    if spec.checkpoint is not None:
        # With checkpoints a timeout loses at most one interval: resuming is worth it.
        classes.add(FailureClass.TIMEOUT)
    return frozenset(classes)


def decide_retry(
    spec: JobSpec, job_id: str, failure: FailureClass, history: Sequence[FailureClass | None]
) -> RetryDecision:
    """Whether attempt ``len(history)`` failing with ``failure`` gets another attempt."""
    policy = spec.retry
    attempts = len(history)
    if failure not in retry_classes(spec):
        why = f"{failure.value} is not retried"
        if failure is FailureClass.TIMEOUT:
            why += " (the job has no checkpoint policy, so a new attempt would start over)"
        elif failure is FailureClass.APP_ERROR:
            why += " by default: the program itself failed (add app_error to retry.retry_on)"
        return RetryDecision(False, 0.0, why)
    if attempts >= policy.max_attempts:
        return RetryDecision(False, 0.0, f"all {policy.max_attempts} attempts used")
    class_limit = policy.per_class_max.get(failure)
    if class_limit is not None and sum(1 for f in history if f is failure) >= class_limit:
        return RetryDecision(False, 0.0, f"{failure.value} retry limit {class_limit} reached")
    return RetryDecision(True, backoff_s(spec, job_id, attempts), f"retrying after {failure.value}")


def backoff_s(spec: JobSpec, job_id: str, attempts: int) -> float:
    """initial * factor^(attempts-1), capped, +/- jitter derived from the job id (pure)."""
    backoff = spec.retry.backoff
    delay = min(backoff.max_s, backoff.initial_s * backoff.factor ** max(0, attempts - 1))
    digest = hashlib.blake2b(f"{job_id}:{attempts}".encode(), digest_size=8).digest()
    unit = int.from_bytes(digest, "big") / 2**64  # in [0, 1)
    return min(backoff.max_s, max(0.0, delay * (1 + backoff.jitter * (2 * unit - 1))))
