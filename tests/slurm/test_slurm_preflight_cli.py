"""Preflight through the installed ``hpcbridge`` on the real cluster: ``validate`` and
``submit`` refuse what the cluster cannot run with exit 2, one line naming what exists,
and store nothing; ``validate`` of a job it can run prints the scheduler's estimate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import SlurmCluster

pytestmark = pytest.mark.slurm

Run = Callable[..., subprocess.CompletedProcess[str]]

SPEC = """\
apiVersion: hpcbridge/v1
kind: Job
name: preflight
project: p
backend: slurm
command: ["true"]
"""

REFUSED = [
    (
        "placement: {partition: gpux}",
        "partition 'gpux' does not exist on cluster test-cli; partitions: batch, spot, prio, cloud",
    ),
    ("placement: {features: [nope]}", "has feature 'nope'; features there: bigmem, static"),
    (
        "resources: {gpus: 5}",
        "5 GPUs per node asked, but the nodes of partition 'batch' on "
        "cluster test-cli have at most 2",
    ),
    ("licences: {fluent: 9}", "9 'fluent' licences asked, but cluster test-cli has 4 in all"),
    (
        "licences: {abaqus: 1}",
        "licence 'abaqus' does not exist on cluster test-cli; licences: fluent (4)",
    ),
    (
        "resources: {mem: 9G}",
        "9216 MB per node asked, but the nodes of partition 'batch' on "
        "cluster test-cli have at most 4000 MB",
    ),
]


@pytest.fixture
def hpcbridge(slurm_cluster: SlurmCluster, tmp_path: Path) -> Run:
    clusters_file = tmp_path / "clusters.yaml"
    clusters_file.write_text(
        "clusters:\n"
        "  test-cli:\n"
        "    default: true\n"
        f"    slurm_conf: {slurm_cluster.slurm_conf}\n"
        f"    default_partition: {slurm_cluster.default_partition}\n"
        f"    log_dir: {tmp_path / 'logs'}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HPCBRIDGE_", "SLURM_"))}
    env.update(
        HPCBRIDGE_HOME=str(tmp_path / "home"),
        HPCBRIDGE_CLUSTERS_FILE=str(clusters_file),
        COLUMNS="200",
    )
    script = Path(sys.executable).parent / "hpcbridge"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def _jobs(run: Run) -> list[object]:
    listed = run("list", "--json")
    assert listed.returncode == 0, listed.stderr
    jobs = json.loads(listed.stdout)
    assert isinstance(jobs, list)
    return jobs


@pytest.mark.parametrize(("extra", "said"), REFUSED, ids=[e for e, _ in REFUSED])
def test_refused_before_anything_is_stored(
    hpcbridge: Run, tmp_path: Path, extra: str, said: str
) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC + extra + "\n")
    for command in ("validate", "submit"):
        done = hpcbridge(command, str(spec))
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert said in done.stderr, (command, done.stderr)
        assert "Traceback" not in done.stderr + done.stdout
    assert _jobs(hpcbridge) == []


def test_more_nodes_than_fit(hpcbridge: Run, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC + "resources: {nodes: 4}\n")
    done = hpcbridge("submit", str(spec))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "4 nodes asked, but partition 'batch' on cluster test-cli has 3" in done.stderr
    assert _jobs(hpcbridge) == []


def test_validate_prints_the_start_estimate(hpcbridge: Run, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC + "resources: {walltime: 1m}\n")
    done = hpcbridge("validate", str(spec))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid (slurm backend)" in done.stdout
    assert "the scheduler expects it to start at 20" in done.stdout
    as_json = hpcbridge("validate", "--json", str(spec))
    assert json.loads(as_json.stdout)["start_estimate"].startswith("20")
    assert _jobs(hpcbridge) == []


HABITS_REFUSED = [
    (
        "reservation: nosuch",
        "cluster test-cli: sbatch --test-only refused the job: Requested reservation is invalid",
    ),
    (
        "sbatch_args: ['--partition=spot']",
        "sbatch_args: --partition is set by hpcbridge; instead use placement.partition",
    ),
    ("priority: 5", "priority: 5 means sbatch --nice=-5"),
]


@pytest.mark.parametrize(("extra", "said"), HABITS_REFUSED, ids=[e for e, _ in HABITS_REFUSED])
def test_slurm_fields_refused_before_storing(
    hpcbridge: Run, tmp_path: Path, extra: str, said: str
) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC + extra + "\n")
    done = hpcbridge("submit", str(spec))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert said in done.stderr
    assert _jobs(hpcbridge) == []


def test_priority_and_sbatch_args_reach_slurm(
    hpcbridge: Run, tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC + "priority: -5\nsbatch_args: ['--begin=now+600']\n")
    job_id = hpcbridge("submit", str(spec)).stdout.strip()
    try:
        shown = json.loads(hpcbridge("status", job_id, "--json").stdout)
        native = shown["attempts"][-1]["native_id"]
        assert native
        seen = subprocess.run(
            ["scontrol", "show", "job", native],
            env=slurm_cluster.env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "Nice=5" in seen and "Reason=BeginTime" in seen
    finally:
        hpcbridge("cancel", job_id)
