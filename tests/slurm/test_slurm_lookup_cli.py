"""Jobs looked up by Slurm's own job id through the installed ``hpcbridge``: ``1234`` for a
job, ``1234_7`` for task 7 of an array (the ids ``squeue`` and ``sacct`` print)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_slurm_preflight_cli import SPEC, Run, hpcbridge

pytestmark = pytest.mark.slurm
__all__ = ["hpcbridge"]  # the fixture: the installed hpcbridge on the test cluster


def _status(run: Run, ref: str) -> dict[str, object]:
    done = run("status", ref, "--json")
    assert done.returncode == 0, (ref, done.stdout, done.stderr)
    found = json.loads(done.stdout)
    assert isinstance(found, dict)
    return found


def test_status_by_slurm_job_id_and_array_task(hpcbridge: Run, tmp_path: Path) -> None:
    single = tmp_path / "single.yaml"
    single.write_text(SPEC + "resources: {walltime: 1m}\n")
    swept = tmp_path / "swept.yaml"
    swept.write_text(SPEC.replace("name: preflight", "name: swept") + "array: {indices: 0-1}\n")
    ids = [hpcbridge("submit", str(path)).stdout.strip() for path in (single, swept)]
    waited = hpcbridge("wait", *ids)
    assert waited.returncode == 0, waited.stdout + waited.stderr

    attempts = _status(hpcbridge, ids[0])["attempts"]
    assert isinstance(attempts, list)
    native = attempts[-1]["native_id"]
    assert native.isdigit()
    job = _status(hpcbridge, native)["job"]
    assert isinstance(job, dict) and job["job_id"] == ids[0]

    task = f"{ids[1]}.1"
    task_native = _status(hpcbridge, task)["attempts"][-1]["native_id"]  # type: ignore[index]
    assert task_native.endswith("_1")
    found = _status(hpcbridge, task_native)["job"]
    assert isinstance(found, dict) and found["job_id"] == task

    missing = hpcbridge("status", "999999999")
    assert missing.returncode != 0
    assert "no job has an attempt the scheduler knows as 999999999" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_status_by_slurm_array_id_shows_the_whole_array(hpcbridge: Run, tmp_path: Path) -> None:
    """``1234`` without a task suffix, for an array Slurm runs as one job array, is the
    array: the parent job with all its tasks, as ``status <our id>`` shows it."""
    swept = tmp_path / "swept.yaml"
    swept.write_text(SPEC.replace("name: preflight", "name: swept") + "array: {indices: 0-2}\n")
    job_id = hpcbridge("submit", str(swept)).stdout.strip()
    waited = hpcbridge("wait", job_id)
    assert waited.returncode == 0, waited.stdout + waited.stderr

    task_native = _status(hpcbridge, f"{job_id}.2")["attempts"][-1]["native_id"]  # type: ignore[index]
    array_native, _, index = task_native.partition("_")
    assert array_native.isdigit() and index == "2"
    whole = _status(hpcbridge, array_native)
    assert whole["job"]["job_id"] == job_id  # type: ignore[index]
    tasks = whole["tasks"]
    assert isinstance(tasks, list)
    assert [t["job_id"] for t in tasks] == [f"{job_id}.{i}" for i in range(3)]

    text = hpcbridge("status", array_native)
    assert text.returncode == 0, text.stderr
    assert job_id in text.stdout and f"{job_id}.2" in text.stdout
