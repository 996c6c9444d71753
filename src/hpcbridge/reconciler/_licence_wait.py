"""Whether a job may queue on the licences of managed pools: pure, from numbers the loop
computed before deciding (free counts and server health)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hpcbridge.reconciler._actions import Action, Note, Transition
from hpcbridge.spec import format_duration
from hpcbridge.states import FailureClass, JobState


@dataclass(frozen=True, slots=True)
class LicenceNeed:
    """One managed pool a job asks licences of, as the cycle found it."""

    pool: str
    count: int
    free: int
    """Capacity of the healthy servers less what this store's queued and running jobs hold."""
    total: int
    capacity: int
    down_since: float | None
    """Since when no server of the pool has been healthy (None: one is)."""
    grace_s: float


def licence_wait(
    needs: Sequence[LicenceNeed], state: JobState, reason: str | None, now: float
) -> list[Action] | None:
    """None when every need is free now (the job may queue); otherwise hold the job with
    a reason that says how many it waits for, or fail it when its pool cannot serve it."""
    short = [n for n in needs if n.count > n.free]
    if not short:
        return None
    for need in short:
        if need.count > need.total:
            return _unavailable(
                f"asks for {need.count} licences of {need.pool}, but the pool holds {need.total}",
                short,
            )
        down = need.down_since
        if need.capacity == 0 and down is not None and now - down >= need.grace_s:
            return _unavailable(
                f"no licence server of {need.pool} has passed its health check "
                f"for {format_duration(round(now - down))}",
                short,
            )
    waiting = "; ".join(_waiting(n) for n in short)
    if state is not JobState.HELD:
        return [Transition(JobState.HELD, waiting, data=licence_data(short))]
    return [Note(waiting)] if waiting != reason else []


def released(needs: Sequence[LicenceNeed]) -> Transition:
    """Held no longer: the licences it waits for are free."""
    said = ", ".join(f"{n.count} of {n.pool} ({n.free} free)" for n in needs)
    return Transition(JobState.QUEUED, f"licences free: {said}", data=licence_data(needs))


def licence_data(needs: Sequence[LicenceNeed]) -> dict[str, Any]:
    """The numbers a held or released event keeps, per pool."""
    return {
        "licences": {
            n.pool: {"requested": n.count, "free": n.free, "total": n.total, "capacity": n.capacity}
            for n in needs
        }
    }


def _waiting(need: LicenceNeed) -> str:
    noun = "licence" if need.count == 1 else "licences"
    said = f"waiting for {need.count} {noun} of {need.pool} ({need.free} free)"
    if need.capacity == 0:
        said += f"; no licence server of {need.pool} passes its health check"
    return said


def _unavailable(reason: str, needs: Sequence[LicenceNeed]) -> list[Action]:
    fields = {"failure_class": FailureClass.LICENCE_UNAVAILABLE}
    return [Transition(JobState.FAILED, reason, fields, licence_data(needs))]
