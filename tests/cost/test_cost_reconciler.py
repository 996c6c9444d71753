"""The reconciler charges each attempt as it ends: a job preempted once and then
succeeding has two charged attempts, one of them waste, each under the card in force
when it started; its cost per result is the sum over both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpcbridge.cost import AttemptCost, job_totals, load_cards
from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import JobId, MemoryStore
from tests.reconciler.test_reconciler_loop import Clock, FakeBackend, World

CARDS = {
    "v1.yaml": "version: v1\neffective_from: 1970-01-01T00:00:00\n"
    "partitions: {'*': {core_hour: 1.0}, spot: {core_hour: 0.5}}\n",
    "v2.yaml": "version: v2\neffective_from: 1970-01-01T00:20:00\n"
    "partitions: {'*': {core_hour: 2.0}}\n",
}


def _accounting(partition: str, elapsed_s: int) -> dict[str, Any]:
    """What the Slurm backend reports from sacct when an attempt ends."""
    return {
        "slurm": {
            "cluster": "hpc1",
            "partition": partition,
            "nodes": ["n1"],
            "elapsed_s": elapsed_s,
            "alloc_tres": {"cpu": "4", "mem": "0"},
            "cpus": 4,
        }
    }


def test_preempted_then_succeeded_is_two_charges_one_waste(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    cards.mkdir()
    for name, text in CARDS.items():
        (cards / name).write_text("cluster: hpc1\ncurrency: EUR\n" + text)
    book = load_cards(cards)
    world = World(MemoryStore(), FakeBackend(), Clock(), tmp_path / "checkpoints")
    world.add("j1", retry={"backoff": {"initial": "60s", "jitter": 0}})
    reconciler = world.reconciler(rate_cards=book)

    reconciler.cycle()
    world.backend.finish(
        world.token("j1"),
        FailureClass.PREEMPTED,
        exit_code=1,
        started_at=1001.0,
        ended_at=1901.0,
        details=_accounting("spot", 900),
    )
    reconciler.cycle()
    world.clock.now = 1300.0 + 60  # past the backoff, in the second card's time
    reconciler.cycle()
    world.backend.finish(
        world.token("j1"), started_at=1400.0, ended_at=3200.0, details=_accounting("batch", 1800)
    )
    reconciler.cycle()
    assert world.state("j1") is JobState.SUCCEEDED

    attempts = world.store.attempts(JobId("j1"))
    costs = [AttemptCost.from_details(a.details.get("cost")) for a in attempts]
    assert [(c.card, c.waste, c.core_hours, c.amount) for c in costs if c] == [
        ("hpc1/v1", True, 1.0, 0.5),  # 4 cores x 900 s on spot at 0.5
        ("hpc1/v2", False, 2.0, 4.0),  # 4 cores x 1800 s at 2.0 from the second card on
    ]
    job = world.store.get_job("j1")
    totals, currency = job_totals([(job, a) for a in attempts], book)
    assert (totals.spend, totals.waste, totals.results, currency) == (4.5, 0.5, 1, "EUR")
    assert totals.cost_per_result == pytest.approx(4.5)
    ends = [e for e in world.store.events(JobId("j1")) if e.kind.startswith("attempt_")]
    assert [e.data.get("cost") for e in ends if "cost" in e.data] == [0.5, 4.0]
