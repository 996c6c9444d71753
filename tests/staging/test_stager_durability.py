"""The reconciler's stager asks for durable inputs only where a job runs on another node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.reconciler import _stager
from hpcbridge.spec import JobSpec
from hpcbridge.staging import Meter, StageReport
from hpcbridge.states import JobState
from hpcbridge.store import Job, JobId


@pytest.mark.parametrize(("backend", "durable"), [("local", False), ("slurm", True)])
def test_inputs_are_durable_only_for_jobs_on_other_nodes(
    tmp_path: Path,
    make_spec: Callable[..., JobSpec],
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    durable: bool,
) -> None:
    asked: list[bool] = []

    def spy(spec: JobSpec, where: Path, **options: Any) -> StageReport:
        asked.append(options["durable"])
        return StageReport(
            files=(), bytes_total=0, bytes_copied=0, duration_s=0.0, manifest=where / "m"
        )

    monkeypatch.setattr(_stager, "stage_in", spy)
    spec = make_spec(stage_in=[{"source": str(tmp_path), "dest": "in"}], backend=backend)
    document = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    job = Job(JobId("j1"), "j", "p", "batch", backend, document, JobState.STAGING_IN, 1, 0.0, 0.0)
    stager = _stager.Stager(tmp_path / "checkpoints")
    outcome = stager._stage(job, spec, Meter())
    assert outcome.failure_class is None and asked == [durable]
