"""The typed parts of an attempt's details that several layers read."""

from __future__ import annotations

from hpcbridge.states import AttemptState, FailureClass
from hpcbridge.store import Attempt, JobId


def attempt(**details: object) -> Attempt:
    return Attempt(JobId("j"), 1, "t", "local", AttemptState.RUNNING, 0.0, details=dict(details))


def test_status_dir_from_either_backend() -> None:
    assert attempt(status_dir="/s").status_dir == "/s"  # Slurm
    assert attempt(dir="/d").status_dir == "/d"  # the local executor
    assert attempt().status_dir is None
    assert attempt(dir=3).status_dir is None


def test_kill_order() -> None:
    assert attempt().kill_order is None
    order = attempt(kill={"failure_class": "timeout", "at": 12.5}).kill_order
    assert order is not None
    assert (order.failure_class, order.at) == (FailureClass.TIMEOUT, 12.5)


def test_partition_kind_and_lost_work() -> None:
    assert attempt(partition_kind="spot").partition_kind == "spot"
    assert attempt().partition_kind is None
    assert attempt(lost_core_hours=2).lost_core_hours == 2.0
    assert attempt(lost_core_hours="x").lost_core_hours is None
