"""SIGKILL of the real control plane process at seeded random moments, again and again.

Jobs and a sweep on the local executor with SQLite; ``hpcbridge agent`` is killed (no
cleanup of any kind) and started again several times, then left to finish. Every program
runs once per attempt, every job ends succeeded, and the records match what ran.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import load_spec_document

from ._driver import check_truth

PROGRAM = 'sleep "$2"; echo "$HPCBRIDGE_ATTEMPT" >>"$1/$HPCBRIDGE_JOB_ID"'
SINGLE_JOBS = 60
TASKS = 40


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3])
def test_an_agent_sigkilled_again_and_again_loses_and_repeats_nothing(
    tmp_path: Path, seed: int
) -> None:
    chooser = random.Random(seed)
    out = tmp_path / "out"
    out.mkdir()
    settings = Settings(home=tmp_path / "home", local_cpus=6)
    specs = [
        load_spec_document(
            {
                "apiVersion": "hpcbridge/v1",
                "kind": "Job",
                "name": f"job-{i}",
                "command": [
                    "/bin/sh",
                    "-c",
                    PROGRAM,
                    "sh",
                    str(out),
                    f"{chooser.uniform(0.1, 1.0):.2f}",
                ],
                **({"array": {"indices": f"0-{TASKS - 1}"}} if i == SINGLE_JOBS else {}),
            }
        )
        for i in range(SINGLE_JOBS + 1)
    ]
    client = Client(settings)
    client.submit_many(specs)
    client.close()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HPCBRIDGE_")},
        "HPCBRIDGE_HOME": str(settings.home),
        "HPCBRIDGE_LOCAL_CPUS": "6",
        "HPCBRIDGE_POLL_INTERVAL_S": "0.1",
    }

    def agent() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "hpcbridge", "agent"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    for _ in range(6):
        process = agent()
        time.sleep(chooser.uniform(0.5, 2.5))  # past start-up, at a random point of its work
        process.send_signal(signal.SIGKILL)
        process.wait()
    last = agent()
    assert last.wait(timeout=240) == 0
    time.sleep(1.2)  # a program wrongly run twice would have written by now
    runs = {p.name: [int(n) for n in p.read_text().split()] for p in out.iterdir()}
    assert check_truth(settings.resolved_database_url, runs, Counter()) == []
    assert len(runs) == SINGLE_JOBS + TASKS
