"""Staging on the real Slurm test cluster, whose nodes share this machine's filesystem.

It uses the cluster as it runs (``scripts/slurm-cluster status``), never resets it: other
suites may have jobs there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass, JobState

pytestmark = pytest.mark.slurm
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-cluster"


@pytest.fixture
def slurm_settings(tmp_path: Path) -> Settings:
    status = subprocess.run([str(SCRIPT), "status"], check=False, capture_output=True, timeout=60)
    if status.returncode != 0:
        if os.geteuid() == 0:  # CI runs as root and starts the cluster: never skip there
            pytest.fail(f"the Slurm test cluster is unhealthy: {status.stdout.decode()[-500:]}")
        pytest.skip("needs the Slurm test cluster: 'scripts/slurm-cluster start' as root")
    env = subprocess.run(
        [str(SCRIPT), "env"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    conf = next(
        (
            line.partition("=")[2]
            for line in env.splitlines()
            if line.startswith("export SLURM_CONF=")
        ),
        None,
    )
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        "clusters:\n  lab:\n    default: true\n    transport: cli\n"
        + (f"    slurm_conf: {conf}\n" if conf else "")
        + f"    log_dir: {tmp_path / 'logs'}\n    queue_interval_s: 0.5\n"
    )
    home = tmp_path / "home"
    return Settings(
        home=home,
        database_url=f"sqlite:///{home / 'hpcbridge.db'}",
        clusters_file=clusters,
        required_tags=(),
        poll_interval_s=0.3,
    )


def test_stage_in_run_and_stage_out_on_slurm_and_a_changed_input_is_caught_on_the_node(
    slurm_settings: Settings, tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    source = tmp_path / "in.bin"
    payload = os.urandom(1 << 20)
    source.write_bytes(payload)
    results = tmp_path / "results"
    spec = make_spec(
        backend="slurm",
        command=["sh", "-c", "sha256sum in.bin > sum.txt && hostname >> sum.txt"],
        stage_in=[{"source": str(source), "dest": "in.bin"}],
        stage_out=[{"source": "sum.txt", "dest": str(results / "sum.txt")}],
    )
    client = Client(slurm_settings)
    try:
        job = client.submit(spec)
        (done,) = client.wait([job.job_id], timeout_s=120)
        assert done.state is JobState.SUCCEEDED, done.reason
        digest, node = (results / "sum.txt").read_text().split()[::2][:2]
        assert digest == hashlib.sha256(payload).hexdigest() and node
        assert client.attempts(job.job_id)[0].native_id  # it went through sbatch

        ran = tmp_path / "ran"
        tampered = client.submit(spec.model_copy(update={"command": ("touch", str(ran))}))
        staged = slurm_settings.home / "data" / tampered.job_id / "in.bin"
        manifest = staged.parent / ".hpcbridge" / "inputs.json"
        client.reconciler.cycle()  # accepted -> staging_in
        client.reconciler.cycle()  # the stage starts
        deadline = time.monotonic() + 60
        while not manifest.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with open(staged, "r+b") as f:  # one flipped byte on shared storage
            f.seek(1000)
            byte = f.read(1)
            f.seek(1000)
            f.write(bytes([byte[0] ^ 1]))
        (failed,) = client.wait([tampered.job_id], timeout_s=120)
        assert failed.state is JobState.FAILED
        assert failed.failure_class is FailureClass.CHECKSUM_MISMATCH, failed.reason
        assert "in.bin" in (failed.reason or "") and not ran.exists()
    finally:
        client.close()
