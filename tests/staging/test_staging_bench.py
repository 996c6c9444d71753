"""bench/staging.py at tiny sizes, so that it keeps running: one JSON object with the
ratios the issue asks for, each baseline measured in the same run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "staging.py"


def test_the_staging_bench_prints_one_json_object_with_its_ratios(tmp_path: Path) -> None:
    argv = [sys.executable, str(BENCH), "--large-mib", "8", "--small-files", "50"]
    argv += ["--repeat", "1", "--dir", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert result["large_bytes"] == 8 << 20 and result["small_files"] == 50
    runners = {"cp", "cp_sync", "stage_large", "stage_large_durable"}
    runners |= {"rsync", "rsync_sync", "stage_small", "stage_small_durable"}
    assert set(result["seconds"]) == set(result["median_seconds"]) == runners
    assert all(len(times) == 1 for times in result["per_round_seconds"].values())
    assert all(seconds > 0 for seconds in result["seconds"].values()) and result["hash_GBps"] > 0
    ratios = ["large_vs_cp", "large_durable_vs_cp_sync", "small_vs_rsync"]
    for name in [*ratios, "small_durable_vs_rsync_sync"]:
        assert result[f"{name}_ratio"] > 0 and result["median_ratios"][name] > 0, name
    assert (result["hash_vs_sha256sum_ratio"] is None) == (shutil.which("sha256sum") is None)
    assert (result["hash_vs_b3sum_ratio"] is None) == (shutil.which("b3sum") is None)
    assert list(tmp_path.iterdir()) == []  # it cleans up after itself
