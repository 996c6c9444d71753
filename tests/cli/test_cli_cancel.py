"""``cancel`` of a job that had already finished: it says so, with the state the job ended
in, leaves the job as it was and exits 1 (README, exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli._home import as_json, runner, spec


def test_cancel_of_a_finished_job_says_so_and_exits_1(tmp_path: Path) -> None:
    run = runner(tmp_path / "home", tmp_path)
    finished = run("submit", spec(tmp_path, "done", "command: ['true']\n")).stdout.strip()
    assert run("wait", finished).returncode == 0
    before = as_json(run("status", finished, "--json"))

    result = run("cancel", finished)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {finished} was not cancelled: it had already finished (succeeded)\n"
    )
    assert as_json(run("status", finished, "--json")) == before  # untouched
    events = [e["kind"] for e in as_json(run("events", finished, "--json"))]
    assert "cancel_requested" not in events

    as_json_result = run("cancel", finished, "--json")
    assert as_json_result.returncode == 1
    assert [j["state"] for j in json.loads(as_json_result.stdout)] == ["succeeded"]
    assert "had already finished (succeeded)" in as_json_result.stderr


def test_cancel_of_a_running_and_a_finished_job(tmp_path: Path) -> None:
    run = runner(tmp_path / "home", tmp_path)
    failed = run("submit", spec(tmp_path, "failing", "command: [sh, -c, 'exit 4']\n"))
    failed_id = failed.stdout.strip()
    assert run("wait", failed_id).returncode == 1
    running = run("submit", spec(tmp_path, "sleeper", "command: [sleep, '300']\n")).stdout.strip()

    result = run("cancel", running, failed_id)
    assert result.returncode == 1, result.stderr
    assert result.stdout == f"{running}: cancelled\n"
    assert (
        result.stderr == f"error: {failed_id} was not cancelled: it had already finished (failed)\n"
    )
    assert as_json(run("status", running, "--json"))["job"]["state"] == "cancelled"
    assert as_json(run("status", failed_id, "--json"))["job"]["state"] == "failed"


def test_cancel_of_a_running_job_exits_0(tmp_path: Path) -> None:
    run = runner(tmp_path / "home", tmp_path)
    running = run("submit", spec(tmp_path, "sleeper", "command: [sleep, '300']\n")).stdout.strip()
    result = run("cancel", running)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{running}: cancelled\n", "")
