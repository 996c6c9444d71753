"""Self-healing on the real test clusters, with the checkpointing example job.

A node dies under a training job, and a spot job is preempted by a high-priority one: each
time the job resumes from its last valid checkpoint and its result equals an uninterrupted
run's, byte for byte; on Slurm 22.05 and 24.11, through the CLI and (24.11) slurmrestd
(``versioned_rig``; conftest.RIG_RUNS says why not 22.05 over REST).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from hpcbridge.backends.slurm import Clusters, NodeRecord, SlurmBackend
from hpcbridge.policy import QuarantinePolicy
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import JobId

from ._faults import kill_node
from ._helpers import cluster_config, make_settings, run_slurm, scancel
from ._rig import Rig, slurm_spec
from .conftest import REPO, SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
TRAIN = REPO / "examples" / "train_checkpointed.py"
SAVE_EVERY = 10
STEP_S = 0.1
STEPS = ["--steps", "250", "--save-every", str(SAVE_EVERY), "--step-sleep", str(STEP_S)]


def reference_result(tmp_path: Path, cluster: SlurmCluster) -> bytes:
    """An uninterrupted run, by the jobs' own Python (floats may differ between versions)."""
    out = tmp_path / "reference.json"
    env = {
        **os.environ,
        "HPCBRIDGE_CHECKPOINT_DIR": str(tmp_path / "reference-ckpt"),
        "PYTHONPATH": str(REPO / "src"),
    }
    fast = ["--steps", "250", "--save-every", str(SAVE_EVERY)]
    argv = [*cluster.on_node, cluster.job_python, str(TRAIN), str(out), *fast]
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return out.read_bytes()


def training_spec(result: Path, python: str, **fields: object) -> dict[str, object]:
    return {
        "name": "train",
        "command": [python, str(TRAIN), str(result), *STEPS],
        "env": {"PYTHONPATH": str(REPO / "src")},
        "checkpoint": {"interval": "1h", "keep": 3, "grace": "8s", "signal": "SIGUSR1"},
        "retry": {"max_attempts": 4, "backoff": {"initial": "1s", "jitter": 0}},
        **fields,
    }


def checkpoints(rig: Rig, job_id: JobId) -> list[Path]:
    return sorted((rig.checkpoints / job_id).glob("step-*"))


def resumed_from(attempt_stdout: object) -> int:
    """The step the last run started at, from the example's own output."""
    text = Path(str(attempt_stdout)).read_text()
    starts = [int(line.split()[-1]) for line in text.splitlines() if line.startswith("start at")]
    return starts[-1]


def on_cluster(rig: Rig) -> SlurmCluster:
    assert rig.cluster is not None, "versioned_rig names its cluster"
    return rig.cluster


def test_a_dead_node_costs_at_most_one_checkpoint_interval(
    versioned_rig: Rig, tmp_path: Path
) -> None:
    rig, slurm_cluster = versioned_rig, on_cluster(versioned_rig)
    expected = reference_result(tmp_path, slurm_cluster)
    result = tmp_path / "result.json"
    job_id = rig.submit(slurm_spec(**training_spec(result, slurm_cluster.job_python)))
    rig.wait_state(job_id, {JobState.RUNNING}, timeout_s=60)
    [first] = rig.attempts(job_id)
    [node] = first.nodes
    rig.until(lambda: len(checkpoints(rig, job_id)) >= 2, 60, "two checkpoints")
    killed_at = time.time()
    kill_node(slurm_cluster, node, str(first.native_id))  # the fixture repairs it afterwards
    job = rig.wait_done(job_id, timeout_s=240)
    assert job.state is JobState.SUCCEEDED, (job.reason, rig.attempts(job_id))
    attempts = rig.attempts(job_id)
    failed, last = attempts[0], attempts[-1]
    assert failed.failure_class is FailureClass.NODE_FAILURE, failed
    assert node in (failed.reason or "")
    assert node not in last.nodes  # it ran again elsewhere...
    assert resumed_from(last.details["stdout"]) > 0  # ...from a checkpoint, not from step 0
    assert result.read_bytes() == expected
    # The work lost is what ran between the last checkpoint and the node's death.
    last_checkpoint = failed.details["last_checkpoint_at"]
    assert last_checkpoint is not None
    assert killed_at - last_checkpoint <= SAVE_EVERY * STEP_S + 2.0  # one interval + slack
    assert failed.details["lost_core_hours"] > 0
    recovered = [e for e in rig.store.events(job_id) if "time_to_recover_s" in e.data]
    assert recovered
    assert recovered[0].data["recovered_from"] == "node_failure"


