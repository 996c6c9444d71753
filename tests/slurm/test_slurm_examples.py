"""The examples/slurm-*.yaml files: valid for the Slurm backend, and ``hpcbridge run`` of the
hello example on the test cluster as a user would type it.

Until pyproject.toml registers the backend (``slurm = "hpcbridge.backends.slurm:SlurmBackend"``
in ``[project.entry-points."hpcbridge.backends"]``), the CLI test registers it for its
subprocess with a ``*.dist-info`` directory on PYTHONPATH, which is how entry points are found.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hpcbridge.backends.slurm import SlurmBackend
from hpcbridge.spec import load_spec_file

from ._helpers import make_settings
from .conftest import REPO, SlurmCluster

pytestmark = pytest.mark.slurm

EXAMPLES = sorted((REPO / "examples").glob("slurm-*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_a_valid_slurm_job(path: Path, tmp_path: Path) -> None:
    spec = load_spec_file(path)
    assert spec.backend == "slurm"
    backend = SlurmBackend(make_settings(tmp_path))  # no clusters file: the default cluster
    assert backend.check(spec) == []


def entry_point_dir(root: Path) -> Path:
    info = root / "hpcbridge_slurm_backend-0.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hpcbridge-slurm-backend\nVersion: 0.0.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[hpcbridge.backends]\nslurm = hpcbridge.backends.slurm:SlurmBackend\n"
    )
    return root


def test_hpcbridge_run_on_the_test_cluster(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    clusters_file = tmp_path / "clusters.yaml"
    clusters_file.write_text(
        "clusters:\n"
        "  lab:\n"
        "    default: true\n"
        "    transport: cli\n"
        f"    slurm_conf: {slurm_cluster.slurm_conf}\n"
        f"    log_dir: {tmp_path / 'logs'}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HPCBRIDGE_", "SLURM_"))}
    env.update(
        HPCBRIDGE_HOME=str(tmp_path / "home"),
        HPCBRIDGE_CLUSTERS_FILE=str(clusters_file),
        HPCBRIDGE_POLL_INTERVAL_S="0.3",
        PYTHONPATH=os.pathsep.join(
            [str(entry_point_dir(tmp_path / "ep")), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep),
        COLUMNS="200",
    )
    done = subprocess.run(
        [sys.executable, "-m", "hpcbridge", "run", "examples/slurm-hello.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hello from" in done.stdout
    assert "Slurm job" in done.stdout
    said = re.search(r"hello from \S+ \((\w+)\), Slurm job (\d+)", done.stdout)
    assert said is not None, done.stdout
    assert said.group(1) in slurm_cluster.static_nodes
