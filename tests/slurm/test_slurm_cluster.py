"""Integration on the real test cluster, through the real Reconciler and a MemoryStore:
node lists, licences, GPUs, memory, walltime and arrays."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbridge.backends import AttemptRef, LaunchRequest, Phase
from hpcbridge.backends.slurm import Clusters, SlurmBackend
from hpcbridge.states import FailureClass, JobState

from ._helpers import cluster_config, make_settings, scancel
from ._rig import Rig, slurm_spec
from .conftest import SlurmCluster

pytestmark = pytest.mark.slurm
PY = sys.executable


@pytest.fixture
def backend(tmp_path: Path, slurm_cluster: SlurmCluster) -> Iterator[SlurmBackend]:
    clusters = Clusters((cluster_config(slurm_cluster, "cli", log_dir=tmp_path / "logs"),))
    backend = SlurmBackend(make_settings(tmp_path / "home"), clusters=clusters)
    yield backend
    backend.close()


@pytest.fixture
def rig(backend: SlurmBackend, tmp_path: Path, slurm_cluster: SlurmCluster) -> Iterator[Rig]:
    rig = Rig(backend, tmp_path)
    try:
        yield rig
    finally:
        scancel(slurm_cluster, rig.native_ids())


def test_a_multi_node_job_sees_its_node_list(rig: Rig, tmp_path: Path) -> None:
    out = tmp_path / "nodes.json"
    program = (
        "import json, os, sys; json.dump(os.environ['SLURM_JOB_NODELIST'], open(sys.argv[1], 'w'))"
    )
    job_id = rig.submit(
        slurm_spec(name="multinode", command=[PY, "-c", program, str(out)], resources={"nodes": 3})
    )
    job = rig.wait_done(job_id)
    assert job.state is JobState.SUCCEEDED, job
    attempt = rig.attempts(job_id)[-1]
    assert attempt.nodes == ("n1", "n2", "n3")
    assert json.loads(out.read_text()) == "n[1-3]"
    assert attempt.native_id is not None
    assert attempt.details["name"].startswith("hb-")


def test_licence_gating_shows_the_pending_reason_in_words(
    rig: Rig, slurm_cluster: SlurmCluster
) -> None:
    holder = rig.submit(
        slurm_spec(name="lic-holder", command=["sleep", "300"], licences={"fluent": 3})
    )
    rig.wait_state(holder, {JobState.RUNNING})
    waiter = rig.submit(slurm_spec(name="lic-waiter", command=["true"], licences={"fluent": 2}))
    # Slurm may first say Priority, then Licenses once its main scheduler has run again.
    rig.until(
        lambda: rig.job(waiter).reason == "waiting for 2 licences of fluent",
        90,
        "the licence reason",
    )
    assert rig.job(waiter).state is JobState.QUEUED
    # The waiter first: once the holder's licences are free Slurm may start it at once.
    rig.cancel(waiter)
    assert rig.wait_done(waiter).state is JobState.CANCELLED
    rig.cancel(holder)
    assert rig.wait_done(holder).state is JobState.CANCELLED


def test_gpu_jobs_land_on_gpu_nodes(rig: Rig, tmp_path: Path, slurm_cluster: SlurmCluster) -> None:
    out = tmp_path / "gpu.json"
    program = (
        "import json, os, sys; json.dump([os.environ.get('CUDA_VISIBLE_DEVICES'), "
        "os.environ['SLURMD_NODENAME']], open(sys.argv[1], 'w'))"
    )
    job_id = rig.submit(
        slurm_spec(
            name="gpu",
            command=[PY, "-c", program, str(out)],
            resources={"gpus": 2, "gpu_type": "fake"},
            placement={"features": ["bigmem"]},
        )
    )
    assert rig.wait_done(job_id).state is JobState.SUCCEEDED
    devices, node = json.loads(out.read_text())
    assert node == "n3"  # the only node with the feature bigmem; every static node has GPUs
    assert devices == "0,1"
    assert rig.attempts(job_id)[-1].nodes == ("n3",)


def test_a_job_over_its_memory_is_oom(rig: Rig) -> None:
    hog = "import time; x = b'a' * (700 * 1024 * 1024); time.sleep(30)"
    job_id = rig.submit(
        slurm_spec(name="memhog", command=[PY, "-c", hog], resources={"mem": "200M"})
    )
    job = rig.wait_done(job_id, timeout_s=90)
    assert (job.state, job.failure_class) == (JobState.FAILED, FailureClass.OOM), job
    attempt = rig.attempts(job_id)[-1]
    assert attempt.reason is not None
    assert "200 MB" in attempt.reason
    assert attempt.signal == 9


def test_an_app_error_keeps_its_exit_code_and_stderr(rig: Rig, backend: SlurmBackend) -> None:
    program = "import sys; print('about to fail', file=sys.stderr); sys.exit(3)"
    job_id = rig.submit(slurm_spec(name="fails", command=[PY, "-c", program]))
    job = rig.wait_done(job_id)
    assert (job.state, job.failure_class, job.exit_code) == (
        JobState.FAILED,
        FailureClass.APP_ERROR,
        3,
    )
    attempt = rig.attempts(job_id)[-1]
    ref = AttemptRef(
        attempt.job_id, attempt.number, attempt.token, attempt.native_id, attempt.details
    )
    _, stderr = backend.log_paths(ref)
    assert stderr is not None
    assert "about to fail" in stderr.read_text()


@pytest.mark.slow
def test_a_job_past_its_time_limit_is_a_timeout(
    backend: SlurmBackend, slurm_cluster: SlurmCluster
) -> None:
    """Slurm's own TIMEOUT (the reconciler would kill it at its walltime too: also timeout)."""
    spec = slurm_spec(name="timeout", command=["sleep", "300"], resources={"walltime": "1m"})
    request = LaunchRequest("jtimeout", 1, "timeout-token", spec, {})
    submitted = backend.submit(request)
    ref = AttemptRef("jtimeout", 1, request.token, submitted.native_id, submitted.details)
    try:
        deadline = time.monotonic() + 150
        while (seen := backend.poll([ref], time.time())[ref.token]).phase not in (
            Phase.SUCCEEDED,
            Phase.FAILED,
        ):
            assert time.monotonic() < deadline, seen
            time.sleep(2)
    finally:
        scancel(slurm_cluster, [submitted.native_id])
    assert (seen.phase, seen.failure_class) == (Phase.FAILED, FailureClass.TIMEOUT), seen
    assert seen.details["slurm"]["state"] == "TIMEOUT"
    assert seen.reason == "Slurm stopped the job at its time limit"


