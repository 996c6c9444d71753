"""Faults a test can inject into the test cluster, and the repair afterwards.

Nodes are ``slurmd -N`` daemons on this machine, so "a node dies" means its slurmd and
the job processes it started die together.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import psutil

from ._helpers import batch_script_pids
from .conftest import SlurmCluster


def restore(cluster: SlurmCluster) -> None:
    """The cluster script's ``start``: restarts missing daemons and resumes nodes left down."""
    argv = [*cluster.control, "start"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stderr}"


def save_job_state(cluster: SlurmCluster, native_id: str, timeout_s: float = 30.0) -> None:
    """Make slurmctld write its job state now, with the job as it is, and wait for the file.

    A SIGKILLed slurmctld recovers only what it last saved: a job allocated after that save
    comes back PENDING, or not at all (and its id is given to the next submission). A crash
    seconds after a start is real but makes a test a lottery; tests that want a running job to
    survive the crash save first. A no-op update of the job marks the job table changed.
    """
    state = cluster.job_state_file
    since = time.time()
    subprocess.run(
        ["scontrol", "update", f"jobid={native_id}", "nice=0"],
        check=True,
        env=cluster.env(),
        capture_output=True,
        timeout=30,
    )
    deadline = time.monotonic() + timeout_s
    while not (state.exists() and state.stat().st_mtime > since):
        assert time.monotonic() < deadline, f"slurmctld did not save {state} in {timeout_s}s"
        time.sleep(0.2)


def kill_daemon(cluster: SlurmCluster, pid_file: str) -> None:
    pid = int((cluster.pid_dir / pid_file).read_text().split()[0])
    os.kill(pid, signal.SIGKILL)


def kill_node(cluster: SlurmCluster, node: str, native_id: str) -> None:
    """The node dies: its slurmd, and the job's step daemon and processes, at once."""
    kill_daemon(cluster, f"slurmd-{node}.pid")
    victims: list[psutil.Process] = []
    for pid in batch_script_pids(native_id, cluster.name):
        with contextlib.suppress(psutil.Error):
            script = psutil.Process(pid)
            victims += [script, *script.children(recursive=True)]
            parent = script.parent()
            if parent is not None and "slurmstepd" in parent.name():
                victims.append(parent)
    for process in victims:
        with contextlib.suppress(psutil.Error):
            process.kill()
