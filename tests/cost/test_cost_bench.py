"""bench/cost_report.py runs and prints one JSON object with the promised fields."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cost_report.py"


def test_bench_prints_one_json_object(tmp_path: Path) -> None:
    argv = [sys.executable, str(BENCH), "--small", "100", "--large", "1000"]
    argv += ["--reports", "1", "--decisions", "200"]
    done = subprocess.run(
        argv, check=True, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert result["attempts"] == {"small": 100, "large": 1000} and result["data_ratio"] == 10
    assert result["report_p50_s_small"] > 0 and result["report_p50_s_large"] > 0
    assert result["report_ratio_1m_vs_10k"] > 0
    assert isinstance(result["report_ratio_met"], bool)
    assert result["sizes"]["1000"]["spend"] > result["sizes"]["100"]["spend"] > 0
    assert 0 < result["burst_decision_ms_p50"] <= result["burst_decision_ms_p99"]
    assert result["burst_decision_target_ms"] == 5.0
