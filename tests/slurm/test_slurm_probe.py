"""The fabric latency probe (M7): as two local processes, in the rendered script, and on
the real test cluster where a two-node job reports its round-trip times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpcbridge.backends import LaunchRequest
from hpcbridge.backends.slurm import fabric_probe
from hpcbridge.backends.slurm._render import render_array_script, render_script
from hpcbridge.states import JobState

from ._rig import Rig, slurm_spec

PROBE = Path(fabric_probe.__file__)


def test_two_tasks_measure_round_trips_and_append_one_event(tmp_path: Path) -> None:
    env = {**os.environ, "SLURM_JOB_ID": "77"}
    server = subprocess.Popen(
        [sys.executable, str(PROBE), str(tmp_path)],
        env={**env, "SLURM_PROCID": "0", "SLURMD_NODENAME": "na"},
    )
    client = subprocess.run(
        [sys.executable, str(PROBE), str(tmp_path)],
        env={**env, "SLURM_PROCID": "1", "SLURMD_NODENAME": "nb"},
        timeout=30,
        check=True,
    )
    assert server.wait(timeout=30) == 0
    assert client.returncode == 0
    [line] = (tmp_path / "events.jsonl").read_text().splitlines()
    event = json.loads(line)
    assert event["type"] == "fabric_latency"
    assert event["nodes"] == ["na", "nb"]
    assert event["samples"] == fabric_probe.ROUNDS
    assert 0 < event["rtt_s_p50"] <= event["rtt_s_p99"] < 1
    assert not list(tmp_path.glob("*.addr"))  # the rendezvous file is cleaned up


def test_a_probe_without_a_partner_gives_up_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fabric_probe, "WAIT_S", 0.2)
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert fabric_probe.main([str(tmp_path)]) == 0
    assert not (tmp_path / "events.jsonl").exists()


def request(nodes: int) -> LaunchRequest:
    spec = slurm_spec(resources={"nodes": nodes})
    return LaunchRequest("j1", 1, "tok", spec, {"HPCBRIDGE_STATUS_DIR": "/shared/st"})


def test_only_multi_node_jobs_run_the_probe_and_a_cluster_can_turn_it_off() -> None:
    assert "srun --overlap --nodes=2" in render_script(request(2))
    assert "srun" not in render_script(request(1))
    assert "srun" not in render_script(request(2), probe=False)
    array = render_array_script([request(2), request(2)], [0, 1])
    assert array.index("esac") < array.index("srun --overlap")  # after the task's variables


@pytest.mark.slurm
@pytest.mark.slow
def test_a_two_node_job_reports_its_fabric_latency(rig: Rig) -> None:
    job_id = rig.submit(slurm_spec(name="two-nodes", command=["true"], resources={"nodes": 2}))
    job = rig.wait_done(job_id, timeout_s=120)
    assert job.state is JobState.SUCCEEDED, job
    [event] = [e for e in rig.store.events(job_id) if e.kind == "fabric_latency"]
    assert len(set(event.data["nodes"])) == 2
    assert set(event.data["nodes"]) <= set(rig.attempts(job_id)[-1].nodes)
    assert 0 < event.data["rtt_s_p50"] < 1


def test_a_gpu_job_script_starts_the_sampler() -> None:
    spec = slurm_spec(resources={"gpus": 1})
    script = render_script(LaunchRequest("j1", 1, "tok", spec, {}))
    assert "gpu_sample" in script
    assert "gpu_sample" not in render_script(request(1))


@pytest.mark.slurm
@pytest.mark.slow
def test_a_gpu_job_records_utilisation_samples(rig: Rig, tmp_path: Path) -> None:
    """The test nodes' GPUs are fake, so a stand-in nvidia-smi answers NVML's query."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "nvidia-smi").write_text("#!/bin/sh\necho 55\n")
    (tools / "nvidia-smi").chmod(0o755)
    job_id = rig.submit(
        slurm_spec(
            name="gpu",
            command=["sleep", "3"],
            resources={"gpus": 1},
            env={"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"},
        )
    )
    assert rig.wait_done(job_id, timeout_s=120).state is JobState.SUCCEEDED
    status_dir = Path(rig.attempts(job_id)[-1].details["status_dir"])
    lines = (status_dir / "events.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines if "gpu_sample" in line]
    assert samples
    assert samples[0]["utilization"] == 0.55
