"""bench/api_throughput.py at tiny sizes, so that it keeps running: one JSON object on
stdout with every figure the README quotes (PostgreSQL's when a server answers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "api_throughput.py"


@pytest.mark.slow
def test_the_api_bench_prints_one_json_object_with_its_figures(tmp_path: Path) -> None:
    argv = [sys.executable, str(BENCH), "--submissions", "10", "--rounds", "1"]
    argv += ["--jobs", "300", "--samples", "5", "--users", "3", "--watch-s", "2"]
    argv += ["--dir", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["api_submissions_per_s"] > 0 and result["embedded_submissions_per_s"] > 0
    assert result["api_vs_embedded_ratio"] > 0
    assert 0 < result["list_p50_ms_100k"] <= result["list_p99_ms_100k"]
    assert result["scheduler_queries_per_min_1_user"] > 0
    # one reconciler watches every user's jobs: three users cost no more queries than one
    assert result["scheduler_queries_ratio_3_users"] <= 1.5
    assert "list_p99_ms_100k_postgresql" not in result or result["list_p99_ms_100k_postgresql"] > 0
    assert list(tmp_path.iterdir()) == []  # its work directory is gone
