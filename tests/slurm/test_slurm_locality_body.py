"""The node a placed job is pinned to, as each transport writes it. Pure: no cluster.

slurmrestd names the field differently per data parser version; each form below was
submitted to a live slurmrestd and the job ran on the named node (22.05: v0.0.38; 24.11:
v0.0.40 and v0.0.41). v0.0.38 answers HTTP 400 ``Disabled key: "required_nodes"``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hpcbridge.backends import LaunchRequest
from hpcbridge.backends.slurm import ClusterConfig, Clusters, SlurmBackend, sbatch_argv
from hpcbridge.backends.slurm._rest_versions import SUPPORTED_VERSIONS, submit_body

from ._helpers import make_settings
from .test_slurm_render import batch, make_spec

NODE_FIELDS = {
    "v0.0.38": ("nodelist", "n2"),
    "v0.0.40": ("required_nodes", ["n2"]),
    "v0.0.41": ("required_nodes", ["n2"]),
}


def test_every_rest_version_hpcbridge_speaks_has_a_node_field() -> None:
    assert set(NODE_FIELDS) == set(SUPPORTED_VERSIONS)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_a_placed_job_names_its_node_in_the_rest_body(version: str) -> None:
    field, value = NODE_FIELDS[version]
    spec = make_spec(resources={"gpus": 1, "gpu_type": "fake"})
    placed = submit_body(dataclasses.replace(batch(spec), nodelist="n2"), version)["job"]
    assert placed[field] == value
    unplaced = submit_body(batch(spec), version)["job"]
    assert "nodelist" not in unplaced and "required_nodes" not in unplaced


def test_a_placed_job_names_its_node_on_the_command_line() -> None:
    job = dataclasses.replace(batch(make_spec()), nodelist="n2")
    assert "--nodelist=n2" in sbatch_argv(job)
    assert not any(arg.startswith("--nodelist") for arg in sbatch_argv(batch(make_spec())))


def test_the_job_script_steps_run_with_the_clusters_python(tmp_path: Path) -> None:
    """``job_python`` replaces this control plane's interpreter where a job has steps of
    its own (staged inputs, containers); jobs without such steps get no interpreter."""
    spec = make_spec()
    clusters = Clusters((ClusterConfig(name="lab", job_python="/opt/hb/bin/python"),))
    backend = SlurmBackend(make_settings(tmp_path / "home"), clusters=clusters)
    cluster = clusters.get("lab")
    own = {"HPCBRIDGE_PYTHON": "/home/me/.venv/bin/python", "HPCBRIDGE_JOB_ID": "j1"}
    staged, _ = backend._with_status_dir(LaunchRequest("j1", 1, "t1", spec, own), cluster)
    assert staged.env["HPCBRIDGE_PYTHON"] == "/opt/hb/bin/python"
    plain, _ = backend._with_status_dir(
        LaunchRequest("j1", 1, "t2", spec, {"HPCBRIDGE_JOB_ID": "j1"}), cluster
    )
    assert "HPCBRIDGE_PYTHON" not in plain.env
