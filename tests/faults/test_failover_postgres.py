"""Two reconcilers on one PostgreSQL: the leader SIGKILLed at random points, again and again.

The other takes over within two lease periods; no program runs twice, no job is lost, every
job ends in its true state. The same scenario as ``bench/failover.py``, smaller.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "failover.py"


def _bench() -> Any:
    """bench/failover.py, loaded by path (benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("failover_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_leader_killed_again_and_again_loses_and_repeats_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    result = _bench().run_failover(postgres_url, tmp_path, jobs=60, kills=6, ttl_s=2.0, seed=7)
    assert result["kills"] >= 3, result
    assert (result["duplicates"], result["lost"]) == (0, 0), result
    assert result["takeover_s"] <= result["takeover_limit_s"], result
