"""The REST transport against a live Slurm 24.11 (the cluster of ``scripts/slurm24-cluster``):
it negotiates v0.0.41, submits a job written for that schema and reads its end. The test
command starts that cluster and sets HPCBRIDGE_SLURM24=1; elsewhere, set it after
``scripts/slurm-cluster v24 start``."""

from __future__ import annotations

import os
import time
from pathlib import PurePosixPath

import pytest

from hpcbridge.backends import LaunchRequest
from hpcbridge.backends.slurm import ClusterConfig, render_batch
from hpcbridge.backends.slurm._rest import RestTransport
from hpcbridge.spec import load_spec_document

from .conftest import REPO

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.environ.get("HPCBRIDGE_SLURM24") != "1",
        reason="needs the Slurm 24.11 test cluster: HPCBRIDGE_SLURM24=1 after "
        "'scripts/slurm-cluster v24 start'",
    ),
]


def test_a_job_through_v0_0_41() -> None:
    cluster = ClusterConfig(
        name="test24",
        transport="rest",
        rest_url="http://127.0.0.1:7820",
        rest_user="root",
        token_command=(str(REPO / "scripts" / "slurm24-cluster"), "token"),
    )
    transport = RestTransport(cluster, env=dict(os.environ))
    assert transport.version == "v0.0.41"
    spec = load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "v24",
            "backend": "slurm",
            "command": ["sh", "-c", "exit 4"],
            "resources": {"walltime": "2m", "mem": "600M"},
            "checkpoint": {"grace": 30},
            "priority": -2,
            "licences": {"fluent": 1},
        }
    )
    job = render_batch(
        LaunchRequest("jv24", 1, "tokv24", spec, {}),
        log_dir=PurePosixPath("/tmp"),  # inside the chroot
        workdir="/tmp",
        default_partition="batch",
        environment={"PATH": "/usr/bin:/bin"},
    )
    native_id = transport.submit(job)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = {r.key: r for r in transport.own_jobs()}.get(native_id)
        if seen is not None and seen.state in ("COMPLETED", "FAILED"):
            break
        time.sleep(1)
    assert seen is not None, native_id
    assert (seen.state, seen.exit_code, seen.name) == ("FAILED", 4, "hb-tokv24")
    assert (seen.time_limit_s, seen.licences, seen.mem_per_node_mb) == (120, {"fluent": 1}, 600)
    assert transport.licences() == {"fluent": 4}
    transport.close()
