"""Shared pieces of the Slurm tests: cluster configs for both transports and a harness.

``SlurmHarness`` implements the interface of ``tests/backends/_harness.py`` so that the
backend contract suite runs unchanged against the real cluster (``test_slurm_contract.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.backends import AttemptRef, Deferred, LaunchRequest, Observation, Phase
from hpcbridge.backends.slurm import ClusterConfig, Clusters, SlurmBackend
from hpcbridge.config import Settings
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.store import new_token

from .conftest import SlurmCluster

FINISHED = frozenset({Phase.SUCCEEDED, Phase.FAILED})
POLL_PAUSE_S = 0.25
TRANSPORTS = ("cli", "rest")


def cluster_config(
    cluster: SlurmCluster, transport: str = "cli", log_dir: Path | None = None, **overrides: Any
) -> ClusterConfig:
    """The test cluster as hpcbridge's cluster config, through ``transport``."""
    values: dict[str, Any] = {
        "name": f"test-{transport}",
        "transport": transport,
        "slurm_conf": cluster.slurm_conf,
        "default_partition": cluster.default_partition,
        "spot_partitions": (cluster.preemptible_partition,),
        "log_dir": log_dir,
        "usage_wait_s": 0.0,
        "command_timeout_s": 30.0,
        # Tests wait for state changes; the 30 s default spares a real slurmctld.
        "queue_interval_s": 0.5,
    }
    if transport == "rest":
        values.update(
            rest_url=cluster.rest_url,
            rest_user=cluster.rest_user,
            token_command=(*cluster.token_command, "3600"),
        )
    values.update(overrides)
    return ClusterConfig(**values)


def make_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "database_url": "memory://",
        "required_tags": (),
        "poll_interval_s": 0.2,
        "kill_grace_s": 1.0,
        "lost_grace_s": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


def slurm_env(cluster: SlurmCluster) -> dict[str, str]:
    return cluster.env()


def run_slurm(cluster: SlurmCluster, *argv: str, check: bool = True) -> str:
    return subprocess.run(
        list(argv), check=check, capture_output=True, text=True, env=cluster.env(), timeout=60
    ).stdout


def scancel(cluster: SlurmCluster, native_ids: Collection[str]) -> None:
    """Cancel jobs a test started; harmless for finished ones."""
    ids = sorted({native_id.split("_", 1)[0] for native_id in native_ids if native_id})
    if ids:
        run_slurm(cluster, "scancel", *ids, check=False)


def cancel_jobs_except(cluster: SlurmCluster, job_ids: Collection[str]) -> None:
    """Cancel every job in the queue that belongs to none of ``job_ids`` (hpcbridge job ids,
    which the sbatch comment carries: a submission not yet recorded is kept too)."""
    strangers = []
    for line in run_slurm(cluster, "squeue", "-h", "-o", "%F|%k").splitlines():
        native_id, _, comment = line.partition("|")
        if not any(job_id in comment for job_id in job_ids):
            strangers.append(native_id)
    scancel(cluster, strangers)


def batch_script_pids(native_id: str, cluster_name: str) -> list[int]:
    """PIDs of the batch script of a job running on this machine (slurmd -N nodes) for the
    cluster called ``cluster_name`` (both test clusters run here, with their own job ids)."""
    job_id = native_id.split("_", 1)[0]
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if not any(part.endswith(b"slurm_script") for part in cmdline):
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"SLURM_CLUSTER_NAME={cluster_name}".encode() not in environ:
            continue
        if f"SLURM_JOB_ID={job_id}".encode() in environ or (
            "_" in native_id and f"SLURM_ARRAY_JOB_ID={job_id}".encode() in environ
        ):
            pids.append(int(entry.name))
    return pids


class SlurmHarness:
    """The contract-suite harness for the Slurm backend on the real test cluster."""

    name = "slurm"

    def __init__(self, root: Path, cluster: SlurmCluster, transport: str) -> None:
        self.cluster = cluster
        self.settings = make_settings(root / "home")
        self.clusters = Clusters((cluster_config(cluster, transport, log_dir=root / "logs"),))
        self.shared_dir = root / "shared"
        self.shared_dir.mkdir(parents=True)
        self.python = cluster.job_python
        self.backend: SlurmBackend = SlurmBackend(
            self.settings, clusters=self.clusters, env=cluster.env()
        )
        self.native_ids: list[str] = []
        self._count = 0

    def spec(self, **fields: Any) -> JobSpec:
        document: dict[str, Any] = {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "contract",
            "command": ["true"],
            "backend": "slurm",
        }
        document.update(fields)
        return load_spec_document({k: v for k, v in document.items() if v is not None})

    def launch(self, spec: JobSpec, env: Mapping[str, str] | None = None) -> AttemptRef:
        self._count += 1
        job_id = f"jc{self._count:04d}"
        request = LaunchRequest(
            job_id=job_id,
            attempt=1,
            token=new_token(),
            spec=spec,
            env=dict(env or {"HPCBRIDGE_JOB_ID": job_id, "HPCBRIDGE_ATTEMPT": "1"}),
        )
        outcome = self.backend.submit(request)
        if isinstance(outcome, Deferred):
            pytest.fail(f"slurm deferred {job_id}: {outcome.reason}")
        self.native_ids.append(outcome.native_id)
        return AttemptRef(job_id, 1, request.token, outcome.native_id, dict(outcome.details))

    def observe(self, ref: AttemptRef) -> Observation:
        return self.backend.poll([ref], time.time())[ref.token]

    def wait(
        self, ref: AttemptRef, until: Collection[Phase] = FINISHED, timeout_s: float = 20.0
    ) -> Observation:
        deadline = time.monotonic() + timeout_s + 10.0  # Slurm needs a little longer
        while True:
            seen = self.observe(ref)
            if seen.phase in until:
                return seen
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{ref.job_id} (Slurm job {ref.native_id}) still {seen.phase} after "
                    f"{timeout_s}s, expected one of {sorted(until)}: {seen}"
                )
            time.sleep(POLL_PAUSE_S)

    def restart(self) -> SlurmBackend:
        self.backend.close()
        self.backend = SlurmBackend(self.settings, clusters=self.clusters, env=self.cluster.env())
        return self.backend

    def kill_outside(self, ref: AttemptRef) -> None:
        """SIGKILL the job's batch script, as an administrator's ``kill -9`` would."""
        assert ref.native_id is not None
        deadline = time.monotonic() + 10
        while not (pids := batch_script_pids(ref.native_id, self.cluster.name)):
            if time.monotonic() > deadline:
                pytest.fail(f"no batch script process for Slurm job {ref.native_id}")
            time.sleep(0.1)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        scancel(self.cluster, self.native_ids)
        self.backend.close()
