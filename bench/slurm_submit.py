"""Submission and tracking cost on the real Slurm test cluster, against plain ``sbatch``.

Starts the test cluster (``scripts/slurm-cluster start``) if it is not running, then
prints one JSON object:

- ``single_ratio``: 1,000 single jobs submitted through hpcbridge (job rows, attempts,
  ``sbatch``, every submission recorded) per second, over a plain loop of ``sbatch`` calls
  of the same batch script (target >= 0.8);
- ``sweep_ratio``: the time to submit a 10,000-point sweep through hpcbridge (one
  ``sbatch --array``) over the time of 10,000 separate ``sbatch`` calls (target <= 0.1);
- ``commands_per_cycle``: Slurm commands one reconcile cycle issues with 1, 100 and 5,000
  active jobs (target: constant);
- ``cycle_cpu_s_5000``: CPU seconds of one cycle that tracks 5,000 jobs.

While it runs, the ``batch`` partition is down (jobs queue but never start: their launches
on this same machine would compete with what is measured); it is up again at the end.
Every job this benchmark submits is cancelled by its id before it moves on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from hpcbridge.backends.slurm import SlurmBackend
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import JobSpec, load_spec_document

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "scripts" / "slurm-cluster"
PARTITION = "batch"


def cluster_env() -> dict[str, str]:
    status = subprocess.run([str(CLUSTER_SCRIPT), "status"], capture_output=True, check=False)
    if status.returncode != 0:
        subprocess.run([str(CLUSTER_SCRIPT), "start"], check=True, stdout=subprocess.DEVNULL)
    exports = subprocess.run(
        [str(CLUSTER_SCRIPT), "env"], capture_output=True, text=True, check=True
    ).stdout
    env = dict(os.environ)
    for line in exports.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name and value:
            env[name] = value.strip("'\"")
    return env


def partition(env: dict[str, str], state: str) -> None:
    subprocess.run(
        ["scontrol", "update", f"PartitionName={PARTITION}", f"State={state}"],
        env=env,
        check=True,
    )


def spec(name: str, command: Sequence[str], **fields: object) -> JobSpec:
    return load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": name,
            "project": "bench",
            "backend": "slurm",
            "command": list(command),
            "resources": {"walltime": "10m"},
            "placement": {"partition": PARTITION},
            **fields,
        }
    )


class Bench:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.env = env
        clusters = root / "clusters.yaml"
        clusters.write_text(
            "clusters:\n"
            "  bench:\n"
            "    default: true\n"
            f"    slurm_conf: {env['SLURM_CONF']}\n"
            f"    log_dir: {root / 'logs'}\n"
        )
        self.client = Client(Settings(home=root / "home", clusters_file=clusters))
        backend = self.client.backends["slurm"]
        assert isinstance(backend, SlurmBackend)
        self.backend = backend
        self.script = root / "true.sh"
        self.script.write_text("#!/bin/bash\ntrue\n")

    @property
    def commands(self) -> int:
        return self.backend.transport().commands

    def submit_until_recorded(
        self, specs: Sequence[JobSpec], expected: int
    ) -> tuple[float, list[str]]:
        """Seconds from the submit call until ``expected`` attempts are recorded as at Slurm
        (counted from the cycles' reports: quick tasks may finish before the last is in)."""
        started = time.perf_counter()
        self.client.submit_many(list(specs), actor="bench")
        recorded = 0
        while recorded < expected:
            report = self.client.reconcile_once()
            recorded += report.submitted if report is not None else 0
        return time.perf_counter() - started, self.native_ids()

    def native_ids(self) -> list[str]:
        return [a.native_id for a in self.client.store.active_attempts() if a.native_id]

    def sbatch_loop(self, count: int) -> tuple[float, list[str]]:
        started = time.perf_counter()
        ids = []
        for _ in range(count):
            out = subprocess.run(
                [
                    "sbatch",
                    "--parsable",
                    "-p",
                    "batch",
                    "-t",
                    "10",
                    "-o",
                    "/dev/null",
                    str(self.script),
                ],
                capture_output=True,
                text=True,
                check=True,
                env=self.env,
            )
            ids.append(out.stdout.strip().split(";")[0])
        return time.perf_counter() - started, ids

    def cancel(self, native_ids: Sequence[str]) -> None:
        """scancel by id; each phase then starts afresh (see ``phase``)."""
        ids = sorted({n.split("_", 1)[0] for n in native_ids})
        for chunk in range(0, len(ids), 500):
            subprocess.run(["scancel", *ids[chunk : chunk + 500]], env=self.env, check=False)
        # Let slurmctld finish with them, so that the next measurement starts from quiet.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            queue = subprocess.run(
                ["squeue", "-h", "-o", "%i", "-p", PARTITION],
                capture_output=True,
                text=True,
                env=self.env,
                check=False,
            )
            if not queue.stdout.strip():
                break
            time.sleep(1)

    def commands_per_cycle(self) -> int:
        self.client.reconcile_once()  # settle anything that changed meanwhile
        before = self.commands
        self.client.reconcile_once()
        return self.commands - before


