"""Faults a test can inject into the test cluster, and the repair afterwards.

Nodes are ``slurmd -N`` daemons on this machine, so "a node dies" means its slurmd and
the job processes it started die together.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import psutil

from ._helpers import batch_script_pids
from .conftest import SCRIPT, SlurmCluster


def restore(cluster: SlurmCluster) -> None:
    """``scripts/slurm-cluster start``: restarts missing daemons and resumes nodes left down."""
    done = subprocess.run(
        [str(SCRIPT), "start"], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"scripts/slurm-cluster start failed:\n{done.stderr}"


def kill_daemon(cluster: SlurmCluster, pid_file: str) -> None:
    pid = int((cluster.state_dir / "run" / pid_file).read_text().split()[0])
    os.kill(pid, signal.SIGKILL)


def kill_node(cluster: SlurmCluster, node: str, native_id: str) -> None:
    """The node dies: its slurmd, and the job's step daemon and processes, at once."""
    kill_daemon(cluster, f"slurmd-{node}.pid")
    victims: list[psutil.Process] = []
    for pid in batch_script_pids(native_id):
        with contextlib.suppress(psutil.Error):
            script = psutil.Process(pid)
            victims += [script, *script.children(recursive=True)]
            parent = script.parent()
            if parent is not None and "slurmstepd" in parent.name():
                victims.append(parent)
    for process in victims:
        with contextlib.suppress(psutil.Error):
            process.kill()
