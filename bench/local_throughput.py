"""Throughput and start latency of the local executor vs spawning the same processes directly.

Prints one JSON object:

- ``raw_rate``: jobs/s spawning ``true`` directly, at most ``concurrency`` in flight;
- ``files_floor_rate``: the same, but each process gets what every local attempt must have
  and nothing more (a job directory, an attempt directory and a work directory, stdout and
  stderr files, its own session): what spawning costs once an executor keeps per-attempt
  directories and logs, with no control plane at all;
- ``hpcbridge_rate``: the same jobs submitted to hpcbridge in embedded mode and run to
  completion, every state change committed to SQLite with synchronous=FULL;
- ``ratio`` = hpcbridge/raw (the target), ``files_floor_ratio`` = floor/raw and
  ``ratio_vs_files_floor`` = hpcbridge/floor;
- ``start_latency_p50_ms``: submit call to the job's first instruction, one job at a time
  while slots are free.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import load_spec_document

TRUE = shutil.which("true") or "/bin/true"
DATE = shutil.which("date") or "/bin/date"


def raw_rate(jobs: int, concurrency: int) -> float:
    return _spawn_all(lambda _: subprocess.Popen([TRUE]), jobs, concurrency)


def files_floor_rate(root: Path, jobs: int, concurrency: int) -> float:
    """Spawn directly, with the per-attempt files an executor must create (no control plane)."""
    env = dict(os.environ)

    def spawn(index: int) -> subprocess.Popen[bytes]:
        # The layout of the local executor: <runs>/<job>/attempt-<n>/work.
        attempt = root / f"job-{index}" / "attempt-1"
        os.mkdir(attempt.parent)
        os.mkdir(attempt)
        os.mkdir(attempt / "work")
        with open(attempt / "stdout.log", "ab") as out, open(attempt / "stderr.log", "ab") as err:
            return subprocess.Popen(
                [TRUE],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=attempt / "work",
                env=env,
                start_new_session=True,
            )

    root.mkdir(parents=True)
    return _spawn_all(spawn, jobs, concurrency)


def _spawn_all(
    spawn: Callable[[int], subprocess.Popen[bytes]], jobs: int, concurrency: int
) -> float:
    started = time.perf_counter()
    running: dict[int, subprocess.Popen[bytes]] = {}
    for index in range(jobs):
        if len(running) >= concurrency:
            pid, status = os.wait()
            running.pop(pid).returncode = os.waitstatus_to_exitcode(status)
        child = spawn(index)
        running[child.pid] = child
    while running:
        pid, status = os.wait()
        running.pop(pid).returncode = os.waitstatus_to_exitcode(status)
    return jobs / (time.perf_counter() - started)


def _spec(index: int, command: list[str] | None = None) -> dict[str, object]:
    return {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": f"bench-{index}",
        "command": command or [TRUE],
        "project": "bench",
    }


class Embedded:
    """A client whose reconciler runs in a background thread, as in ``hpcbridge run``."""

    def __init__(self, home: Path, concurrency: int) -> None:
        settings = Settings(home=home, local_cpus=concurrency, poll_interval_s=0.2)
        self.client = Client(settings)
        self._stop = threading.Event()
        self._submitted = threading.Event()
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._drive, daemon=True)
        self._thread.start()

    def _drive(self) -> None:
        def done() -> bool:
            if self._submitted.is_set() and not self.client.has_active_jobs():
                self.finished.set()
            return self._stop.is_set()

        self.client.drive(done)

    def submitted(self) -> None:
        self._submitted.set()

    def close(self) -> None:
        self._stop.set()
        self.client._wake.set()
        self._thread.join()
        self.client.close()


def hpcbridge_rate(home: Path, jobs: int, concurrency: int) -> float:
    embedded = Embedded(home, concurrency)
    client = embedded.client
    specs = [load_spec_document(_spec(i)) for i in range(jobs)]
    started = time.perf_counter()
    submitted = client.submit_many(specs, actor="bench")
    embedded.submitted()
    embedded.finished.wait()
    elapsed = time.perf_counter() - started
    states = {client.get(job.job_id).state.value for job in submitted}
    embedded.close()
    if states != {"succeeded"}:
        raise SystemExit(f"benchmark jobs did not all succeed: {states}")
    return jobs / elapsed


def start_latencies_ms(home: Path, samples: int) -> list[float]:
    embedded = Embedded(home, concurrency=2)
    client = embedded.client
    latencies = []
    for index in range(samples):
        # The job prints the clock the moment it runs (file mtimes are too coarse for ms).
        spec = load_spec_document(_spec(index, [DATE, "+%s.%N"]))
        before = time.time()
        job = client.submit(spec, actor="bench")
        while client.get(job.job_id).state.value != "succeeded":
            time.sleep(0.002)
        stdout, _ = client.log_paths(job.job_id)
        assert stdout is not None
        started = float(stdout.read_text().split()[0])
        latencies.append((started - before) * 1000)
    embedded.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians")
    args = parser.parse_args()
    raws, floors, ours_runs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        # Alternate baseline and hpcbridge so that noise from a shared machine hits both.
        for round_ in range(args.rounds):
            raws.append(raw_rate(args.jobs, args.concurrency))
            floor_root = Path(tmp) / f"floor-{round_}"
            floors.append(files_floor_rate(floor_root, args.jobs, args.concurrency))
            home = Path(tmp) / f"throughput-{round_}"
            ours_runs.append(hpcbridge_rate(home, args.jobs, args.concurrency))
        latencies = start_latencies_ms(Path(tmp) / "latency", args.latency_samples)
    raw, ours = statistics.median(raws), statistics.median(ours_runs)
    floor = statistics.median(floors)
    print(
        json.dumps(
            {
                "benchmark": "local_throughput",
                "jobs": args.jobs,
                "concurrency": args.concurrency,
                "rounds": args.rounds,
                "raw_rate": round(raw, 1),
                "files_floor_rate": round(floor, 1),
                "hpcbridge_rate": round(ours, 1),
                "ratio": round(ours / raw, 3),
                "files_floor_ratio": round(floor / raw, 3),
                "ratio_vs_files_floor": round(ours / floor, 3),
                "start_latency_p50_ms": round(statistics.median(latencies), 2),
                "start_latency_p95_ms": round(statistics.quantiles(latencies, n=20)[-1], 2),
                "target": {"ratio_min": 0.5, "start_latency_p50_ms_max": 50},
            }
        )
    )


if __name__ == "__main__":
    main()
