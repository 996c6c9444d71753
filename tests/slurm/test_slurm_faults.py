"""Faults on the real test cluster: a dead slurmd, preemption, a dead slurmctld.

Each test restores the cluster with ``scripts/slurm-cluster start`` (idempotent: it restarts
missing daemons and resumes nodes left down).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from hpcbridge.backends import AttemptRef
from hpcbridge.errors import TransientBackendError
from hpcbridge.states import AttemptState, FailureClass, JobState

from ._faults import kill_daemon, restore, save_job_state
from ._helpers import cancel_jobs_except
from ._rig import Rig, slurm_spec
from .conftest import SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
PY = sys.executable


def test_a_killed_slurmd_gives_node_failure(rig: Rig, slurm_cluster: SlurmCluster) -> None:
    job_id = rig.submit(
        slurm_spec(name="nodefail", command=["sleep", "300"], placement={"features": ["bigmem"]})
    )
    rig.wait_state(job_id, {JobState.RUNNING})
    assert rig.attempts(job_id)[-1].nodes == ("n3",)
    kill_daemon(slurm_cluster, "slurmd-n3.pid")
    job = rig.wait_done(job_id, timeout_s=120)
    assert (job.state, job.failure_class) == (JobState.FAILED, FailureClass.NODE_FAILURE), job


def test_preemption_from_the_priority_partition(
    rig: Rig, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    """Without a checkpoint policy the spot job is preempted (failed, class preempted); with
    one it is requeued by Slurm, gets its checkpoint signal first, and runs again."""
    signals = tmp_path / "signals.txt"
    trap = (
        "import signal, sys, time\n"
        "def on(sig, frame): open(sys.argv[1], 'a').write(f'{sig}\\n')\n"
        "signal.signal(signal.SIGUSR1, on)\n"
        "open(sys.argv[1], 'a').write('ready\\n')\n"
        "time.sleep(300)\n"
    )
    spot = {"partition": slurm_cluster.preemptible_partition}
    plain = rig.submit(
        slurm_spec(
            name="spot-plain", command=["sleep", "300"], placement=spot, resources={"nodes": 3}
        )
    )
    saved = rig.submit(
        slurm_spec(
            name="spot-checkpointed",
            command=[PY, "-c", trap, str(signals)],
            placement=spot,
            resources={"nodes": 3},
            checkpoint={"signal": "SIGUSR1", "grace": "5s"},
        )
    )
    rig.wait_state(plain, {JobState.RUNNING})
    rig.wait_state(saved, {JobState.RUNNING})
    # Preempt only once the handler is in place: a SIGUSR1 before it would end the program.
    rig.until(lambda: signals.exists() and "ready" in signals.read_text(), 30, "the signal handler")
    urgent = rig.submit(
        slurm_spec(
            name="prio",
            command=["sleep", "5"],
            placement={"partition": slurm_cluster.priority_partition},
            resources={"nodes": 3, "tasks_per_node": 2},
        )
    )
    job = rig.wait_done(plain, timeout_s=90)
    assert (job.state, job.failure_class) == (JobState.FAILED, FailureClass.PREEMPTED), job
    rig.until(
        lambda: any(
            e.to_state is JobState.QUEUED
            and e.reason
            and e.reason.startswith(("requeued", "preempted"))
            for e in rig.store.events(saved)
        ),
        90,
        "the checkpointed spot job to be requeued",
    )
    assert rig.wait_done(urgent, timeout_s=90).state is JobState.SUCCEEDED
    rig.wait_state(saved, {JobState.RUNNING}, timeout_s=90)
    # Slurm requeued the same job: the preempted run is an attempt of its own, and the
    # attempt that runs now follows the same Slurm job id (no second sbatch).
    first, again = rig.attempts(saved)
    assert (first.state, first.failure_class) == (AttemptState.FAILED, FailureClass.PREEMPTED)
    assert again.native_id == first.native_id
    assert signals.read_text().split()[:2] == ["ready", str(int(signal.SIGUSR1))]
    rig.cancel(saved)
    assert rig.wait_done(saved).state is JobState.CANCELLED


def test_a_dead_slurmctld_makes_the_backend_unavailable_and_fails_nothing(
    rig: Rig, slurm_cluster: SlurmCluster
) -> None:
    job_id = rig.submit(slurm_spec(name="survivor", command=["sleep", "300"]))
    rig.wait_state(job_id, {JobState.RUNNING})
    attempt = rig.attempts(job_id)[-1]
    ref = AttemptRef(
        attempt.job_id, attempt.number, attempt.token, attempt.native_id, attempt.details
    )
    save_job_state(slurm_cluster, attempt.native_id or "")
    kill_daemon(slurm_cluster, "slurmctld.pid")
    try:
        # Right after a controller restart a launch may fail on a node (JobLaunchFailure,
        # node_failure): retried like any infrastructure failure.
        late = rig.submit(slurm_spec(name="late", command=["true"], retry={"max_attempts": 3}))
        for _ in range(2):
            report = rig.cycle()
            assert report.unavailable_backends == ["slurm"], report
            assert rig.job(job_id).state is JobState.RUNNING
        late_job = rig.job(late)
        assert late_job.state is JobState.QUEUED  # submission failed transiently: kept
        assert late_job.reason is not None
        assert late_job.reason.startswith("slurm unavailable, will retry")
        with pytest.raises(TransientBackendError, match=r"unreachable|could not list jobs"):
            rig.backend.poll([ref], time.time())
    finally:
        restore(slurm_cluster)
    rig.until(lambda: not rig.reports[-1].unavailable_backends, 120, "Slurm to answer again")
    # A controller restarted after SIGKILL recovers its last state save, which may predate an
    # earlier test's scancel: such resurrected jobs are not this test's and would hold nodes.
    cancel_jobs_except(slurm_cluster, [job.job_id for job in rig.store.list_jobs()])
    # The running job was saved: slurmctld recovers it running, its slurmd never stopped it,
    # and hpcbridge follows it as the same attempt, without a failure.
    rig.wait_state(job_id, {JobState.RUNNING}, timeout_s=60)
    assert len(rig.attempts(job_id)) == 1
    done = rig.wait_done(late, timeout_s=120)
    assert done.state is JobState.SUCCEEDED, (done.reason, rig.attempts(late))
    assert all(job.state is not JobState.FAILED for job in rig.store.list_jobs())
    rig.cancel(job_id)
    assert rig.wait_done(job_id).state is JobState.CANCELLED


def test_a_sweep_runs_each_task_once_across_a_slurmctld_crash(
    rig: Rig, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    """slurmctld SIGKILLed mid-sweep recovers from its last state save: tasks that ended (or
    started) after it come back pending and are started again. Each task appends one line
    when it has done its work, so a second full run shows as a second line."""
    out = tmp_path / "out"
    out.mkdir()
    program = (
        "import os, sys, time; time.sleep(2);"
        "open(os.path.join(sys.argv[1], os.environ['HPCBRIDGE_ARRAY_INDEX']), 'a')"
        ".write('done\\n')"
    )
    tasks = 40
    sweep = rig.submit(
        slurm_spec(
            name="crash-sweep",
            command=[PY, "-c", program, str(out)],
            array={"indices": f"0-{tasks - 1}"},
            retry={"max_attempts": 3, "retry_on": ["lost", "node_failure"]},
        )
    )
    rig.until(lambda: len(list(out.iterdir())) >= 8, 120, "the first tasks to finish")
    kill_daemon(slurm_cluster, "slurmctld.pid")  # no state save first: the worst case
    rig.tolerate_errors = True
    try:
        time.sleep(3)  # tasks go on ending while nobody records it
    finally:
        restore(slurm_cluster)
    cancel_jobs_except(slurm_cluster, [job.job_id for job in rig.store.list_jobs()])
    done = rig.wait_done(sweep, timeout_s=300)
    lines = {int(path.name): path.read_text().splitlines() for path in out.iterdir()}
    twice = {index: len(text) for index, text in lines.items() if len(text) != 1}
    assert twice == {}, f"tasks whose program ran more than once: {twice}"
    assert sorted(lines) == list(range(tasks)), "every task did its work"
    assert done.state is JobState.SUCCEEDED, done.reason
