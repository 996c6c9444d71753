"""bench/checkpoint.py runs and prints one JSON object with the promised fields."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "checkpoint.py"


def test_bench_prints_one_json_object(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--size-mib", "4", "--repeat", "1", "--torch-mib", "1"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert result["size_bytes"] == 4 << 20
    for key in ("plain_write_fsync_s", "sdk_save_s", "write_ratio", "verify_GBps"):
        assert result[key] > 0
    # The write ratio with blake3 (installed here) and without it (a child that cannot
    # import it), each against the plain write+fsync baseline of its own process.
    assert result["blake3_installed"] is True
    assert result["write_ratio_with_blake3"] == result["write_ratio"]
    without = result["without_blake3"]
    assert without["blake3_installed"] is False
    assert without["algorithm"] == result["algorithm"] == "sha256-tree-8MiB"
    assert without["plain_write_fsync_s"] > 0 and without["sdk_save_s"] > 0
    assert result["write_ratio_without_blake3"] == without["write_ratio"] > 0
    if result["async_stall_ratio"] is None:
        assert result["async_stall_reason"] == "torch is not installed"
    else:
        assert result["async_stall_ratio"] > 0 and result["async_stall_reason"] is None
