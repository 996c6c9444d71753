"""Smoke test of the real Slurm test cluster (scripts/slurm-cluster)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .conftest import SlurmCluster

pytestmark = pytest.mark.slurm

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}


def _run(cluster: SlurmCluster, *args: str) -> str:
    return subprocess.run(
        list(args), check=True, capture_output=True, text=True, env=cluster.env(), timeout=60
    ).stdout


def test_static_nodes_are_idle(slurm_cluster: SlurmCluster) -> None:
    # Another test may just have finished jobs; give their nodes a moment to settle.
    deadline = time.monotonic() + 60
    while True:
        out = _run(
            slurm_cluster, "sinfo", "-h", "-N", "-p", slurm_cluster.default_partition, "-o", "%N %T"
        )
        states = dict(line.split() for line in out.splitlines())
        if states == dict.fromkeys(slurm_cluster.static_nodes, "idle"):
            return
        assert time.monotonic() < deadline, f"static nodes not all idle: {states}"
        time.sleep(1)


def test_trivial_batch_job_completes(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    output = tmp_path / "out.txt"
    job_id = _run(
        slurm_cluster,
        "sbatch",
        "--parsable",
        "--job-name=hpcbridge-smoke",
        f"--output={output}",
        "--wrap=echo hello from $SLURMD_NODENAME",
    ).strip()
    assert job_id.isdigit()
    deadline = time.monotonic() + 60
    state = ""
    while state not in TERMINAL:
        assert time.monotonic() < deadline, f"job {job_id} still {state or 'unknown'} after 60 s"
        time.sleep(0.5)
        # sacct prints nothing until slurmdbd has the record; "CANCELLED by 0" has a suffix.
        out = _run(slurm_cluster, "sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State")
        state = out.strip().split(" ")[0]
    assert state == "COMPLETED"
    words = output.read_text().split()
    assert words[:2] == ["hello", "from"]
    assert words[2] in slurm_cluster.static_nodes


def test_slurmrestd_answers_with_a_token(slurm_cluster: SlurmCluster) -> None:
    response = httpx.get(
        f"{slurm_cluster.rest_url}/slurm/v0.0.38/ping",
        headers=slurm_cluster.rest_headers(lifespan_s=60),
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == []
    assert body["pings"][0]["ping"] == "UP"
