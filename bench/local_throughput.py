"""Throughput and start latency of the local executor vs other ways to run the same jobs.

The same ``--jobs`` runs of ``true``, at most ``--concurrency`` at a time, by:

- ``raw``: ``fork`` + ``exec`` of each directly from this process;
- ``files_floor``: the same, but each process gets what every local attempt must have and
  nothing more (a job directory, an attempt directory and a work directory, stdout and
  stderr files, its own session): what spawning costs once an executor keeps per-attempt
  directories and logs, with no control plane at all;
- ``parallel``: GNU parallel (``parallel -j C -N0 true``, its defaults otherwise: each
  job's output buffered in temporary files), one job per input line;
- ``xargs``: ``xargs -P C -I{} true``, one job per input line;
- ``hpcbridge``: the jobs submitted to hpcbridge in embedded mode (the reconciler in a
  thread of this process, as in ``hpcbridge run``) and run to completion: every state
  change committed to SQLite with synchronous=FULL, each attempt started, reaped and its
  pid and exit status written to its directory by the local executor's launcher process.

Each command is timed from its start to its exit, so the baselines include their own
start-up (GNU parallel: about 0.1 s of Perl); hpcbridge from its first submit call to the
last job recorded as succeeded. The runners take turns within each round, in a rotated
order, so that a busy moment of a shared machine hits all of them; each ``*_ratio`` is the
median over rounds of hpcbridge's rate divided by the other runner's in the same round.

Prints one JSON object: ``rates`` (jobs/s) and ``jobs_per_min``, medians over rounds
(``per_round`` has each round's jobs/s); ``ratio`` = hpcbridge/raw, ``parallel_ratio`` =
hpcbridge/GNU parallel, ``xargs_ratio`` = hpcbridge/xargs, ``files_floor_ratio`` =
floor/raw, ``ratio_vs_files_floor`` = hpcbridge/floor; ``start_latency_p50_ms`` /
``_p95_ms``: submit call to the job's first instruction, one job at a time while slots are
free; ``create_file_us``: what creating one empty file costs in ``--dir`` (median of each
round's median). hpcbridge creates seven inodes per job there (three directories and two
logs when the job is submitted, the launcher's pid and exit files around its run), the
floor five and GNU parallel two (its buffers,
deleted at once); raw and xargs none. Where ``create_file_us`` is large, the ratios measure
the filesystem as much as the runners: on ext4 without a journal, for one, creating a file
skips every inode of its block group deleted in the last few minutes, so a run right after
another (or after anything that deleted many files nearby) creates files more slowly.

    python bench/local_throughput.py [--jobs 1000] [--concurrency N] [--rounds 3] [--dir D]

Measured (2 cores, 1,000 jobs x 3 rounds): on a tmpfs ``ratio`` 0.40-0.44,
``parallel_ratio`` 2.62-2.67, 870-1,030 jobs/s (840 before the control plane's CPU per
job fell by a third, 478 with the per-job shim). On ext4 it follows file creation: 0.37
and 2.50 with files created in 24 us, 0.24 and 1.55 at 80 us, where the files floor
itself was 0.35 of direct spawns (hpcbridge at 0.5-0.8 of that floor).

``--dir`` (default: the system's temporary directory, which ``TMPDIR`` sets) holds the
store, the job directories and GNU parallel's temporary files (its ``TMPDIR``). On a tmpfs
(``--dir /dev/shm``) file creation is cheap and every fsync is free: the store's
durability costs nothing there, so read such a run as the CPU side of the comparison only.
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
from typing import Any

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import load_spec_document

TRUE = shutil.which("true") or "/bin/true"
DATE = shutil.which("date") or "/bin/date"
RUNNERS = ("raw", "files_floor", "parallel", "xargs", "hpcbridge")


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

    def reap_one() -> None:
        pid, status = os.wait()
        child = running.pop(pid, None)  # None: a launcher of an earlier round that exited
        if child is not None:
            child.returncode = os.waitstatus_to_exitcode(status)

    for index in range(jobs):
        while len(running) >= concurrency:
            reap_one()
        child = spawn(index)
        running[child.pid] = child
    while running:
        reap_one()
    return jobs / (time.perf_counter() - started)


def gnu_parallel() -> str:
    """GNU parallel's path; moreutils ships a different ``parallel`` that this bench refuses."""
    path = shutil.which("parallel")
    version = ""
    if path is not None:
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, check=False
        ).stdout
    if path is None or not version.startswith("GNU parallel"):
        raise SystemExit(
            "GNU parallel is not installed (this bench compares against it): "
            "apt-get install parallel"
        )
    return path


