"""Two reconcilers on one PostgreSQL driving jobs on the real Slurm cluster, the leader
SIGKILLed at random points again and again: the other takes over within two lease periods,
no token reaches sbatch twice, no program runs twice, no job is lost. ``bench/failover.py
--backend slurm`` is the same scenario at full size."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.test_failover_postgres import _bench
from tests.store.conftest import postgres_server, postgres_url

from .conftest import SlurmCluster

__all__ = ["postgres_server", "postgres_url"]

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_the_leader_killed_again_and_again_on_slurm_loses_and_repeats_nothing(
    postgres_url: str, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    result = _bench().run_failover(
        postgres_url,
        tmp_path,
        jobs=40,
        kills=5,
        ttl_s=2.0,
        seed=11,
        backend="slurm",
        slurm_conf=slurm_cluster.slurm_conf or Path("/etc/slurm/slurm.conf"),
    )
    assert result["kills"] >= 3, result
    assert (result["duplicates"], result["lost"]) == (0, 0), result
    assert result["takeover_s"] <= result["takeover_limit_s"], result
