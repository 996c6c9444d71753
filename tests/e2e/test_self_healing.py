"""Self-healing on the local executor: resume from checkpoints after a timeout, fence a node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hpcbridge.backends.local._process import read_pid
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import load_spec_document
from hpcbridge.states import FailureClass, JobState
from tests.e2e._cli import REPO

TRAIN = REPO / "examples" / "train_checkpointed.py"
STEPS = ["--steps", "300", "--save-every", "20", "--step-sleep", "0.01"]


def _settings(home: Path, *, max_drained: float = 0.34) -> Settings:
    return Settings(
        home=home,
        poll_interval_s=0.05,
        kill_grace_s=5,
        lost_grace_s=1,
        quarantine_max_drained_fraction=max_drained,
    )


def test_timeout_with_checkpoints_resumes_and_matches_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    reference = tmp_path / "reference.json"
    env = {
        **os.environ,
        "HPCBRIDGE_CHECKPOINT_DIR": str(tmp_path / "ref-ckpt"),
        "PYTHONPATH": str(REPO / "src"),
    }
    subprocess.run(
        [sys.executable, str(TRAIN), str(reference), *STEPS],
        env=env,
        check=True,
        capture_output=True,
    )

    result = tmp_path / "result.json"
    client = Client(_settings(tmp_path / "home"))
    spec = load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "train",
            "command": [sys.executable, str(TRAIN), str(result), *STEPS],
            "env": {"PYTHONPATH": str(REPO / "src")},
            "resources": {"walltime": "1.5s"},
            "checkpoint": {"interval": "30s", "keep": 2, "grace": "10s"},
            "retry": {"max_attempts": 10, "backoff": {"initial": 0.05}},
        }
    )
    job = client.submit(spec)
    (done,) = client.wait([job.job_id], timeout_s=120)
    client.close()

    assert done.state is JobState.SUCCEEDED, done.reason
    attempts = client.attempts(job.job_id)
    assert len(attempts) >= 2
    assert all(a.failure_class is FailureClass.TIMEOUT for a in attempts[:-1])
    assert result.read_bytes() == reference.read_bytes()
    for failed in attempts[:-1]:
        # It saved on SIGTERM, so at most a checkpoint's worth of steps was lost.
        assert failed.details["last_checkpoint_at"] is not None
        assert failed.details["lost_s"] < 1.0
    recovered = [e for e in client.events(job.job_id) if "time_to_recover_s" in e.data]
    assert len(recovered) == len(attempts) - 1
    assert all(e.data["recovered_from"] == "timeout" for e in recovered)


def test_timeout_without_checkpoints_fails_and_says_why(tmp_path: Path) -> None:
    client = Client(_settings(tmp_path / "home"))
    spec = load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "slow",
            "command": ["sleep", "60"],
            "resources": {"walltime": "1s"},
        }
    )
    (done,) = client.wait([client.submit(spec).job_id], timeout_s=60)
    client.close()
    assert done.failure_class is FailureClass.TIMEOUT
    assert done.attempt_count == 1
    assert "no checkpoint policy" in (done.reason or "")


def _kill_when_running(client: Client, job_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        client.reconcile_once()
        attempt = client.attempts(job_id)[-1] if client.attempts(job_id) else None
        # The pid file is claimed (created empty) before the spawn: read it once written.
        pid = read_pid(Path(attempt.details["dir"])) if attempt and attempt.details else None
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
            return
        time.sleep(0.05)
    raise AssertionError("the job never started")


def _lose_jobs(client: Client, count: int) -> list[str]:
    ids: list[str] = []
    for index in range(count):
        spec = load_spec_document(
            {
                "apiVersion": "hpcbridge/v1",
                "kind": "Job",
                "name": f"victim-{index}",
                "command": ["sleep", "60"],
                "retry": {"max_attempts": 1},
            }
        )
        job = client.submit(spec)
        _kill_when_running(client, job.job_id)
        client.wait([job.job_id], timeout_s=30)
        ids.append(job.job_id)
    return ids


def test_a_node_that_keeps_losing_jobs_is_drained_and_resumed(tmp_path: Path) -> None:
    client = Client(_settings(tmp_path / "home", max_drained=1.0))
    ids = _lose_jobs(client, 3)
    assert all(client.get(i).failure_class is FailureClass.LOST for i in ids)
    backend = client.backends["local"]
    (node,) = backend.nodes()  # type: ignore[attr-defined]
    assert node.drained and node.reason.startswith("hpcbridge: 3 lost failures")
    assert any(e.kind == "node_drained" for e in client.events(ids[-1]))

    waiting = client.submit(
        load_spec_document(
            {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": "after", "command": ["true"]}
        )
    )
    for _ in range(5):
        client.reconcile_once()
    assert client.get(waiting.job_id).state is JobState.QUEUED
    assert "drained" in (client.get(waiting.job_id).reason or "")

    backend.resume(node.name)  # type: ignore[attr-defined]
    (done,) = client.wait([waiting.job_id], timeout_s=30)
    assert done.state is JobState.SUCCEEDED
    client.close()


def test_the_guard_rail_refuses_to_drain_the_only_node(tmp_path: Path) -> None:
    client = Client(_settings(tmp_path / "home"))  # default: at most 34% of a partition
    ids = _lose_jobs(client, 3)
    (node,) = client.backends["local"].nodes()  # type: ignore[attr-defined]
    assert not node.drained
    refusals = [e for e in client.events(ids[-1]) if e.kind == "node_quarantine_refused"]
    assert refusals and "would have 1 of 1 nodes drained" in (refusals[0].reason or "")
    client.close()
