"""``hpcbridge why`` on the common failures: the class, the sentence and the next step.

Timeout, OOM, app error and a job killed from outside (lost) are real jobs on the local
executor; a node failure cannot happen on one machine, so its records are written into
the store the way the reconciler writes them.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from hpcbridge.checkpoint import Checkpointer
from hpcbridge.client import Client
from hpcbridge.spec import JobSpec
from hpcbridge.states import JobState
from tests.cli_obs.conftest import Cli
from tests.telemetry._sim import Sim


def _why(cli: Cli, job_id: str) -> dict[str, Any]:
    result = cli("why", job_id, "--json")
    assert result.code == 0, result.err
    found: dict[str, Any] = result.json()
    return found


def _run(client: Client, spec: JobSpec) -> str:
    job = client.submit(spec)
    [done] = client.wait([job.job_id], timeout_s=60)
    assert done.state.terminal
    return job.job_id


def test_why_timeout(client: Client, cli: Cli, make_spec: Callable[..., JobSpec]) -> None:
    job_id = _run(
        client, make_spec(name="slow", command=["sleep", "30"], resources={"walltime": "1s"})
    )
    why = _why(cli, job_id)
    assert (why["state"], why["failure_class"]) == ("failed", "timeout")
    assert why["summary"] == "The job ran past its walltime and was stopped."
    assert "walltime" in why["next_step"]
    assert why["runbook"] == "docs/runbooks/fabric-degradation.md"
    assert any("ran past its walltime" in action for action in why["actions"])


def test_why_oom(client: Client, cli: Cli, make_spec: Callable[..., JobSpec]) -> None:
    hog = "import time; x = bytearray(400 * 1024 * 1024); time.sleep(30)"
    job_id = _run(
        client,
        make_spec(name="hog", command=[sys.executable, "-c", hog], resources={"mem": "100M"}),
    )
    why = _why(cli, job_id)
    assert (why["state"], why["failure_class"]) == ("failed", "oom")
    assert "more memory than it asked for" in why["summary"]
    assert why["next_step"].startswith("Raise resources.mem")
    assert why["runbook"] == "docs/runbooks/triage.md"


def test_why_app_error(client: Client, cli: Cli, make_spec: Callable[..., JobSpec]) -> None:
    script = "echo 'reading input.csv' ; echo 'ValueError: column 3 is empty' >&2 ; exit 3"
    job_id = _run(client, make_spec(name="buggy", command=["sh", "-c", script]))
    why = _why(cli, job_id)
    assert (why["state"], why["failure_class"]) == ("failed", "app_error")
    assert why["exit"] == "exit code 3"
    assert why["log_tail"] == ["ValueError: column 3 is empty"]
    assert why["log_file"].endswith("stderr.log")
    assert f"hpcbridge logs {job_id} --stderr" in why["next_step"]
    assert why["runbook"] == "docs/runbooks/triage.md"
    text = cli("why", job_id)
    assert text.code == 0
    assert "The job's own program failed" in text.out
    assert "ValueError: column 3 is empty" in text.out
    assert "Runbook: docs/runbooks/triage.md" in text.out


def test_why_job_killed_from_outside_is_lost(
    client: Client, cli: Cli, make_spec: Callable[..., JobSpec]
) -> None:
    spec = make_spec(name="victim", command=["sleep", "60"], retry={"max_attempts": 1})
    job = client.submit(spec)
    pid_file = client.settings.runs_dir / job.job_id / "attempt-1" / "pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().endswith("\n")):
        assert time.monotonic() < deadline
        client.reconcile_once()
        time.sleep(0.05)
    os.killpg(int(pid_file.read_text()), signal.SIGKILL)  # as a dying node would
    [done] = client.wait([job.job_id], timeout_s=60)
    assert done.state is JobState.FAILED
    why = _why(cli, job.job_id)
    assert why["failure_class"] == "lost"
    assert "something outside hpcbridge killed it" in why["summary"]
    assert why["runbook"] == "docs/runbooks/node-failure.md"
    assert why["exit"] is None or "signal" in why["exit"]


def test_why_node_failure_after_retries(client: Client, cli: Cli) -> None:
    sim = Sim(client.store, now=time.time() - 3600)
    job_id = sim.job(
        ["node_failure", "node_failure", "node_failure"],
        cpus=8,
        run_s=600,
        nodes=("cn042",),
        reasons=["node cn042 failed (NODE_FAIL)"] * 3,
    )
    why = _why(cli, job_id)
    assert (why["state"], why["failure_class"]) == ("failed", "node_failure")
    assert why["summary"].startswith("A node the job ran on failed")
    assert why["scheduler_reason"] == "node cn042 failed (NODE_FAIL)"
    assert why["nodes"] == ["cn042"]
    assert why["runbook"] == "docs/runbooks/node-failure.md"
    assert "drain it" in why["next_step"]
    assert why["lost_work"] == "30m 0s of run time in 3 failed attempt(s) (4.00 core-hours)"
    retries = [a for a in why["actions"] if a.startswith("scheduled a retry")]
    assert len(retries) == 2
    assert why["actions"][-1].startswith("gave up (attempt 3)")


def test_why_reports_the_latest_valid_checkpoint(
    client: Client, cli: Cli, make_spec: Callable[..., JobSpec]
) -> None:
    job_id = _run(
        client,
        make_spec(name="ckpt", command=["sh", "-c", "exit 4"], checkpoint={"interval": 60}),
    )
    directory = client.settings.home / "checkpoints" / job_id
    writer = Checkpointer(directory, environ={})
    writer.save_json(7, {"step": 7})
    writer.save_json(9, {"step": 9})
    why = _why(cli, job_id)
    assert why["checkpoint"].startswith("latest valid: step 9")
    assert why["checkpoint"].endswith("a retry resumes from it")


def test_why_unknown_job_exits_3(cli: Cli) -> None:
    result = cli("why", "jnothere00")
    assert result.code == 3
    assert "no job 'jnothere00'" in result.err
