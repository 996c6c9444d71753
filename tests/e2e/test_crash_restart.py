"""SIGKILL the control plane mid-run: every job must still end in its true state, once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e._cli import REPO, RunCli, as_json, write_spec

TASKS = 8


def _sweep(tmp_path: Path, marks: Path) -> Path:
    # Each task records its start and end in its own files: a second run would show up.
    program = (
        "import os, sys, time; d=sys.argv[1]; i=os.environ['HPCBRIDGE_ARRAY_INDEX'];"
        "open(os.path.join(d, f'start-{i}-{os.getpid()}'), 'w').close(); time.sleep(1.5);"
        "open(os.path.join(d, f'end-{i}'), 'w').close(); sys.exit(int(i) % 4 == 3)"
    )
    return write_spec(
        tmp_path,
        "sweep.yaml",
        f"""
apiVersion: hpcbridge/v1
kind: Job
name: crash-sweep
command: [{json.dumps(sys.executable)}, -c, {json.dumps(program)}, {json.dumps(str(marks))}]
resources: {{walltime: 2m}}
array: {{indices: "0-{TASKS - 1}"}}
""",
    )


def _job_id(hpcbridge: RunCli, deadline: float) -> str:
    while time.monotonic() < deadline:
        listed = hpcbridge("list", "--json")
        if listed.returncode == 0 and listed.stdout.strip():
            jobs = json.loads(listed.stdout)
            if jobs:
                return str(jobs[0]["job_id"])
        time.sleep(0.1)
    raise AssertionError("the job never appeared in the store")


def test_sigkill_of_run_then_wait_finishes_every_task_once(
    tmp_path: Path, hpcbridge: RunCli, cli_env: dict[str, str]
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = _sweep(tmp_path, marks)
    env = {**cli_env, "HPCBRIDGE_LOCAL_CPUS": "2"}
    runner = subprocess.Popen(
        [sys.executable, "-m", "hpcbridge", "run", str(spec)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    job_id = _job_id(hpcbridge, deadline)
    # Kill while some tasks run and some have finished or still wait for a slot.
    while time.monotonic() < deadline and len(list(marks.glob("end-*"))) < 2:
        time.sleep(0.05)
    running_before_kill = {p.name for p in marks.glob("start-*")}
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    assert len(list(marks.glob("end-*"))) < TASKS, "the sweep finished before the kill"

    waited = hpcbridge("wait", job_id, "--json", timeout=120)
    assert waited.returncode == 1, waited.stderr  # tasks 3 and 7 exit 1 on purpose
    assert "error" not in waited.stderr, waited.stderr

    status = as_json(hpcbridge("status", job_id, "--json"))
    tasks = {task["task_index"]: task for task in status["tasks"]}
    assert len(tasks) == TASKS
    for index, task in tasks.items():
        expected = "failed" if index % 4 == 3 else "succeeded"
        assert task["state"] == expected, task
        assert task["attempt_count"] == 1, task
        assert len(list(marks.glob(f"start-{index}-*"))) == 1, f"task {index} ran twice"
        assert (marks / f"end-{index}").exists()
    assert status["job"]["state"] == "failed"
    assert running_before_kill <= {p.name for p in marks.glob("start-*")}
