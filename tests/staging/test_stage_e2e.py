"""Staging end to end on the local executor, with the real reconciler and store."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass, JobState


def _states(client: Client, job_id: str) -> list[str]:
    return [e.to_state.value for e in client.events(job_id) if e.to_state is not None]


def test_inputs_in_run_outputs_out(
    settings: Settings, tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    source = tmp_path / "in.bin"
    payload = os.urandom(1 << 20)
    source.write_bytes(payload)
    results = tmp_path / "results"
    spec = make_spec(
        command=["sh", "-c", "mkdir -p out && sha256sum inputs/in.bin > out/sum.txt"],
        stage_in=[{"source": str(source), "dest": "inputs/in.bin"}],
        stage_out=[{"source": "out", "dest": str(results)}],
    )
    client = Client(settings)
    job = client.submit(spec)
    (done,) = client.wait([job.job_id], timeout_s=60)
    assert done.state is JobState.SUCCEEDED, done.reason
    assert _states(client, job.job_id) == [
        "accepted", "staging_in", "queued", "running", "staging_out", "succeeded",
    ]  # fmt: skip
    assert (results / "sum.txt").read_text().split()[0] == hashlib.sha256(payload).hexdigest()
    staged = next(e for e in client.events(job.job_id) if e.to_state is JobState.QUEUED)
    assert staged.data["files_list"][0]["digest"].partition(":")[2]
    assert staged.data["bytes_copied"] == 1 << 20
    # The same inputs again: linked from the cache, nothing copied.
    again = client.submit(spec)
    (second,) = client.wait([again.job_id], timeout_s=60)
    assert second.state is JobState.SUCCEEDED, second.reason
    cached = next(e for e in client.events(again.job_id) if e.to_state is JobState.QUEUED)
    assert cached.data["bytes_copied"] == 0 and cached.data["bytes_total"] == 1 << 20


def test_an_input_changed_after_staging_is_caught_before_the_command_runs(
    settings: Settings, tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("original\n")
    ran = tmp_path / "ran"
    spec = make_spec(
        command=["touch", str(ran)],
        stage_in=[{"source": str(source), "dest": "in.txt"}],
    )
    client = Client(settings)
    job = client.submit(spec)
    staged = settings.home / "data" / job.job_id / "in.txt"
    client.reconciler.cycle()  # accepted -> staging_in
    client.reconciler.cycle()  # the stage starts in a worker
    deadline = time.monotonic() + 30
    while not (settings.home / "data" / job.job_id / ".hpcbridge" / "inputs.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    staged.write_text("tampered\n")  # shared storage changes between staging and start
    (done,) = client.wait([job.job_id], timeout_s=60)
    assert done.state is JobState.FAILED
    assert done.failure_class is FailureClass.CHECKSUM_MISMATCH
    assert "in.txt" in (done.reason or "") and "checksum mismatch" in (done.reason or "")
    assert not ran.exists()


def test_a_failed_stage_in_fails_the_job_without_running_it(
    settings: Settings, tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("x\n")
    spec = make_spec(
        command=["touch", str(tmp_path / "ran")],
        stage_in=[{"source": str(source), "dest": "in.txt", "checksum": "sha256:" + "0" * 64}],
    )
    client = Client(settings)
    job = client.submit(spec)
    (done,) = client.wait([job.job_id], timeout_s=60)
    assert done.state is JobState.FAILED
    assert done.failure_class is FailureClass.CHECKSUM_MISMATCH
    assert "sha256:" + "0" * 64 in (done.reason or "")
    assert not client.attempts(job.job_id) and not (tmp_path / "ran").exists()
