"""The command line as a user meets it: exit codes, messages, JSON output, examples."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from tests.e2e._cli import REPO, RunCli, as_json, write_spec

HEADER = "apiVersion: hpcbridge/v1\nkind: Job\nname: t\n"

BAD_SPECS = {
    "unknown field": (HEADER + "command: [echo]\ncolour: blue\n", "colour: unknown field"),
    "wrong type": (HEADER + "command: [echo]\nresources: {nodes: two}\n", "resources.nodes"),
    "negative resources": (
        HEADER + "command: [echo]\nresources: {cpus_per_task: -2}\n",
        "resources.cpus_per_task",
    ),
    "walltime abc": (
        HEADER + "command: [echo]\nresources: {walltime: abc}\n",
        "resources.walltime: 'abc' is not a duration",
    ),
    "empty command": (HEADER + "command: []\n", "command: the command is empty"),
    "yaml syntax": (HEADER + "command: [echo\n", "invalid YAML at line"),
    "unsupported here": (
        HEADER + "command: [echo]\nresources: {nodes: 4}\n",
        "resources.nodes: the local backend runs on one machine",
    ),
    "missing program": (
        HEADER + "command: [no-such-program-xyz]\n",
        "'no-such-program-xyz' is not an executable on PATH",
    ),
}


def _job_count(home: Path) -> int:
    database = home / "hpcbridge.db"
    if not database.exists():
        return 0
    with sqlite3.connect(database) as conn:
        return int(conn.execute("select count(*) from jobs").fetchone()[0])


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_exits_2_with_one_clear_message_and_stores_nothing(
    case: str, tmp_path: Path, hpcbridge: RunCli, cli_env: dict[str, str]
) -> None:
    body, expected = BAD_SPECS[case]
    spec = write_spec(tmp_path, "bad.yaml", body)
    for command in ("run", "submit", "validate"):
        result = hpcbridge(command, str(spec))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert _job_count(Path(cli_env["HPCBRIDGE_HOME"])) == 0


def test_missing_file_is_invalid_input(hpcbridge: RunCli) -> None:
    result = hpcbridge("run", "no/such/spec.yaml")
    assert result.returncode == 2
    assert "no such file" in result.stderr


def test_unknown_job_exits_3(hpcbridge: RunCli) -> None:
    for command in ("status", "events", "logs", "cancel", "wait"):
        result = hpcbridge(command, "jnosuchjob")
        assert result.returncode == 3, (command, result.stderr)
        assert "no job 'jnosuchjob'" in result.stderr


def test_run_hello_prints_its_output_and_records_everything(hpcbridge: RunCli) -> None:
    result = hpcbridge("run", "examples/hello.yaml")
    assert result.returncode == 0, result.stderr
    assert "hello from" in result.stdout
    job = as_json(hpcbridge("list", "--json"))[0]
    assert job["state"] == "succeeded" and job["exit_code"] == 0
    status = as_json(hpcbridge("status", job["job_id"], "--json"))
    assert [a["state"] for a in status["attempts"]] == ["succeeded"]
    kinds = [e["kind"] for e in as_json(hpcbridge("events", job["job_id"], "--json"))]
    assert kinds[0] == "accepted" and "attempt_submitted" in kinds
    assert "hello from" in hpcbridge("logs", job["job_id"]).stdout


def test_run_json_of_a_failing_job(hpcbridge: RunCli) -> None:
    result = hpcbridge("run", "examples/fail.yaml", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["job"]["failure_class"] == "app_error"
    assert report["job"]["exit_code"] == 3
    assert "not retried" in report["job"]["reason"]
    assert "about to fail" in hpcbridge("logs", report["job"]["job_id"], "--stderr").stdout


def test_walltime_example_is_a_timeout(hpcbridge: RunCli) -> None:
    started = time.monotonic()
    report = json.loads(hpcbridge("run", "examples/walltime.yaml", "--json").stdout)
    assert report["job"]["failure_class"] == "timeout"
    assert "checkpoint" in report["job"]["reason"]
    assert time.monotonic() - started < 60


def test_sweep_runs_twenty_tasks_within_the_slots(
    hpcbridge: RunCli, cli_env: dict[str, str]
) -> None:
    cli_env["HPCBRIDGE_LOCAL_CPUS"] = "2"
    result = hpcbridge("run", "examples/sweep.yaml", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    tasks = report["tasks"]
    assert len(tasks) == 20 and all(t["state"] == "succeeded" for t in tasks)
    params = {(t["task_params"]["lr"], t["task_params"]["seed"]) for t in tasks}
    assert len(params) == 20
    # No more than two attempts ever overlapped in time.
    spans = []
    for task in tasks:
        attempts = as_json(hpcbridge("status", task["job_id"], "--json"))["attempts"]
        spans += [(a["started_at"], a["ended_at"]) for a in attempts]
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2
    listed = as_json(hpcbridge("list", "--tasks", "--name", "sweep", "--json"))
    assert len(listed) == 21


def test_montecarlo_writes_its_result(hpcbridge: RunCli, cli_env: dict[str, str]) -> None:
    report = json.loads(hpcbridge("run", "examples/montecarlo.yaml", "--json").stdout)
    assert report["job"]["state"] == "succeeded"
    work = Path(report["attempts"][0]["details"]["dir"]) / "work"
    result = json.loads((work / "result.json").read_text())
    assert abs(result["pi"] - 3.14159) < 0.01


def test_submit_returns_at_once_and_an_agent_finishes_the_job(
    tmp_path: Path, hpcbridge: RunCli
) -> None:
    spec = write_spec(tmp_path, "s.yaml", HEADER + "command: [sleep, '1']\n")
    submitted = hpcbridge("submit", str(spec))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = as_json(hpcbridge("status", job_id, "--json"))["job"]
        if job["state"] == "succeeded":
            break
        time.sleep(0.2)
    assert job["state"] == "succeeded"


def test_cancel_stops_a_running_job(tmp_path: Path, hpcbridge: RunCli) -> None:
    spec = write_spec(tmp_path, "s.yaml", HEADER + "command: [sleep, '300']\n")
    job_id = hpcbridge("submit", str(spec)).stdout.strip()
    result = hpcbridge("cancel", job_id, "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["state"] == "cancelled"
    attempts = as_json(hpcbridge("status", job_id, "--json"))["attempts"]
    assert all(a["state"] == "failed" and a["failure_class"] == "cancelled" for a in attempts)


JOB_EXAMPLES = sorted(
    p.name for p in (REPO / "examples").glob("*.yaml") if "kind: Job" in p.read_text()
)


@pytest.mark.parametrize("example", JOB_EXAMPLES)
def test_every_example_validates(example: str, hpcbridge: RunCli) -> None:
    result = hpcbridge("validate", f"examples/{example}")
    assert result.returncode == 0, result.stderr
