"""The Slurm backend's submission with node caches, over a recording fake transport:
which jobs get ``--nodelist`` (unit speed; the real cluster is in test_slurm_locality)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.backends import LaunchRequest
from hpcbridge.backends.slurm import SlurmBackend
from hpcbridge.backends.slurm._config import ClusterConfig, Clusters
from hpcbridge.backends.slurm._render import BatchJob, sbatch_argv
from hpcbridge.config import Settings
from hpcbridge.spec import JobSpec, load_spec_document
from tests.staging.test_node_cache_placement import node

DIGEST = "sha256:" + "ab" * 32


class Recording:
    """The transport calls submission makes; the nodes are all idle."""

    def __init__(self) -> None:
        self.jobs: list[BatchJob] = []

    def submit(self, job: BatchJob) -> str:
        self.jobs.append(job)
        return str(100 + len(self.jobs))

    def nodes(self) -> list[Any]:
        return [node("n1"), node("n2"), node("n3", "idle", ("DRAIN",))]


def _spec(**fields: Any) -> JobSpec:
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "near",
        "backend": "slurm",
        "command": ["true"],
        "stage_in": [{"source": "/dev/null", "dest": "in.bin"}],
        **fields,
    }
    return load_spec_document(document, source="test")


@pytest.fixture
def backend(tmp_path: Path) -> tuple[SlurmBackend, Recording, Path]:
    settings = Settings(home=tmp_path / "home", required_tags=())
    cluster = ClusterConfig(
        name="lab",
        default_partition="batch",
        log_dir=tmp_path / "logs",
        node_cache_dir=str(tmp_path / "nc" / "{node}"),
    )
    fake = Recording()
    slurm = SlurmBackend(settings, clusters=Clusters((cluster,)), transports={"lab": fake})  # type: ignore[dict-item]
    holdings = settings.home / "slurm" / "lab.node_cache.json"
    holdings.parent.mkdir(parents=True)
    holdings.write_text(json.dumps({"n2": {"at": 1.0, "holds": {DIGEST: 5}}}))
    manifest = tmp_path / "data" / "inputs.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"files": [{"path": "x", "size": 5, "digest": DIGEST}]}))
    return slurm, fake, manifest


def _submit(backend: tuple[SlurmBackend, Recording, Path], spec: JobSpec) -> BatchJob:
    slurm, fake, manifest = backend
    env = {"HPCBRIDGE_INPUT_MANIFEST": str(manifest)}
    submitted = slurm.submit(LaunchRequest("j1", 1, f"t{len(fake.jobs)}", spec, env))
    job = fake.jobs[-1]
    assert ("placement" in submitted.details) == (job.nodelist is not None)
    return job


def test_a_job_whose_inputs_a_usable_node_holds_is_pinned_there(
    backend: tuple[SlurmBackend, Recording, Path],
) -> None:
    job = _submit(backend, _spec())
    assert job.nodelist == "n2" and "--nodelist=n2" in sbatch_argv(job)
    assert "-m hpcbridge.checkpoint.node_cache" in job.script


@pytest.mark.parametrize(
    "fields",
    [
        {"burst": {"eligible": True, "decided": "burst"}},  # its partition is the decision
        {"resources": {"nodes": 2}},
        {"resources": {"gpus": 1}},
        {"sbatch_args": ["--exclude=n1"]},
    ],
)
def test_jobs_placement_leaves_alone(
    backend: tuple[SlurmBackend, Recording, Path], fields: dict[str, Any]
) -> None:
    assert _submit(backend, _spec(**fields)).nodelist is None


def test_a_drained_holder_leaves_the_choice_to_slurm(
    backend: tuple[SlurmBackend, Recording, Path],
) -> None:
    slurm, _, _ = backend
    holdings = slurm._settings.home / "slurm" / "lab.node_cache.json"
    holdings.write_text(json.dumps({"n3": {"at": 1.0, "holds": {DIGEST: 5}}}))
    assert _submit(backend, _spec()).nodelist is None
