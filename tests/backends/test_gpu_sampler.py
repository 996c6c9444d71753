"""The job-side GPU sampler (M6), with a stand-in ``nvidia-smi`` on PATH (no GPU in CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from hpcbridge.backends import gpu_sampler
from hpcbridge.telemetry import latest_gpu_utilization


def fake_nvidia_smi(directory: Path, values: list[int]) -> None:
    """Prints one utilisation per GPU it is asked about, like ``--format=csv,noheader``."""
    tool = directory / "nvidia-smi"
    lines = "\\n".join(str(v) for v in values)
    tool.write_text(f'#!/bin/sh\necho "$@" >> "{directory}/argv"\nprintf "{lines}\\n"\n')
    tool.chmod(0o755)


def test_samples_the_mean_of_the_jobs_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, [30, 90])
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert gpu_sampler.sample(gpu_sampler.visible_gpus()) == pytest.approx(0.6)
    assert "--id=0,1" in (tmp_path / "argv").read_text()


def test_no_nvml_means_no_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither pynvml's library nor nvidia-smi
    assert gpu_sampler.sample(["0"]) is None


def test_the_sampler_writes_events_the_collector_reads(tmp_path: Path) -> None:
    fake_nvidia_smi(tmp_path, [70])
    status = tmp_path / "status"
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    code = (
        "import sys; from pathlib import Path; from hpcbridge.backends import gpu_sampler;"
        "gpu_sampler.run(Path(sys.argv[1]), interval_s=0.01, rounds=3)"
    )
    subprocess.run([sys.executable, "-c", code, str(status)], env=env, check=True, timeout=60)
    events = [json.loads(line) for line in (status / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == ["gpu_sample"] * 3
    assert latest_gpu_utilization(status, since=0) == pytest.approx(0.7)


def test_it_stops_when_the_job_script_is_gone(tmp_path: Path) -> None:
    """Started in the background by a script that exits: the sampler must not linger."""
    fake_nvidia_smi(tmp_path, [10])
    sampler = Path(gpu_sampler.__file__)
    script = f"{sys.executable} {sampler} {tmp_path / 'st'} 0.05 $$ >/dev/null 2>&1 & echo $!"
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    pid = int(
        subprocess.run(
            ["sh", "-c", script], env=env, capture_output=True, text=True, check=True, timeout=30
        ).stdout
    )
    for _ in range(100):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return  # exited; whoever adopted it has not reaped it yet
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)
    os.kill(pid, 9)
    pytest.fail("the sampler outlived its job script")