def command_rate(argv: list[str], jobs: int, env: dict[str, str] | None = None) -> float:
    """``jobs`` jobs run by one command (GNU parallel, xargs) fed one line per job."""
    lines = "".join(f"{i}\n" for i in range(jobs)).encode()
    started = time.perf_counter()
    done = subprocess.run(argv, input=lines, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{argv[0]} exited with {done.returncode}: {done.stderr.decode(errors='replace')}"
        )
    return jobs / elapsed


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


def create_file_us(directory: Path, files: int = 100) -> float:
    """Median time to create one empty file in ``directory`` (kept: deleting is not free)."""
    directory.mkdir()
    times = []
    for index in range(files):
        started = time.perf_counter()
        os.close(os.open(directory / str(index), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all runners; medians")
    parser.add_argument("--dir", type=Path, default=None, help="where all runners write")
    args = parser.parse_args()
    jobs, concurrency = args.jobs, args.concurrency
    parallel = gnu_parallel()
    rates: dict[str, list[float]] = {name: [] for name in RUNNERS}
    creates: list[float] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        parallel_tmp = root / "parallel-tmp"
        parallel_tmp.mkdir()
        parallel_env = {**os.environ, "TMPDIR": str(parallel_tmp)}
        runners: dict[str, Callable[[int], float]] = {
            "raw": lambda _: raw_rate(jobs, concurrency),
            "files_floor": lambda r: files_floor_rate(root / f"floor-{r}", jobs, concurrency),
            "parallel": lambda _: command_rate(
                [parallel, "--will-cite", "-j", str(concurrency), "-N0", TRUE],
                jobs,
                parallel_env,
            ),
            "xargs": lambda _: command_rate(["xargs", "-P", str(concurrency), "-I{}", TRUE], jobs),
            "hpcbridge": lambda r: hpcbridge_rate(root / f"hpcbridge-{r}", jobs, concurrency),
        }
        for round_ in range(args.rounds):
            creates.append(create_file_us(root / f"create-{round_}"))
            # A rotated order each round: no runner always follows the same one.
            shift = round_ % len(RUNNERS)
            for name in RUNNERS[shift:] + RUNNERS[:shift]:
                rates[name].append(runners[name](round_))
        latencies = start_latencies_ms(root / "latency", args.latency_samples)

    def ratio(name: str, baseline: str) -> float:
        paired = [a / b for a, b in zip(rates[name], rates[baseline], strict=True)]
        return round(statistics.median(paired), 3)

    medians = {name: statistics.median(values) for name, values in rates.items()}
    result: dict[str, Any] = {
        "benchmark": "local_throughput",
        "jobs": jobs,
        "concurrency": concurrency,
        "rounds": args.rounds,
        "rates": {name: round(rate, 1) for name, rate in medians.items()},
        "jobs_per_min": {name: round(rate * 60) for name, rate in medians.items()},
        "per_round": {name: [round(rate, 1) for rate in values] for name, values in rates.items()},
        "ratio": ratio("hpcbridge", "raw"),
        "parallel_ratio": ratio("hpcbridge", "parallel"),
        "xargs_ratio": ratio("hpcbridge", "xargs"),
        "files_floor_ratio": ratio("files_floor", "raw"),
        "ratio_vs_files_floor": ratio("hpcbridge", "files_floor"),
        "start_latency_p50_ms": round(statistics.median(latencies), 2),
        "start_latency_p95_ms": round(statistics.quantiles(latencies, n=20)[-1], 2),
        "create_file_us": round(statistics.median(creates), 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "target": {"ratio_min": 0.35, "parallel_ratio_min": 2, "start_latency_p50_ms_max": 50},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