def test_a_1000_task_array_is_one_sbatch_and_every_task_is_tracked(
    backend: SlurmBackend, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    n = 1000
    spec = slurm_spec(name="sweep", command=["true"])
    requests = [
        LaunchRequest(f"jsweep.{i}", 1, f"sweepkey.{i}", spec, {"HPCBRIDGE_JOB_ID": f"jsweep.{i}"})
        for i in range(n)
    ]
    transport = backend.transport()
    before = transport.commands
    submitted = backend.submit_array(requests, throttle=50)
    assert transport.commands - before == 1  # ONE sbatch --array=0-999%50
    refs = [
        AttemptRef(r.job_id, 1, r.token, s.native_id, s.details)
        for r, s in zip(requests, submitted, strict=True)
    ]
    array_id = submitted[0].native_id.split("_")[0]
    try:
        assert {s.native_id for s in submitted} == {f"{array_id}_{i}" for i in range(n)}
        before = transport.commands
        seen = backend.poll(refs, time.time())
        assert transport.commands - before <= 2  # one squeue, at most one sacct
        assert set(seen) == {r.token for r in refs}
        assert Phase.UNKNOWN not in {o.phase for o in seen.values()}
        # find() adopts a task after a crash from its token alone
        found = backend.find(AttemptRef("jsweep.777", 1, "sweepkey.777", None, {}))
        assert found is not None
        assert found.native_id == f"{array_id}_777"
        # let some finish, then cancel the rest: every task reaches an end, counted once
        time.sleep(3)
    finally:
        scancel(slurm_cluster, [array_id])
    deadline = time.monotonic() + 90
    while True:
        before = transport.commands
        seen = backend.poll(refs, time.time())
        assert transport.commands - before <= 2
        phases = [o.phase for o in seen.values()]
        if all(p in (Phase.SUCCEEDED, Phase.FAILED) for p in phases):
            break
        assert time.monotonic() < deadline, {p: phases.count(p) for p in set(phases)}
        time.sleep(2)
    succeeded = [o for o in seen.values() if o.phase is Phase.SUCCEEDED]
    cancelled = [o for o in seen.values() if o.failure_class is FailureClass.CANCELLED]
    assert succeeded
    assert cancelled
    assert len(succeeded) + len(cancelled) == n