def test_a_preempted_spot_job_saves_resumes_and_matches(versioned_rig: Rig, tmp_path: Path) -> None:
    rig, slurm_cluster = versioned_rig, on_cluster(versioned_rig)
    expected = reference_result(tmp_path, slurm_cluster)
    result = tmp_path / "result.json"
    spot = {"partition": slurm_cluster.preemptible_partition}
    every_node = {"nodes": len(slurm_cluster.static_nodes)}
    python = slurm_cluster.job_python
    job_id = rig.submit(
        slurm_spec(**training_spec(result, python, placement=spot, resources=every_node))
    )
    rig.wait_state(job_id, {JobState.RUNNING}, timeout_s=60)
    rig.until(lambda: len(checkpoints(rig, job_id)) >= 1, 60, "a first checkpoint")
    urgent = rig.submit(
        slurm_spec(
            name="prio",
            command=["sleep", "3"],
            placement={"partition": slurm_cluster.priority_partition},
            resources={**every_node, "tasks_per_node": slurm_cluster.cpus_per_node},
        )
    )
    assert rig.wait_done(urgent, timeout_s=120).state is JobState.SUCCEEDED
    job = rig.wait_done(job_id, timeout_s=240)
    assert job.state is JobState.SUCCEEDED, (job.reason, rig.attempts(job_id))
    attempts = rig.attempts(job_id)
    assert attempts[0].failure_class is FailureClass.PREEMPTED
    assert attempts[0].details["partition_kind"] == "spot"  # the preemption SLO's label
    ended = [e for e in rig.store.events(job_id) if e.kind == "attempt_failed"]
    assert ended[0].data["partition_kind"] == "spot"
    assert attempts[-1].state is AttemptState.SUCCEEDED
    # Whether Slurm requeued the job (it outlived the grace time) or the job exited asking
    # for a requeue (exit code 75) and hpcbridge resubmitted it, the class is the same.
    assert "requeue" in (attempts[0].reason or ""), attempts[0].reason
    assert result.read_bytes() == expected
    assert resumed_from(attempts[-1].details["stdout"]) > 0
    # It saved on the preemption signal, within the grace time: little work was lost.
    assert attempts[0].details["lost_s"] < 8.0
    saved = [e for e in rig.store.events(job_id) if e.kind == "checkpoint_saved"]
    assert saved, "the job's checkpoint events reached the event log"


# -- node quarantine -----------------------------------------------------------------------------


def fail_node_under(rig: Rig, cluster: SlurmCluster, node: str, job_id: JobId) -> None:
    """Slurm declares the node down while the job runs on it (NODE_FAIL); the node comes
    back before hpcbridge hears of the failure, as a rebooted node would."""
    rig.wait_state(job_id, {JobState.RUNNING}, timeout_s=60)
    native_id = str(rig.attempts(job_id)[-1].native_id)
    run_slurm(cluster, "scontrol", "update", f"nodename={node}", "state=down", "reason=itest")
    try:
        deadline = time.monotonic() + 60
        while run_slurm(cluster, "squeue", "-h", "-j", native_id, "-t", "R", "-o", "%T").strip():
            assert time.monotonic() < deadline, f"Slurm never failed job {native_id}"
            time.sleep(0.5)
    finally:
        run_slurm(cluster, "scontrol", "update", f"nodename={node}", "state=resume", check=False)
    rig.until(lambda: rig.job(job_id).state.terminal, 60, f"{job_id} to fail")


def node(rig: Rig, name: str) -> NodeRecord:
    return {n.name: n for n in rig.backend.nodes()}[name]


@pytest.mark.parametrize("max_drained", [0.5, 0.2])
def test_a_node_that_keeps_failing_jobs_is_drained_within_the_guard_rail(
    slurm_cluster: SlurmCluster, tmp_path: Path, max_drained: float
) -> None:
    """Two node failures on n3 drain it with a reason naming hpcbridge and the evidence,
    unless that would drain more than ``max_drained`` of a partition (1 of 3 nodes is 33%):
    then hpcbridge refuses and says so. An operator returns the node afterwards."""
    policy = QuarantinePolicy(failures=2, max_drained_fraction=max_drained)
    clusters = Clusters((cluster_config(slurm_cluster, "cli", log_dir=tmp_path / "logs"),))
    backend = SlurmBackend(make_settings(tmp_path / "home"), clusters=clusters)
    rig = Rig(backend, tmp_path, quarantine=policy)
    rig.tolerate_errors = True  # a refusal is reported as a cycle error, on purpose
    try:
        jobs = []
        for i in range(2):
            job_id = rig.submit(
                slurm_spec(
                    name=f"victim-{i}", command=["sleep", "300"], placement={"features": ["bigmem"]}
                )
            )
            fail_node_under(rig, slurm_cluster, "n3", job_id)
            assert rig.job(job_id).failure_class is FailureClass.NODE_FAILURE
            jobs.append(job_id)
        rig.cycle()
        n3 = node(rig, "n3")
        events = {e.kind: e for e in rig.store.events(jobs[-1])}
        if max_drained >= 1 / 3:
            assert n3.drained
            assert n3.reason.startswith("hpcbridge: 2 node_failure failures"), n3.reason
            assert "node_drained" in events
            backend.resume("n3")  # the operator's word (hpcbridge nodes resume n3)
            assert not node(rig, "n3").drained
        else:
            assert not n3.drained, n3
            refused = events["node_quarantine_refused"]
            assert "would have 1 of 3 nodes drained" in (refused.reason or ""), refused.reason
    finally:
        run_slurm(slurm_cluster, "scontrol", "update", "nodename=n3", "state=resume", check=False)
        scancel(slurm_cluster, rig.native_ids())
        backend.close()
