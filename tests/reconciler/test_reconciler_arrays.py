"""Array tasks go to a backend with native arrays as ONE submission per cycle.

``ArrayBackend`` adds ``submit_array`` to the loop tests' ``FakeBackend``: it records each
call, so the tests count submissions the way ``sbatch --array`` would be counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.reconciler.test_reconciler_loop import Clock, FakeBackend, World

from hpcbridge.backends import (
    LaunchRequest,
    Observation,
    Phase,
    Submitted,
    split_array_token,
)
from hpcbridge.errors import TransientBackendError
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import JobFilter, JobId, MemoryStore


@dataclass
class ArrayBackend(FakeBackend):
    arrays: list[tuple[list[str], int | None]] = field(default_factory=list)
    array_error: Exception | None = None

    def submit_array(
        self, requests: Sequence[LaunchRequest], *, throttle: int | None = None
    ) -> list[Submitted]:
        if self.array_error is not None:
            raise self.array_error
        self.arrays.append(([r.token for r in requests], throttle))
        out = []
        for request in requests:
            split = split_array_token(request.token)
            assert split is not None, request.token
            outcome = Submitted(native_id=f"a{len(self.arrays)}_{split[1]}", running=False)
            self.known[request.token] = outcome
            self.observations[request.token] = Observation(Phase.PENDING)
            out.append(outcome)
        return out


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(MemoryStore(), ArrayBackend(), Clock(), tmp_path / "checkpoints")


def tasks(world: World, parent: str) -> list[JobId]:
    return [t.job_id for t in world.store.list_jobs(JobFilter(parent_id=JobId(parent)))]


def test_a_sweep_is_one_array_submission_with_the_throttle(world: World) -> None:
    backend = world.backend
    assert isinstance(backend, ArrayBackend)
    world.add_array("arr", tasks=50, throttle=5)
    reconciler = world.reconciler()
    reconciler.cycle()
    reconciler.cycle()
    assert backend.submitted == []  # no one-by-one submissions
    [(tokens, throttle)] = backend.arrays
    assert throttle == 5  # the scheduler enforces it (sbatch --array=...%5)
    keys = {split_array_token(t) for t in tokens}
    assert {k[0] for k in keys if k} == {split_array_token(tokens[0])[0]}  # type: ignore[index]
    assert sorted(k[1] for k in keys if k) == list(range(50))  # index = task index
    attempts = [world.store.attempts(t)[-1] for t in tasks(world, "arr")]
    assert {a.state for a in attempts} == {AttemptState.SUBMITTED}
    assert {a.native_id for a in attempts} == {f"a1_{i}" for i in range(50)}
    for attempt in attempts:
        backend.finish(attempt.token)
    reconciler.cycle()
    reconciler.cycle()
    assert world.state("arr") is JobState.SUCCEEDED


def test_a_retried_task_goes_alone_in_a_later_array(world: World) -> None:
    backend = world.backend
    assert isinstance(backend, ArrayBackend)
    world.add_array("arr", tasks=3)
    reconciler = world.reconciler()
    reconciler.cycle()
    tokens = [world.token(f"arr.{i}") for i in range(3)]
    backend.finish(tokens[0])
    backend.finish(tokens[1])
    backend.finish(tokens[2], FailureClass.NODE_FAILURE, exit_code=0)
    for _ in range(10):
        reconciler.cycle()
        world.clock.advance(120)
        if len(backend.arrays) == 2:
            break
    assert len(backend.arrays) == 2
    retry_tokens, _ = backend.arrays[1]
    assert [split_array_token(t)[1] for t in retry_tokens] == [2]  # type: ignore[index]
    assert split_array_token(retry_tokens[0]) != split_array_token(tokens[2])  # new key


def test_a_crash_after_the_array_submission_adopts_every_task(world: World) -> None:
    """The array reached the scheduler but nothing was recorded: a fresh reconciler finds
    the tasks by their tokens instead of submitting the array again."""
    backend = world.backend
    assert isinstance(backend, ArrayBackend)
    world.add_array("arr", tasks=4)
    failing = world.store
    reconciler = world.reconciler()
    original = failing.update_attempt

    def crash(*args: object, **kwargs: object) -> object:
        if kwargs.get("native_id"):
            raise TransientBackendError("power cut")  # any HpcbridgeError: not recorded
        return original(*args, **kwargs)  # type: ignore[arg-type]

    failing.update_attempt = crash  # type: ignore[method-assign,assignment]
    reconciler.cycle()
    failing.update_attempt = original  # type: ignore[method-assign]
    assert len(backend.arrays) == 1
    assert {a.state for t in tasks(world, "arr") for a in world.store.attempts(t)} == {
        AttemptState.PREPARED
    }
    world.reconciler().cycle()  # a fresh process: every token is looked up
    assert len(backend.arrays) == 1
    attempts = [world.store.attempts(t)[-1] for t in tasks(world, "arr")]
    assert {a.native_id for a in attempts} == {f"a1_{i}" for i in range(4)}
    assert all(len(world.store.attempts(t)) == 1 for t in tasks(world, "arr"))


def test_a_transient_array_error_keeps_the_tasks_and_retries_the_same_array(
    world: World,
) -> None:
    backend = world.backend
    assert isinstance(backend, ArrayBackend)
    world.add_array("arr", tasks=3)
    backend.array_error = TransientBackendError("slurmctld timed out")
    reconciler = world.reconciler()
    reconciler.cycle()
    first_tokens = sorted(world.token(t) for t in tasks(world, "arr"))
    assert world.state("arr.0") is JobState.QUEUED
    assert "unavailable" in (world.store.get_job("arr.0").reason or "")
    backend.array_error = None
    reconciler.cycle()
    [(tokens, _)] = backend.arrays
    assert sorted(tokens) == first_tokens  # the same tokens: adoptable if it had landed
    assert backend.finds  # it looked before submitting again
