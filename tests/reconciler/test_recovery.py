"""Lost work since the last checkpoint, read from manifests without touching the directory."""

from __future__ import annotations

import json
from pathlib import Path

from hpcbridge.reconciler._recovery import last_checkpoint_at, lost_work
from hpcbridge.spec import load_spec_document
from hpcbridge.states import AttemptState
from hpcbridge.store import Attempt, JobId

SPEC = load_spec_document(
    {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "t",
        "command": ["true"],
        "resources": {"nodes": 2, "tasks_per_node": 2, "cpus_per_task": 3, "gpus": 1},
        "checkpoint": {"interval": "10m"},
    }
)


def checkpoint(directory: Path, name: str, created: float) -> None:
    (directory / name).mkdir(parents=True)
    (directory / name / "manifest.json").write_text(json.dumps({"created": created}))


def attempt(started: float, ended: float) -> Attempt:
    return Attempt(
        JobId("j1"),
        1,
        "tok",
        "local",
        AttemptState.FAILED,
        created_at=started,
        started_at=started,
        ended_at=ended,
    )


def test_newest_committed_checkpoint_before_the_failure(tmp_path: Path) -> None:
    checkpoint(tmp_path, "step-00000001", 100.0)
    checkpoint(tmp_path, "step-00000002", 200.0)
    checkpoint(tmp_path, "step-00000003", 900.0)  # after the failure: not this attempt's
    checkpoint(tmp_path, ".tmp-step-4-a1", 250.0)  # half-written: never counts
    (tmp_path / "step-00000005").mkdir()  # no manifest
    assert last_checkpoint_at(tmp_path, before=300.0) == 200.0
    assert last_checkpoint_at(tmp_path / "missing", before=300.0) is None


def test_lost_work_counts_from_the_checkpoint(tmp_path: Path) -> None:
    checkpoint(tmp_path, "step-00000001", 1800.0)
    lost = lost_work(attempt(0.0, 3600.0), SPEC, tmp_path)
    assert lost["lost_s"] == 1800.0
    assert lost["lost_core_hours"] == 0.5 * 2 * 6  # half an hour on 2 nodes x 6 CPUs
    assert lost["lost_gpu_hours"] == 0.5 * 2
    assert lost["last_checkpoint_at"] == 1800.0


def test_lost_work_without_checkpoints_is_the_whole_run(tmp_path: Path) -> None:
    lost = lost_work(attempt(0.0, 3600.0), SPEC, None)
    assert lost["lost_s"] == 3600.0
    assert lost["last_checkpoint_at"] is None
    assert (
        lost_work(Attempt(JobId("j"), 1, "t", "local", AttemptState.FAILED, 0.0), SPEC, None) == {}
    )
