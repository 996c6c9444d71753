"""examples/train_checkpointed.py gives the same bytes whether or not it was preempted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from hpcbridge.checkpoint import REQUEUE_EXIT_CODE, Checkpointer
from tests.checkpoint._helpers import read_events

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_checkpointed.py"
STEPS = 1500


def job_env(tmp_path: Path, name: str, attempt: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCBRIDGE_")}
    env.update(
        HPCBRIDGE_JOB_ID=name,
        HPCBRIDGE_ATTEMPT=str(attempt),
        HPCBRIDGE_CHECKPOINT_DIR=str(tmp_path / name / "ckpt"),
        HPCBRIDGE_STATUS_DIR=str(tmp_path / name / "status"),
        HPCBRIDGE_CHECKPOINT_INTERVAL_S="3600",
    )
    return env


def run(tmp_path: Path, name: str, attempt: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(tmp_path / name / "result.json"), *extra],
        env=job_env(tmp_path, name, attempt),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path: Path) -> None:
    args = ("--steps", str(STEPS), "--save-every", "100")
    plain = run(tmp_path, "plain", 1, *args)
    out, err = plain.communicate(timeout=120)
    assert plain.returncode == 0, err
    expected = (tmp_path / "plain" / "result.json").read_bytes()

    # Attempt 1: slowed down, SIGTERMed once it has saved twice.
    first = run(tmp_path, "preempted", 1, *args, "--step-sleep", "0.002")
    assert first.stdout is not None
    saves = 0
    seen = ""
    for line in first.stdout:
        seen += line
        saves += line.startswith("saved step")
        if saves == 2:
            first.send_signal(signal.SIGTERM)
            break
    rest, err = first.communicate(timeout=120)
    assert first.returncode == REQUEUE_EXIT_CODE, err
    assert not (tmp_path / "preempted" / "result.json").exists()
    stopped = Checkpointer(tmp_path / "preempted" / "ckpt").latest_valid()
    assert stopped is not None and 200 <= stopped.step < STEPS
    # It saved at the step where the signal was seen, not only at the last multiple of 100
    # (the signal may also arrive right after the second save, before the job looks).
    assert f"saved step {stopped.step}\npreempted at step {stopped.step}\n" in seen + rest

    # Attempt 2 resumes where attempt 1 stopped and finishes.
    second = run(tmp_path, "preempted", 2, *args)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert out.startswith(f"start at step {stopped.step}\n")
    assert (tmp_path / "preempted" / "result.json").read_bytes() == expected

    events = read_events(tmp_path / "preempted" / "status")
    kinds = [(e["type"], e["attempt"]) for e in events]
    assert ("requeue_requested", 1) in kinds
    assert ("checkpoint_restored", 2) in kinds
