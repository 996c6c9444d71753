"""Rendering a JobSpec for sbatch and slurmrestd: pure, plus the script run by a real bash.

That hostile argv arrives verbatim in a real Slurm job is checked by the contract suite
(``test_argv_reaches_the_program_verbatim`` in test_slurm_contract.py, both transports);
here the same script runs under plain bash, and every option is checked.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from hpcbridge.backends import LaunchRequest
from hpcbridge.backends.slurm import render_batch, rest_job, sbatch_argv
from hpcbridge.backends.slurm._render import (
    job_name,
    quote_argv,
    render_array_script,
    walltime_minutes,
)
from hpcbridge.spec import JobSpec, load_spec_document
from tests.backends.test_backend_contract import HOSTILE_ARGS

pytestmark = pytest.mark.slurm


def make_spec(**fields: Any) -> JobSpec:
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "render",
        "command": ["true"],
        "backend": "slurm",
    }
    document.update(fields)
    return load_spec_document(document)


def request(spec: JobSpec, **env: str) -> LaunchRequest:
    return LaunchRequest("jabc", 2, "tok123", spec, {"HPCBRIDGE_JOB_ID": "jabc", **env})


def batch(spec: JobSpec, **kwargs: Any) -> Any:
    return render_batch(
        request(spec),
        log_dir=PurePosixPath("/shared/logs"),
        workdir="/home/u/project",
        default_partition=kwargs.pop("default_partition", "batch"),
        **kwargs,
    )


def test_every_option() -> None:
    spec = make_spec(
        resources={
            "nodes": 2,
            "tasks_per_node": 4,
            "cpus_per_task": 2,
            "mem": "3G",
            "gpus": 2,
            "gpu_type": "a100",
            "walltime": "90s",
        },
        placement={"partition": "gpu", "features": ["bigmem", "ib"], "max_switches": 1},
        licences={"fluent": 3, "abaqus": 1},
        checkpoint={"signal": "SIGUSR1", "grace": "2m"},
    )
    argv = sbatch_argv(batch(spec))
    assert argv[:2] == ["sbatch", "--parsable"]
    expected = {
        "--job-name=hb-tok123",
        "--comment=hpcbridge jabc attempt 2: render",
        "--nodes=2",
        "--ntasks-per-node=4",
        "--cpus-per-task=2",
        "--mem=3072M",
        "--gres=gpu:a100:2",
        "--time=2",
        "--partition=gpu",
        "--constraint=bigmem&ib",
        "--licenses=fluent:3,abaqus:1",
        "--switches=1",
        "--requeue",
        "--signal=B:USR1@120",
        "--open-mode=append",
        "--output=/shared/logs/jabc.2.out",
        "--error=/shared/logs/jabc.2.err",
        "--chdir=/home/u/project",
        "--export=ALL",
    }
    assert expected <= set(argv)
    assert "--no-requeue" not in argv


def test_defaults_and_no_checkpoint() -> None:
    argv = sbatch_argv(batch(make_spec()))
    assert "--no-requeue" in argv
    assert "--partition=batch" in argv  # the cluster's default partition
    assert not [a for a in argv if a.startswith(("--signal", "--gres", "--mem=", "--time"))]
    argv = sbatch_argv(batch(make_spec(resources={"gpus": 1}), default_partition=None))
    assert "--gres=gpu:1" in argv
    assert not [a for a in argv if a.startswith("--partition")]


def test_rest_job_properties() -> None:
    spec = make_spec(
        resources={"nodes": 3, "mem": "1G", "gpus": 1, "walltime": "1h"},
        licences={"fluent": 2},
        checkpoint={},
    )
    job = rest_job(batch(spec, environment={"PATH": "/usr/bin:/bin"}))
    assert job["nodes"] == [3, 3]
    assert job["memory_per_node"] == 1024
    assert job["gres"] == "gpu:1"
    assert job["time_limit"] == 60
    assert job["licenses"] == "fluent:2"
    assert job["requeue"] is True
    assert job["signal"] == "B:USR1@60"
    assert job["environment"] == {"PATH": "/usr/bin:/bin"}
    assert job["current_working_directory"] == "/home/u/project"
    assert job["name"] == job_name("tok123")


def test_walltime_rounds_up_to_whole_minutes() -> None:
    assert [walltime_minutes(s) for s in (None, 1, 60, 61, 3600)] == [None, 1, 1, 2, 60]


def test_no_user_string_reaches_the_shell_unquoted() -> None:
    argv = ["prog", *HOSTILE_ARGS]
    value = "$(id) `id` ;"
    script = batch(make_spec(command=argv, env={"X": value})).script
    quoted = quote_argv(argv)
    assert f"set -- {quoted}\n" in script
    assert shlex.split(quoted) == argv  # every word single-quoted: the shell expands nothing
    assert f"export X={shlex.quote(value)}\n" in script
    with pytest.raises(ValueError, match="NUL"):
        quote_argv(["a\0b"])


def run_script(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "job.sh"
    path.write_text(script)
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path)}
    return subprocess.run(
        ["bash", str(path)], capture_output=True, text=True, env=env, timeout=30, check=False
    )


def test_the_script_gives_argv_and_env_verbatim_under_bash(tmp_path: Path) -> None:
    out = tmp_path / "seen.json"
    program = (
        "import json, os, sys; json.dump([sys.argv[2:], os.environ['TRICKY'], "
        "os.environ['HPCBRIDGE_JOB_ID']], open(sys.argv[1], 'w'))"
    )
    spec = make_spec(
        command=[sys.executable, "-c", program, str(out), *HOSTILE_ARGS],
        env={"TRICKY": "$HOME `id` ;|& 'q' \"dq\"\nline"},
    )
    done = run_script(batch(spec).script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == [HOSTILE_ARGS, "$HOME `id` ;|& 'q' \"dq\"\nline", "jabc"]


def test_the_script_exits_with_the_job_status(tmp_path: Path) -> None:
    spec = make_spec(command=[sys.executable, "-c", "raise SystemExit(42)"])
    assert run_script(batch(spec).script, tmp_path).returncode == 42
    killed = make_spec(command=[sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"])
    assert run_script(batch(killed).script, tmp_path).returncode == 128 + 9


def test_script_mode_with_and_without_shebang(tmp_path: Path) -> None:
    for text in ('#!/bin/sh\necho "sh $MARK"\n', 'echo "plain $MARK"\n'):
        spec = make_spec(command=None, script=text, env={"MARK": "ok"})
        done = run_script(batch(spec).script, tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() in ("sh ok", "plain ok")
    assert not list(tmp_path.glob("hpcbridge-script.*"))  # the temporary script is removed


def test_the_script_forwards_signals_and_keeps_the_exit_status(tmp_path: Path) -> None:
    marker = tmp_path / "signals.txt"
    program = (
        "import signal, sys, time\n"
        "got = []\n"
        "def on(sig, frame): got.append(sig); open(sys.argv[1], 'a').write(f'{sig}\\n')\n"
        "for s in (signal.SIGUSR1, signal.SIGINT, signal.SIGTERM): signal.signal(s, on)\n"
        "deadline = time.time() + 3\n"
        "while time.time() < deadline and len(got) < 3: time.sleep(0.05)\n"
        "raise SystemExit(7)\n"
    )
    path = tmp_path / "job.sh"
    path.write_text(batch(make_spec(command=[sys.executable, "-c", program, str(marker)])).script)
    process = subprocess.Popen(["bash", str(path)], start_new_session=True)
    time.sleep(1.0)
    for signum in (signal.SIGUSR1, signal.SIGINT, signal.SIGTERM):
        os.kill(process.pid, signum)
        time.sleep(0.2)
    assert process.wait(timeout=10) == 7
    assert marker.read_text().split() == [
        str(int(s)) for s in (signal.SIGUSR1, signal.SIGINT, signal.SIGTERM)
    ]


def test_array_script_picks_each_task(tmp_path: Path) -> None:
    out = tmp_path / "tasks"
    out.mkdir()
    program = "import os, sys; open(sys.argv[1], 'w').write(os.environ['HPCBRIDGE_JOB_ID'])"
    requests = [
        LaunchRequest(
            f"jarr.{i}",
            1,
            f"key.{i}",
            make_spec(command=[sys.executable, "-c", program, str(out / f"{i}.txt")]),
            {"HPCBRIDGE_JOB_ID": f"jarr.{i}", "HPCBRIDGE_PROJECT": "p"},
        )
        for i in range(3)
    ]
    script = render_array_script(requests)
    assert script.count("export HPCBRIDGE_PROJECT=p") == 1  # shared variables once
    path = tmp_path / "array.sh"
    path.write_text(script)
    for i in range(3):
        env = {"PATH": os.environ["PATH"], "SLURM_ARRAY_TASK_ID": str(i)}
        subprocess.run(["bash", str(path)], env=env, check=True, timeout=30)
        assert (out / f"{i}.txt").read_text() == f"jarr.{i}"
    env = {"PATH": os.environ["PATH"], "SLURM_ARRAY_TASK_ID": "9"}
    assert subprocess.run(["bash", str(path)], env=env, check=False, timeout=30).returncode == 2
