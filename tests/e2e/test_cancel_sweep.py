"""Cancel a running sweep on the local executor: the record matches what really ran.

A task that started before the cancel reached it is recorded as started, then cancelled;
a task recorded as cancelled before it started never ran. (Before, 1-2 queued tasks
started about a second after the cancel and ran to completion while the store said
``queued -> cancelled``.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.states import FailureClass, JobState
from tests.e2e._cli import REPO, RunCli, as_json, write_spec

TASKS = 20


def _sweep(tmp_path: Path, marks: Path) -> Path:
    # Each task marks its start, then runs long enough to be caught by the cancel.
    program = (
        "import os, sys, time; i=os.environ['HPCBRIDGE_ARRAY_INDEX'];"
        "open(os.path.join(sys.argv[1], f'start-{i}'), 'w').close(); time.sleep(3);"
        "open(os.path.join(sys.argv[1], f'end-{i}'), 'w').close()"
    )
    return write_spec(
        tmp_path,
        "sweep.yaml",
        f"""
apiVersion: hpcbridge/v1
kind: Job
name: cancel-sweep
command: [{json.dumps(sys.executable)}, -c, {json.dumps(program)}, {json.dumps(str(marks))}]
resources: {{walltime: 2m}}
array: {{indices: "0-{TASKS - 1}"}}
""",
    )


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_cancelled_sweep_records_exactly_the_tasks_that_ran(
    tmp_path: Path, hpcbridge: RunCli, cli_env: dict[str, str], round_: int
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = _sweep(tmp_path, marks)
    env = {**cli_env, "HPCBRIDGE_LOCAL_CPUS": "3"}
    runner = subprocess.Popen(
        [sys.executable, "-m", "hpcbridge", "run", str(spec)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        # Cancel once a few tasks finished: slots are being handed to queued tasks.
        while time.monotonic() < deadline and len(list(marks.glob("end-*"))) < 3 + round_ % 2:
            time.sleep(0.02)
        job_id = as_json(hpcbridge("list", "--json"))[0]["job_id"]
        cancelled = hpcbridge("cancel", job_id)
        assert cancelled.returncode == 0, cancelled.stderr
        assert runner.wait(timeout=60) == 1  # a cancelled sweep is not a success
    finally:
        runner.kill()
        runner.wait()
    time.sleep(1.5)  # a task wrongly started after the cancel would have marked its start
    client = Client(Settings(home=Path(cli_env["HPCBRIDGE_HOME"])))
    try:
        assert client.get(job_id).state is JobState.CANCELLED
        tasks = {task.task_index: task for task in client.tasks(job_id)}
        assert len(tasks) == TASKS
        ran = {int(p.name.split("-")[1]) for p in marks.glob("start-*")}
        assert len(ran) < TASKS, "the sweep finished before the cancel"
        for index, task in tasks.items():
            [attempt] = client.attempts(task.job_id)
            if index in ran:
                assert attempt.started_at is not None, f"task {index} ran, recorded as not"
            elif attempt.started_at is not None:  # killed before the program marked itself
                assert attempt.failure_class is FailureClass.CANCELLED, attempt
            if task.state is JobState.SUCCEEDED:
                assert (marks / f"end-{index}").exists()
                continue
            assert task.state is JobState.CANCELLED, task
            assert not (marks / f"end-{index}").exists(), f"cancelled task {index} ran to its end"
            moves = [
                (e.from_state, e.to_state)
                for e in client.events(task.job_id)
                if e.kind == "transition"
            ]
            if attempt.started_at is not None:
                assert attempt.reason == "cancelled", attempt
                assert moves[-2:] == [
                    (JobState.QUEUED, JobState.RUNNING),
                    (JobState.RUNNING, JobState.CANCELLED),
                ], moves
            else:
                assert attempt.reason == "cancelled before it started", attempt
                assert moves[-1] == (JobState.QUEUED, JobState.CANCELLED), moves
    finally:
        client.store.close()
