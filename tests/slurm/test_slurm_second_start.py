"""The batch script runs its program at most once per run of an attempt.

A restarted slurmctld that had not saved a job's end (or start) recovers it as pending and
starts it again. The script, run here by a real bash with Slurm's variables set as Slurm
sets them, refuses a second start of the same run: it reports the first run's exit status,
or, when that run's outcome is unknown, marks the run and exits with a status the backend
reads as ``lost``. A requeue (Slurm's own restart count goes up) runs the program again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hpcbridge.backends import AttemptRef, Observation, Phase
from hpcbridge.backends.slurm._backend import SlurmBackend
from hpcbridge.backends.slurm._render import (
    SECOND_START_EXIT_CODE,
    SECOND_START_MARK,
    render_script,
)
from hpcbridge.states import FailureClass
from tests.slurm.test_slurm_render import make_spec, request

PROGRAM = "import sys; open(sys.argv[1], 'a').write('ran\\n'); sys.exit(int(sys.argv[2]))"


def start(
    tmp_path: Path, status_dir: Path, *, exit_code: int = 0, restarts: int | None = None
) -> int:
    """One start of the batch script by 'Slurm': its exit status."""
    spec = make_spec(
        command=[sys.executable, "-c", PROGRAM, str(tmp_path / "runs"), str(exit_code)]
    )
    script = tmp_path / "job.sh"
    script.write_text(
        render_script(request(spec, HPCBRIDGE_STATUS_DIR=str(status_dir)), probe=False)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "HPCBRIDGE_"))}
    if restarts is not None:
        env["SLURM_RESTART_COUNT"] = str(restarts)
    return subprocess.run(["bash", str(script)], env=env, timeout=30, check=False).returncode


def runs(tmp_path: Path) -> int:
    path = tmp_path / "runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_second_start_of_an_ended_run_reports_its_exit_status(tmp_path: Path) -> None:
    status = tmp_path / "status"
    assert start(tmp_path, status, exit_code=3) == 3
    assert start(tmp_path, status, exit_code=3) == 3  # the same status, from the record
    assert runs(tmp_path) == 1
    assert (status / "run-0" / "exit").read_text().strip() == "3"


def test_a_requeue_runs_the_program_again(tmp_path: Path) -> None:
    status = tmp_path / "status"
    assert start(tmp_path, status) == 0
    assert start(tmp_path, status, restarts=1) == 0
    assert start(tmp_path, status, restarts=1) == 0
    assert runs(tmp_path) == 2
    assert sorted(p.name for p in status.iterdir()) == ["run-0", "run-1"]


def test_a_second_start_of_a_run_with_no_known_end_runs_nothing(tmp_path: Path) -> None:
    status = tmp_path / "status"
    (status / "run-0").mkdir(parents=True)  # started, then its node or slurmctld died
    assert start(tmp_path, status) == SECOND_START_EXIT_CODE
    assert runs(tmp_path) == 0
    assert (status / "run-0" / SECOND_START_MARK).exists()


def test_without_a_usable_status_directory_the_program_still_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert start(tmp_path, blocker / "status") == 0
    assert start(tmp_path, blocker / "status") == 0
    assert runs(tmp_path) == 2  # no record to guard with: never refuse to run at all


def observed(status_dir: Path, exit_code: int) -> Observation:
    ref = AttemptRef("j1", 1, "tok", "123", {"status_dir": str(status_dir)})
    observations = {
        "tok": Observation(Phase.FAILED, failure_class=FailureClass.APP_ERROR, exit_code=exit_code)
    }
    SlurmBackend._explain_second_starts([ref], observations)
    return observations["tok"]


def test_the_backend_reads_a_refused_second_start_as_lost(tmp_path: Path) -> None:
    status = tmp_path / "status"
    (status / "run-0").mkdir(parents=True)
    assert observed(status, SECOND_START_EXIT_CODE).failure_class is FailureClass.APP_ERROR
    (status / "run-0" / SECOND_START_MARK).touch()
    assert observed(status, SECOND_START_EXIT_CODE).failure_class is FailureClass.LOST
    assert observed(status, 1).failure_class is FailureClass.APP_ERROR
    # out of this host's sight (REST transport): the script's exit status alone says so
    assert observed(tmp_path / "elsewhere", SECOND_START_EXIT_CODE).failure_class is (
        FailureClass.LOST
    )
