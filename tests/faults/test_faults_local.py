"""Fault injection on the local executor: a few hundred jobs and arrays run through a
control plane whose every backend call and store write may fail (before or after taking
effect) and which dies at random points and restarts. Seeded: a failure names its seed.

0 duplicate submissions, 0 duplicate executions, 0 lost jobs, records equal to what
happened: each program writes down the attempt that ran it when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.backends.local import LocalBackend
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import load_spec_document
from hpcbridge.store import SqlStore

from ._driver import Driver, check_truth
from ._inject import FaultPlan

SINGLE_JOBS = 120
ARRAYS = 3
TASKS_PER_ARRAY = 60
# argv only (no shell line from a user): the attempt is written when the program ends.
PROGRAM = 'sleep 0.05; echo "$HPCBRIDGE_ATTEMPT" >>"$1/$HPCBRIDGE_JOB_ID"'


def _spec(name: str, out: Path, **fields: Any) -> Any:
    return load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": name,
            "command": ["/bin/sh", "-c", PROGRAM, "sh", str(out)],
            "retry": {
                "max_attempts": 6,
                "backoff": {"initial": "1s", "max": "2s"},
                "retry_on": ["lost", "node_failure"],
            },
            **fields,
        }
    )


def _bury(backend: LocalBackend) -> None:
    """A dead control plane's queue of not-yet-started attempts dies with it: its pipe to
    the launcher closes, and the launcher drops what it has not started."""
    backend.close()


@pytest.fixture
def submitted(tmp_path: Path) -> Iterator[tuple[Settings, Path]]:
    out = tmp_path / "out"
    out.mkdir()
    settings = Settings(home=tmp_path / "home", local_cpus=8, kill_grace_s=1)
    client = Client(settings)
    specs = [_spec(f"single-{i}", out) for i in range(SINGLE_JOBS)]
    specs += [
        _spec(f"sweep-{i}", out, array={"indices": f"0-{TASKS_PER_ARRAY - 1}", "throttle": 20})
        for i in range(ARRAYS)
    ]
    client.submit_many(specs)
    client.close()
    yield settings, out


def _runs(out: Path) -> dict[str, list[int]]:
    return {path.name: [int(n) for n in path.read_text().split()] for path in out.iterdir()}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_local_executor_under_faults_and_crashes(
    submitted: tuple[Settings, Path], tmp_path: Path, seed: int
) -> None:
    settings, out = submitted
    plan = FaultPlan(seed=seed, error_rate=0.1, crash_rate=0.03)
    driver = Driver(
        url=settings.resolved_database_url,
        backend_name="local",
        make_backend=lambda: LocalBackend(settings),
        bury=_bury,
        plan=plan,
        root=tmp_path,
        lost_grace_s=5.0,
        queue_dies_with_process=True,
    )
    driver.start()
    try:
        deadline = time.monotonic() + 120
        while not driver.all_done() and time.monotonic() < deadline and driver.crashes < 25:
            driver.cycle()
            time.sleep(0.02)
        plan.enabled = False  # then let it finish cleanly
        driver.run_until_done(timeout_s=120)
    finally:
        driver.close()
    time.sleep(0.5)  # a program wrongly started twice would have written by now
    assert driver.crashes > 0 and sum(plan.injected.values()) > 20, plan.injected
    problems = check_truth(settings.resolved_database_url, _runs(out), driver.sent)
    assert problems == [], f"seed {seed}: {problems[:20]} (faults: {dict(plan.injected)})"
    store = SqlStore(settings.resolved_database_url)
    try:
        total = SINGLE_JOBS + ARRAYS * TASKS_PER_ARRAY
        assert len(_runs(out)) == total
    finally:
        store.close()
