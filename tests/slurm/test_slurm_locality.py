"""Node-local input caches and placement on the real Slurm 22.05 test cluster.

Its nodes n1-n3 run on this machine, so each node's cache is its own directory
(``node_cache_dir: .../{node}``). It uses the cluster as it runs (``scripts/slurm-cluster
status``), never resets it; it drains one node for a while and resumes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.service import explain
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.states import JobState

pytestmark = pytest.mark.slurm
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-cluster"
PAYLOAD_BYTES = 3 << 20


def _slurm_env() -> dict[str, str]:
    status = subprocess.run([str(SCRIPT), "status"], check=False, capture_output=True, timeout=60)
    if status.returncode != 0:
        if os.geteuid() == 0:  # CI runs as root and starts the cluster: never skip there
            pytest.fail(f"the Slurm test cluster is unhealthy: {status.stdout.decode()[-500:]}")
        pytest.skip("needs the Slurm test cluster: 'scripts/slurm-cluster start' as root")
    out = subprocess.run(
        [str(SCRIPT), "env"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        if line.startswith("export SLURM_CONF="):
            env["SLURM_CONF"] = line.partition("=")[2]
    env.pop("SLURM_JWT", None)
    return env


@pytest.fixture
def slurm_env() -> dict[str, str]:
    return _slurm_env()


@pytest.fixture
def settings(tmp_path: Path, slurm_env: dict[str, str]) -> Settings:
    conf = slurm_env.get("SLURM_CONF")
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        "clusters:\n  lab:\n    default: true\n    transport: cli\n"
        "    default_partition: batch\n"
        + (f"    slurm_conf: {conf}\n" if conf else "")
        + f"    log_dir: {tmp_path / 'logs'}\n    queue_interval_s: 0.5\n"
        + f"    node_cache_dir: {tmp_path / 'nodecache' / '{node}'}\n"
        + "    node_cache_max_gb: 1\n"
    )
    home = tmp_path / "home"
    return Settings(
        home=home,
        database_url=f"sqlite:///{home / 'hpcbridge.db'}",
        clusters_file=clusters,
        required_tags=(),
        poll_interval_s=0.3,
    )


def _wait_responding(node: str, env: dict[str, str]) -> None:
    """A resumed node is "not responding" (``idle*``) until slurmctld next hears from its
    slurmd; leave the cluster healthy for the next test."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["sinfo", "-h", "-n", node, "-o", "%T"],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        ).stdout
        if state.strip() and "*" not in state and "drain" not in state:
            return
        time.sleep(0.5)


def _spec(source: Path) -> JobSpec:
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "locality",
        "backend": "slurm",
        "command": ["sh", "-c", "cmp -s in.bin " + str(source)],
        "resources": {"cpus_per_task": 1, "walltime": "5m"},
        "stage_in": [{"source": str(source), "dest": "in.bin"}],
    }
    return load_spec_document(document, source="test")


def _run(client: Client, spec: JobSpec) -> tuple[str, dict[str, Any], str]:
    """Run one job to success: (its node, its node cache report, its job id)."""
    job = client.submit(spec)
    (done,) = client.wait([job.job_id], timeout_s=180)
    assert done.state is JobState.SUCCEEDED, done.reason
    (attempt,) = client.attempts(job.job_id)
    (node,) = attempt.nodes
    report = json.loads((Path(str(attempt.status_dir)) / "node_cache.json").read_text())
    assert report["node"] == node, report
    return node, report, job.job_id


def test_a_second_job_goes_to_the_node_holding_its_inputs_and_copies_nothing(
    settings: Settings, slurm_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(PAYLOAD_BYTES))
    client = Client(settings)
    drained: str | None = None
    try:
        first_node, first, _ = _run(client, _spec(source))
        assert first["bytes_copied"] == PAYLOAD_BYTES and first["bytes_linked"] == 0

        second_node, second, second_id = _run(client, _spec(source))
        assert second_node == first_node  # placed by the cache, not by luck alone
        assert second["bytes_copied"] == 0 and second["bytes_linked"] == PAYLOAD_BYTES
        placed = [e for e in client.events(second_id) if e.kind == "placed"]
        assert [e.data["node"] for e in placed] == [first_node]
        sentence = f"placed on {first_node}: holds 1 of 1 inputs, 3.1 of 3.1 MB"
        assert placed[0].reason == sentence
        assert sentence in explain(client, second_id).actions  # hpcbridge why

        drained = first_node
        subprocess.run(
            ["scontrol", "update", f"nodename={drained}", "state=drain", "reason=test"],
            check=True,
            env=slurm_env,
            timeout=30,
        )
        third_node, third, third_id = _run(client, _spec(source))
        assert third_node != drained  # a drained holder is not waited for
        assert third["bytes_copied"] == PAYLOAD_BYTES
        assert not [e for e in client.events(third_id) if e.kind == "placed"]
    finally:
        if drained is not None:
            subprocess.run(
                ["scontrol", "update", f"nodename={drained}", "state=resume"],
                check=False,
                env=slurm_env,
                timeout=30,
            )
            _wait_responding(drained, slurm_env)
        client.close()
