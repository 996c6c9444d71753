"""Fault injection on the real Slurm test cluster: single jobs and a sweep run through a
control plane whose every backend call and store write may fail before or after taking
effect, and which dies at random points and restarts (tests/faults has the harness).

0 duplicate submissions (each token reaches sbatch once), 0 duplicate executions, 0 lost
jobs, records equal to what the programs wrote down when they ended.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.backends.slurm import Clusters, SlurmBackend
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import load_spec_document
from hpcbridge.store import SqlStore
from tests.faults._driver import Driver, check_truth
from tests.faults._inject import FaultPlan

from ._helpers import cluster_config, make_settings, scancel
from .conftest import SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SINGLE_JOBS = 30
TASKS = 60
PROGRAM = 'echo "$HPCBRIDGE_ATTEMPT" >>"$1/$HPCBRIDGE_JOB_ID"'


def _spec(name: str, out: Path, **fields: Any) -> Any:
    return load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": name,
            "backend": "slurm",
            "command": ["/bin/sh", "-c", PROGRAM, "sh", str(out)],
            "resources": {"walltime": "5m"},
            "retry": {
                "max_attempts": 6,
                "backoff": {"initial": "1s", "max": "2s"},
                "retry_on": ["lost", "node_failure"],
            },
            **fields,
        }
    )


@pytest.mark.parametrize("seed", [11])
def test_slurm_under_faults_and_crashes(
    slurm_cluster: SlurmCluster, tmp_path: Path, seed: int
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    clusters = Clusters((cluster_config(slurm_cluster, "cli", log_dir=tmp_path / "logs"),))
    settings = make_settings(tmp_path / "home")

    client = Client(Settings(home=tmp_path / "home", database_url=url))
    specs = [_spec(f"single-{i}", out) for i in range(SINGLE_JOBS)]
    specs.append(_spec("sweep", out, array={"indices": f"0-{TASKS - 1}"}))
    client.store.create_jobs(
        [row for spec in specs for row in Client._rows_for(spec, None)],
        now=time.time(),
        actor="test",
    )
    client.close()

    plan = FaultPlan(seed=seed, error_rate=0.1, crash_rate=0.03)
    backends: list[SlurmBackend] = []

    def make_backend() -> SlurmBackend:
        backends.append(SlurmBackend(settings, clusters=clusters))
        return backends[-1]

    driver = Driver(
        url=url,
        backend_name="slurm",
        make_backend=make_backend,
        bury=lambda backend: backend.close(),
        plan=plan,
        root=tmp_path,
        lost_grace_s=30.0,
    )
    driver.start()
    try:
        deadline = time.monotonic() + 120
        while not driver.all_done() and time.monotonic() < deadline and driver.crashes < 15:
            driver.cycle()
            time.sleep(0.2)
        plan.enabled = False
        driver.run_until_done(timeout_s=240, pause_s=0.3)
    finally:
        driver.close()
        store = SqlStore(url)
        try:
            native = [
                a.native_id
                for job in store.list_jobs()
                for a in store.attempts(job.job_id)
                if a.native_id
            ]
        finally:
            store.close()
        scancel(slurm_cluster, [n for n in native if n])
    assert driver.crashes > 0, plan.injected
    runs = {p.name: [int(n) for n in p.read_text().split()] for p in out.iterdir()}
    problems = check_truth(url, runs, driver.sent)
    assert problems == [], f"seed {seed}: {problems[:20]} (faults: {dict(plan.injected)})"
    assert len(runs) == SINGLE_JOBS + TASKS
