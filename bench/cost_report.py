"""Cost of the chargeback report as stored attempts grow, and of the burst decision.

Two temporary homes (SQLite stores made by ``open_store``, so the Alembic migration made
the schema) hold ``--small`` and ``--large`` finished attempts, each with the charge the
reconciler records when an attempt ends (``details['cost']``), spread over 28 days, over
four projects and teams, one job in ten retried. Prints one JSON object:

- ``report_p50_s`` per size: median wall time of what ``hpcbridge cost report --by team
  --json`` computes over the whole window (open the store, ``report``, ``as_dict``);
  ``report_ratio_1m_vs_10k``: large / small (whatever sizes were used, see ``attempts``),
  target at most ``data_ratio`` (the report grows no faster than the data).
- ``burst_decision_ms_p99``: the 99th percentile of one ``decide_burst`` over varied
  inputs (gathered beforehand, as at submission: no scheduler call), target < 5 ms;
  ``burst_decision_ms_p50`` too.

    python bench/cost_report.py [--small 10000] [--large 1000000] [--reports 5]

The rows are written with SQLAlchemy bulk inserts: submitting a million jobs through the
client would take far longer than the measurements.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from hpcbridge.config import Settings
from hpcbridge.cost import CardBook, report
from hpcbridge.policy import BurstBudgetLeft, BurstInputs, decide_burst
from hpcbridge.store import SqlStore, Store, open_store
from hpcbridge.store._schema import attempts as attempts_t
from hpcbridge.store._schema import jobs as jobs_t

PROJECTS = ("climate", "genomics", "materials", "vision")
TEAMS = ("atmos", "seq", "dft", "cv")
START = 1_780_000_000.0
SPAN_S = 28 * 86400.0
CHUNK = 20_000
CARD = "hpc1/2026-01"


def _cost(rng: random.Random, succeeded: bool) -> dict[str, Any]:
    cores = rng.choice((1, 2, 4, 8, 16, 32))
    hours = rng.uniform(0.05, 6.0)
    gpus = rng.choice((0, 0, 0, 1, 4))
    amount = cores * hours * 0.03 + gpus * hours * 2.5
    return {
        "amount": round(amount, 6),
        "currency": "EUR",
        "card": CARD,
        "waste": not succeeded,
        "core_hours": round(cores * hours, 6),
        "gpu_hours": round(gpus * hours, 6),
        "mem_gb_hours": round(cores * 4 * hours, 6),
        "licence_hours": 0.0,
        "items": {"cores": round(cores * hours * 0.03, 6)},
    }


def populate(engine: Engine, attempts: int, seed: int) -> None:
    """``attempts`` finished attempts: one job in ten has a failed first attempt."""
    rng = random.Random(seed)
    jobs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    written, index = 0, 0
    while written < attempts:
        index += 1
        job_id = f"j{seed}-{index:08d}"
        project = rng.randrange(len(PROJECTS))
        created = START + rng.random() * SPAN_S
        tries = 2 if rng.random() < 0.1 and written + 2 <= attempts else 1
        jobs.append(_job_row(job_id, project, created, tries))
        for number in range(1, tries + 1):
            succeeded = number == tries
            started = created + number * 60.0
            rows.append(_attempt_row(rng, job_id, number, started, succeeded))
        written += tries
        if len(rows) >= CHUNK:
            _flush(engine, jobs, rows)
            jobs, rows = [], []
    _flush(engine, jobs, rows)


def _job_row(job_id: str, project: int, created: float, tries: int) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "parent_id": None,
        "task_index": None,
        "task_params": {},
        "task_count": 0,
        "name": "sim",
        "project": PROJECTS[project],
        "workload_class": "batch",
        "tags": {"team": TEAMS[project]},
        "backend": "slurm",
        "cluster": "hpc1",
        "spec": {"name": "sim", "command": ["sim"]},
        "priority": 0,
        "state": "succeeded",
        "version": 3 + tries,
        "attempt_count": tries,
        "cancel_requested": False,
        "created_at": created,
        "updated_at": created + 7200,
        "owner": "alice",
    }


def _attempt_row(
    rng: random.Random, job_id: str, number: int, started: float, succeeded: bool
) -> dict[str, Any]:
    ended = started + rng.uniform(60, 7200)
    return {
        "job_id": job_id,
        "number": number,
        "token": f"{job_id}-{number}",
        "backend": "slurm",
        "state": "succeeded" if succeeded else "failed",
        "native_id": str(rng.randrange(10**7)),
        "nodes": ["n1"],
        "created_at": started - 30,
        "submitted_at": started - 20,
        "started_at": started,
        "ended_at": ended,
        "exit_code": 0 if succeeded else 1,
        "failure_class": None if succeeded else "node_failure",
        "details": {"cost": _cost(rng, succeeded), "slurm": {"partition": "batch"}},
    }


def _flush(engine: Engine, jobs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    if not jobs:
        return
    with engine.begin() as conn:
        conn.execute(insert(jobs_t), jobs)
        conn.execute(insert(attempts_t), rows)


@dataclass(frozen=True, slots=True)
class Scale:
    attempts: int
    home: Path
    populate_s: float


def build(root: Path, attempts: int, seed: int) -> Scale:
    home = root / f"a{attempts}"
    store: Store = open_store(_settings(home))
    assert isinstance(store, SqlStore)
    started = time.perf_counter()
    populate(store.engine, attempts, seed)
    store.close()
    return Scale(attempts, home, time.perf_counter() - started)


def _settings(home: Path) -> Settings:
    return Settings(home=home, database_url=None)


def report_once(scale: Scale) -> tuple[float, dict[str, Any]]:
    """What ``hpcbridge cost report --by team --json`` computes over the whole window."""
    started = time.perf_counter()
    store = open_store(_settings(scale.home))
    try:
        found = report(store, CardBook(()), by="team", since=START, until=START + SPAN_S + 86400)
        document = found.as_dict()
    finally:
        store.close()
    return time.perf_counter() - started, document


def burst_latencies_ms(decisions: int, seed: int) -> list[float]:
    """One ``decide_burst`` per job over varied gathered inputs."""
    rng = random.Random(seed)
    budget = (BurstBudgetLeft("burst", "month", 120.0, 500.0, "finops"),)
    inputs = [
        BurstInputs(
            eligible=rng.random() < 0.9,
            wait_threshold_s=rng.choice((0.0, 600.0, 3600.0)),
            onprem_wait_s=rng.choice((None, rng.uniform(0, 20000))),
            burst_wait_s=60.0,
            partition="cloud",
            onprem_cost=rng.uniform(0, 50),
            burst_cost=rng.uniform(0, 200),
            currency="EUR",
            egress_bytes=rng.randrange(10**11),
            egress_price_gb=0.09,
            max_egress_gb=rng.choice((None, 50.0)),
            job_cap=rng.choice((None, 100.0)),
            residency=rng.choice(((), ("onprem",), ("eu",))),
            cloud_regions=("eu",),
            budgets=budget,
            queue_depth=rng.randrange(500),
        )
        for _ in range(decisions)
    ]
    latencies = []
    for one in inputs:
        started = time.perf_counter()
        decide_burst(one)
        latencies.append((time.perf_counter() - started) * 1000.0)
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--reports", type=int, default=5, help="Runs per size (median)")
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hpcb-cost-bench-") as tmp:
        root = Path(tmp)
        scales = [build(root, n, args.seed) for n in (args.small, args.large)]
        sizes: dict[str, dict[str, Any]] = {}
        for scale in scales:
            report_once(scale)  # warm the page cache, as a repeated report finds it
            runs = [report_once(scale) for _ in range(args.reports)]
            total = runs[0][1]["total"]
            assert total["attempts"] == scale.attempts, total
            sizes[str(scale.attempts)] = {
                "report_p50_s": round(statistics.median(r[0] for r in runs), 4),
                "populate_s": round(scale.populate_s, 2),
                "spend": total["spend"],
            }
    small, large = (sizes[str(n)]["report_p50_s"] for n in (args.small, args.large))
    latencies = sorted(burst_latencies_ms(args.decisions, args.seed))
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    ratio = large / small if small else None
    data_ratio = args.large / args.small
    result = {
        "bench": "cost_report",
        "attempts": {"small": args.small, "large": args.large},
        "data_ratio": data_ratio,
        "sizes": sizes,
        "report_p50_s_small": small,
        "report_p50_s_large": large,
        "report_ratio_1m_vs_10k": None if ratio is None else round(ratio, 2),
        "report_ratio_target": f"<= {data_ratio:g}",
        "report_ratio_met": ratio is not None and ratio <= data_ratio,
        "burst_decisions": args.decisions,
        "burst_decision_ms_p50": round(statistics.median(latencies), 5),
        "burst_decision_ms_p99": round(p99, 5),
        "burst_decision_target_ms": 5.0,
        "burst_decision_met": p99 < 5.0,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