def single(bench: Bench, jobs: int) -> dict[str, float]:
    loop_s, loop_ids = bench.sbatch_loop(jobs)
    bench.cancel(loop_ids)
    specs = [spec(f"single-{i}", ["true"]) for i in range(jobs)]
    ours_s, ours_ids = bench.submit_until_recorded(specs, jobs)
    bench.cancel(ours_ids)
    return {"sbatch_loop_rate": jobs / loop_s, "hpcbridge_rate": jobs / ours_s}


def sweep(bench: Bench, points: int, loop_sample: int) -> dict[str, float | int]:
    sample = min(points, loop_sample)
    loop_s, loop_ids = bench.sbatch_loop(sample)
    bench.cancel(loop_ids)
    loop_total = loop_s * points / sample  # one call costs the same however many came before
    swept = spec("sweep", ["true"], array={"indices": f"0-{points - 1}"})
    ours_s, ours_ids = bench.submit_until_recorded([swept], points)
    bench.cancel(ours_ids)
    return {
        "points": points,
        "loop_measured_calls": sample,
        "loop_s": loop_total,
        "hpcbridge_s": ours_s,
    }


def tracking(bench: Bench, sizes: Sequence[int]) -> tuple[dict[str, int], float]:
    counts: dict[str, int] = {}
    cpu_largest = 0.0
    for size in sizes:
        held = spec(f"track-{size}", ["sleep", "600"], array={"indices": f"0-{size - 1}"})
        _, ids = bench.submit_until_recorded([held], size)
        counts[str(size)] = bench.commands_per_cycle()
        if size == max(sizes):
            started = time.process_time()
            bench.client.reconcile_once()
            cpu_largest = time.process_time() - started
        bench.cancel(ids)
    return counts, cpu_largest


T = TypeVar("T")


def phase(root: Path, env: dict[str, str], run: Callable[[Bench], T]) -> T:
    """Each measurement gets its own hpcbridge home: nothing left over skews the next."""
    root.mkdir()
    bench = Bench(root, env)
    try:
        return run(bench)
    finally:
        bench.cancel(bench.native_ids())
        bench.client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000, help="single jobs")
    parser.add_argument("--sweep", type=int, default=10000, help="sweep points")
    parser.add_argument(
        "--loop-sample",
        type=int,
        default=2000,
        help="sbatch calls timed for the sweep's baseline, scaled to --sweep",
    )
    parser.add_argument("--track", default="1,100,5000", help="active job counts")
    args = parser.parse_args()
    sizes = [int(s) for s in args.track.split(",")]
    env = cluster_env()
    os.environ.update({k: v for k, v in env.items() if k.startswith("SLURM")})
    # Jobs queue but never start while the partition is down: otherwise the nodes' job
    # launches (on this same machine) compete with what is measured, run by run.
    partition(env, "DOWN")
    with contextlib.ExitStack() as cleanup, tempfile.TemporaryDirectory(prefix="hpcbridge-") as tmp:
        cleanup.callback(partition, env, "UP")
        root = Path(tmp)
        one = phase(root / "single", env, lambda b: single(b, args.jobs))
        many = phase(root / "sweep", env, lambda b: sweep(b, args.sweep, args.loop_sample))
        counts, cpu = phase(root / "tracking", env, lambda b: tracking(b, sizes))
    print(
        json.dumps(
            {
                "benchmark": "slurm_submit",
                "jobs": args.jobs,
                "sbatch_loop_rate": round(one["sbatch_loop_rate"], 1),
                "hpcbridge_rate": round(one["hpcbridge_rate"], 1),
                "single_ratio": round(one["hpcbridge_rate"] / one["sbatch_loop_rate"], 3),
                "sweep": {k: round(v, 2) if isinstance(v, float) else v for k, v in many.items()},
                "sweep_ratio": round(float(many["hpcbridge_s"]) / float(many["loop_s"]), 4),
                "commands_per_cycle": counts,
                "cycle_cpu_s_5000": round(cpu, 3),
                "target": {
                    "single_ratio_min": 0.8,
                    "sweep_ratio_max": 0.1,
                    "commands_per_cycle": "constant",
                },
            }
        )
    )


if __name__ == "__main__":
    main()
