"""Cluster view on the real cluster: nodes, partitions with queue depth, drain and resume,
through the backend and through ``hpcbridge nodes``; the clusters file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbridge.backends import LaunchRequest
from hpcbridge.backends.slurm import Clusters, SlurmBackend, load_clusters
from hpcbridge.errors import PermanentBackendError

from ._helpers import TRANSPORTS, cluster_config, make_settings, run_slurm, scancel
from ._rig import slurm_spec
from .conftest import REPO, SlurmCluster

pytestmark = pytest.mark.slurm


@pytest.fixture(params=TRANSPORTS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, slurm_cluster: SlurmCluster
) -> Iterator[SlurmBackend]:
    config = cluster_config(slurm_cluster, request.param, log_dir=tmp_path / "logs")
    backend = SlurmBackend(make_settings(tmp_path / "home"), clusters=Clusters((config,)))
    yield backend
    backend.close()


def test_nodes(backend: SlurmBackend, slurm_cluster: SlurmCluster) -> None:
    nodes = {node.name: node for node in backend.nodes()}
    assert set(slurm_cluster.static_nodes) <= set(nodes)
    n3 = nodes["n3"]
    assert n3.features == ("static", "bigmem")
    assert n3.gres == slurm_cluster.gres
    assert (n3.cpus_total, n3.mem_total_mb) == (2, 4000)
    assert "batch" in n3.partitions


def test_partitions_with_queue_depth(backend: SlurmBackend, slurm_cluster: SlurmCluster) -> None:
    spec = slurm_spec(name="depth", command=["sleep", "120"], resources={"nodes": 3})
    ids = [
        backend.submit(
            LaunchRequest(f"jdepth{i}", 1, f"depth-{i}-{time.time_ns()}", spec, {})
        ).native_id
        for i in range(3)
    ]
    try:
        deadline = time.monotonic() + 30
        while True:
            batch = {p.name: p for p in backend.partitions()}["batch"]
            if (batch.running, batch.pending) >= (1, 2):
                break
            assert time.monotonic() < deadline, batch
            time.sleep(0.5)
        assert batch.default
        assert batch.nodes == ("n1", "n2", "n3")
    finally:
        scancel(slurm_cluster, ids)


def test_drain_and_resume(backend: SlurmBackend, slurm_cluster: SlurmCluster) -> None:
    config = backend.cluster(None)
    if config.transport == "rest":
        with pytest.raises(PermanentBackendError, match="cannot change node states"):
            backend.drain("n2", "hpcbridge test")
        return
    try:
        backend.drain("n2", "hpcbridge test: ECC errors")
        n2 = {node.name: node for node in backend.nodes()}["n2"]
        assert n2.drained
        assert n2.reason == "hpcbridge test: ECC errors"
        with pytest.raises(ValueError, match="reason"):
            backend.drain("n2", "  ")
    finally:
        backend.resume("n2")
    assert not {node.name: node for node in backend.nodes()}["n2"].drained


def test_hpcbridge_nodes_cli(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    clusters_file = tmp_path / "clusters.yaml"
    clusters_file.write_text(
        "clusters:\n"
        "  lab:\n"
        "    transport: cli\n"
        f"    slurm_conf: {slurm_cluster.slurm_conf}\n"
        "  lab-rest:\n"
        "    default: true\n"
        "    transport: rest\n"
        f"    rest_url: {slurm_cluster.rest_url}\n"
        f"    rest_user: {slurm_cluster.rest_user}\n"
        f"    token_command: {' '.join(slurm_cluster.token_command)} 3600\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HPCBRIDGE_", "SLURM_"))}
    env.update(
        HPCBRIDGE_HOME=str(tmp_path / "home"),
        HPCBRIDGE_CLUSTERS_FILE=str(clusters_file),
        COLUMNS="200",
    )

    def hpcbridge(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hpcbridge", *args],
            check=False,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = hpcbridge("nodes", "--json")  # the default cluster: lab-rest
    assert listed.returncode == 0, listed.stderr
    assert {"n1", "n2", "n3"} <= {node["name"] for node in json.loads(listed.stdout)}
    table = hpcbridge("nodes", "--cluster", "lab")
    assert table.returncode == 0, table.stderr
    assert "bigmem" in table.stdout
    try:
        drained = hpcbridge("nodes", "drain", "n1", "--reason", "from the CLI", "--cluster", "lab")
        assert drained.returncode == 0, drained.stderr
        states = run_slurm(slurm_cluster, "sinfo", "-h", "-n", "n1", "-o", "%T|%E")
        assert states.strip() in ("drained|from the CLI", "draining|from the CLI")
        refused = hpcbridge("nodes", "drain", "n1", "--reason", "x")  # REST cannot
        assert refused.returncode == 1
        assert "cannot change node states" in refused.stderr
        unknown = hpcbridge("nodes", "--cluster", "nope")
        assert unknown.returncode == 3
        assert "unknown Slurm cluster 'nope'" in unknown.stderr
        parts = hpcbridge("nodes", "partitions", "--cluster", "lab")
        assert "batch*" in parts.stdout
    finally:
        resumed = hpcbridge("nodes", "resume", "n1", "--cluster", "lab")
    assert resumed.returncode == 0, resumed.stderr
    assert [c.name for c in load_clusters(clusters_file)] == ["lab", "lab-rest"]
