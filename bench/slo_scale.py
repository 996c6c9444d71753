"""Cost of ``hpcbridge slo report`` and of a ``/metrics`` scrape as the stored history grows.

Two temporary homes hold the same mix of jobs spread over ``--days`` days (retries,
failure classes, spot preemptions, checkpoint saves, a few jobs still running): about
``--events-small`` and about ``--events-large`` events. Prints one JSON object:

- ``scrape_s``: median time of ``generate_latest(registry)`` on a ``StoreCollector`` that
  has already folded the history (as ``hpcbridge serve`` does at start). Before each scrape
  one more finished job is written, so every scrape also folds a few new events, as on a
  live server. ``catch_up_s`` is the one-off fold of the whole history.
- ``report_s``: median time of what ``hpcbridge slo report --json`` computes with the
  built-in SLOs: open the store, ``finished_jobs``, ``build_samples_by_slo``,
  ``slo_report`` and ``report_to_dict``.
- ``scrape_ratio_1m_vs_10k``, ``report_ratio_1m_vs_10k``: large / small (whatever sizes
  were used, see ``events``), and ``events_ratio``. Targets: the scrape costs about the
  same at both sizes; the report grows no faster than the events do.

    python bench/slo_scale.py [--events-small 10000] [--events-large 1000000] [--days 28]

The history is written with SQLAlchemy bulk inserts of the final rows, into a store
created by ``open_store`` (so the Alembic migration made the schema): replaying a million
events through ``transition()`` would take far longer than the measurements.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, func, insert, select

from hpcbridge.config import Settings
from hpcbridge.slo import (
    build_samples_by_slo,
    default_slos,
    finished_jobs,
    report_to_dict,
    slo_report,
)
from hpcbridge.store import SqlStore, Store, new_job_id, open_store
from hpcbridge.store._schema import attempts as attempts_t
from hpcbridge.store._schema import events as events_t
from hpcbridge.store._schema import jobs as jobs_t
from hpcbridge.telemetry import StoreCollector

Row = dict[str, Any]

PROJECTS = ("climate", "genomics", "materials", "vision")
CLASSES = (("batch", 0.6), ("priority", 0.25), ("critical", 0.15))
FAILURES = (
    ("node_failure", 0.02),
    ("preempted", 0.03),
    ("timeout", 0.015),
    ("oom", 0.015),
    ("app_error", 0.03),
    ("cancelled", 0.005),
)
SPOT_PREEMPTION = 0.12
RETRIED = frozenset({"node_failure", "preempted"})
MAX_ATTEMPTS = 3
EXIT_CODES = {"succeeded": 0, "app_error": 1, "oom": 137}
MEAN_QUEUE_S = {"batch": 300.0, "priority": 900.0, "critical": 120.0}
CHECKPOINT_INTERVAL_S = 900.0
BACKOFF_S = 30.0
RUNNING_JOB_EVENTS = 5  # accepted, queued, submitted, attempt running, running
FLUSH_ROWS = 20_000


def _weighted(rng: random.Random, choices: Iterable[tuple[str, float]]) -> str:
    draw = rng.random()
    last = ""
    for value, weight in choices:
        if draw < weight:
            return value
        draw -= weight
        last = value
    return last


class History:
    """One job's stored rows, built in the order the reconciler writes them.

    ``written`` holds when each event row reaches the log: its own time, except for what
    the job wrote into its status directory (checkpoint saves), which the reconciler
    copies once the attempt has ended, keeping the time the job gave them.
    """

    def __init__(self, rng: random.Random, job_id: str, created_at: float) -> None:
        self.rng = rng
        self.job_id = job_id
        self.now = created_at
        self.workload_class = _weighted(rng, CLASSES)
        self.backend = "slurm" if rng.random() < 0.8 else "local"
        self.spot = self.backend == "slurm" and rng.random() < 0.3
        self.checkpoints = rng.random() < 0.5
        self.events: list[Row] = []
        self.written: list[float] = []
        self.attempts: list[Row] = []
        self.job = self._job_row(rng.choice(PROJECTS), created_at)
        self._event("accepted", to_state="accepted", actor="bench")
        self._move("queued", reason="waiting to start")

    def _job_row(self, project: str, created_at: float) -> Row:
        resources = {"nodes": 1, "cpus_per_task": self.rng.choice((1, 4, 16))}
        spec = {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": f"{project}-train",
            "project": project,
            "workload_class": self.workload_class,
            "command": ["python", "train.py"],
            "resources": resources,
        }
        return {
            "job_id": self.job_id,
            "parent_id": None,
            "task_index": None,
            "task_params": {},
            "task_count": 0,
            "name": spec["name"],
            "project": project,
            "workload_class": self.workload_class,
            "tags": {"team": project},
            "backend": self.backend,
            "cluster": "hpc1" if self.backend == "slurm" else None,
            "spec": spec,
            "priority": 0,
            "state": "accepted",
            "version": 1,
            "reason": None,
            "failure_class": None,
            "exit_code": None,
            "attempt_count": 0,
            "next_attempt_at": None,
            "cancel_requested": False,
            "created_at": created_at,
            "updated_at": created_at,
            "started_at": None,
            "finished_at": None,
            "idempotency_key": None,
        }

    def _event(
        self, kind: str, *, actor: str = "system", at: float | None = None, **fields: Any
    ) -> None:
        row: Row = {
            "attempt": None,
            "from_state": None,
            "to_state": None,
            "reason": None,
            "data": {},
        }
        when = self.now if at is None else at
        self.events.append(
            row | fields | {"job_id": self.job_id, "time": when, "kind": kind, "actor": actor}
        )
        self.written.append(self.now)

    def _move(self, target: str, **fields: Any) -> None:
        job = self.job
        self._event("transition", from_state=job["state"], to_state=target, **fields)
        job["state"], job["version"], job["updated_at"] = target, job["version"] + 1, self.now
        job["reason"] = fields.get("reason")

    def run(self, *, leave_running: bool) -> History:
        """Attempts until one succeeds, fails for good or retries run out."""
        recovered_from: tuple[float, str] | None = None
        for number in range(1, MAX_ATTEMPTS + 1):
            keep_running = leave_running and number == 1
            outcome = self._attempt(number, recovered_from, leave_running=keep_running)
            if outcome is None or self._settle(number, outcome):
                break
            recovered_from = (self.now - BACKOFF_S, outcome)
        return self

    def _attempt(
        self, number: int, recovered_from: tuple[float, str] | None, *, leave_running: bool
    ) -> str | None:
        rng = self.rng
        native_id = f"{rng.randrange(10**6, 10**7)}"
        attempt = {"native_id": native_id, "backend": self.backend}
        self._event("attempt_submitted", attempt=number, data=attempt)
        submitted = self.now
        self.now += rng.expovariate(1.0 / MEAN_QUEUE_S[self.workload_class])
        started = self.now
        nodes = [f"n{rng.randrange(64):03d}"] if self.backend == "slurm" else ["localhost"]
        self._event("attempt_running", attempt=number)
        data: Row = {}
        if recovered_from is not None:
            data = {
                "time_to_recover_s": round(self.now - recovered_from[0], 3),
                "recovered_from": recovered_from[1],
            }
        self._move("running", attempt=number, reason=f"running on {nodes[0]}", data=data)
        self.job["started_at"] = self.job["started_at"] or started
        self.job["attempt_count"] = number
        row = {
            "job_id": self.job_id,
            "number": number,
            "token": f"{rng.getrandbits(64):016x}",
            "backend": self.backend,
            "state": "running",
            "native_id": native_id,
            "nodes": nodes,
            "created_at": submitted,
            "submitted_at": submitted,
            "started_at": started,
            "ended_at": None,
            "exit_code": None,
            "signal": None,
            "failure_class": None,
            "reason": None,
            "details": {"partition_kind": "spot"} if self.spot else {},
        }
        self.attempts.append(row)
        if leave_running:
            return None
        outcome = self._outcome()
        self._end_attempt(row, outcome)
        return outcome

    def _outcome(self) -> str:
        if self.spot and self.rng.random() < SPOT_PREEMPTION:
            return "preempted"
        return _weighted(self.rng, (*FAILURES, ("succeeded", 1.0)))

    def _end_attempt(self, row: Row, outcome: str) -> None:
        rng, number = self.rng, row["number"]
        run_s = rng.uniform(600.0, 4 * 3600.0)
        if outcome != "succeeded":
            run_s *= rng.random()
        saves = min(int(run_s // CHECKPOINT_INTERVAL_S), 6) if self.checkpoints else 0
        saved = [
            (row["started_at"] + step * CHECKPOINT_INTERVAL_S, round(rng.uniform(2.0, 40.0), 3))
            for step in range(1, saves + 1)
        ]
        self.now = row["started_at"] + run_s
        failure = None if outcome == "succeeded" else outcome
        row |= {
            "state": "succeeded" if failure is None else "failed",
            "ended_at": self.now,
            "exit_code": EXIT_CODES.get(outcome),
            "failure_class": failure,
            "reason": failure,
        }
        summary: Row = {"native_id": row["native_id"], "backend": self.backend}
        summary |= {"nodes": row["nodes"], "run_s": round(run_s, 3)}
        if row["exit_code"] is not None:
            summary["exit_code"] = row["exit_code"]
        if failure is not None:
            summary["failure_class"] = failure
        summary |= row["details"]
        kind = "attempt_succeeded" if failure is None else "attempt_failed"
        self._event(kind, attempt=number, reason=failure, data=summary)
        # The saves, copied from the job's status directory now that the attempt ended.
        for step, (at, duration) in enumerate(saved, start=1):
            data = {"duration_s": duration, "step": step * 1000}
            self._event("checkpoint_saved", attempt=number, data=data, actor="job", at=at)

    def _settle(self, number: int, outcome: str) -> bool:
        """The job's transition after an attempt ended; True when the job is finished."""
        job = self.job
        job["exit_code"] = EXIT_CODES.get(outcome)
        if outcome == "succeeded":
            self._move("succeeded", attempt=number, reason="exited with code 0")
        elif outcome in RETRIED and number < MAX_ATTEMPTS:
            job["failure_class"] = outcome
            reason = f"{outcome}; retry {number + 1} in {BACKOFF_S:g}s"
            data = {"failure_class": outcome}
            self._move("retry_wait", attempt=number, reason=reason, data=data)
            self.now += BACKOFF_S
            self._move("queued", reason="retrying")
            return False
        else:
            job["failure_class"] = outcome
            target = "cancelled" if outcome == "cancelled" else "failed"
            data = {"failure_class": outcome}
            self._move(target, attempt=number, reason=f"{outcome}; no retries left", data=data)
        job["finished_at"] = self.now
        return True


class Writer:
    """Buffers rows and inserts them with executemany, jobs before what refers to them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._jobs: list[Row] = []
        self._attempts: list[Row] = []
        self._events: list[Row] = []

    def job(self, history: History) -> None:
        self._jobs.append(history.job)
        self._attempts.extend(history.attempts)

    def event(self, row: Row) -> None:
        self._events.append(row)
        if len(self._events) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        with self._engine.begin() as conn:
            for table, rows in (
                (jobs_t, self._jobs),
                (attempts_t, self._attempts),
                (events_t, self._events),
            ):
                if rows:
                    conn.execute(insert(table), rows)
        self._jobs, self._attempts, self._events = [], [], []


@dataclass(frozen=True, slots=True)
class Plan:
    events: int
    start: float
    span_s: float
    active: int
    seed: int


def _unique_ids() -> Callable[[], str]:
    seen: set[str] = set()

    def next_id() -> str:
        job_id = new_job_id()
        while job_id in seen:
            job_id = new_job_id()
        seen.add(job_id)
        return job_id

    return next_id


def mean_events_per_job(seed: int, samples: int = 2000) -> float:
    rng = random.Random(seed)
    total = sum(len(History(rng, "j", 0.0).run(leave_running=False).events) for _ in range(samples))
    return total / samples


def populate(engine: Engine, plan: Plan) -> int:
    """Write about ``plan.events`` events; returns how many jobs were written.

    Jobs arrive evenly over the span and overlap in time; their events are merged so that
    ``seq`` follows the time each was written, as in a real log (a checkpoint save is
    written when its attempt ends). A job's events never precede its creation, so
    everything written before the next job's creation can be written out.
    """
    finished = (plan.events - plan.active * RUNNING_JOB_EVENTS) / mean_events_per_job(plan.seed)
    jobs = plan.active + max(1, round(finished))
    gap = plan.span_s / jobs
    rng = random.Random(plan.seed)
    next_id, order = _unique_ids(), itertools.count()
    writer = Writer(engine)
    pending: list[tuple[float, int, Row]] = []
    for index in range(jobs):
        created = plan.start + (index + rng.random()) * gap
        while pending and pending[0][0] <= created:
            writer.event(heapq.heappop(pending)[2])
        history = History(rng, next_id(), created).run(leave_running=index >= jobs - plan.active)
        writer.job(history)
        for row, written in zip(history.events, history.written, strict=True):
            heapq.heappush(pending, (written, next(order), row))
    while pending:
        writer.event(heapq.heappop(pending)[2])
    writer.flush()
    return jobs


@dataclass(slots=True)
class Scale:
    """One home with its stored history."""

    name: str
    home: Path
    store: SqlStore
    jobs: int
    events: int
    end: float
    populate_s: float
    rng: random.Random
    registry: CollectorRegistry | None = None


def _settings(home: Path) -> Settings:
    return Settings(home=home, database_url=None)


def build_scale(name: str, root: Path, plan: Plan) -> Scale:
    home = root / name
    store: Store = open_store(_settings(home))  # runs the Alembic migration
    assert isinstance(store, SqlStore)
    started = time.perf_counter()
    jobs = populate(store.engine, plan)
    populate_s = time.perf_counter() - started
    with store.engine.connect() as conn:
        events, end = conn.execute(select(func.count(), func.max(events_t.c.time))).one()
    return Scale(name, home, store, jobs, events, end, populate_s, random.Random(plan.seed + 1))


def report_once(scale: Scale) -> tuple[float, float]:
    """The steps of ``hpcbridge slo report --json``, with ``now`` at the end of the history.

    Returns wall and CPU seconds; CPU time is steadier when other work shares the machine.
    """
    started, cpu = time.perf_counter(), time.process_time()
    slos, now = default_slos(), scale.end
    store = open_store(_settings(scale.home))
    try:
        horizon = max(slo.window for slo in slos)
        jobs = finished_jobs(store, since=now - horizon)
    finally:
        store.close()
    statuses = slo_report(slos, build_samples_by_slo(slos, jobs), now, eval_interval_s=60.0)
    json.dumps(report_to_dict(statuses, now))
    return time.perf_counter() - started, time.process_time() - cpu


def catch_up(scale: Scale) -> float:
    """Start a collector as ``hpcbridge serve`` does: fold the whole log before any scrape."""
    collector = StoreCollector(scale.store)
    scale.registry = CollectorRegistry()
    scale.registry.register(collector)
    started = time.perf_counter()
    collector.refresh()
    elapsed = time.perf_counter() - started
    generate_latest(scale.registry)  # the first scrape exports the start-up label sets once
    return elapsed


def append_job(scale: Scale) -> None:
    """One more finished job after the history, written the same way (not timed)."""
    scale.end += 60.0
    history = History(scale.rng, new_job_id(), scale.end).run(leave_running=False)
    writer = Writer(scale.store.engine)
    writer.job(history)
    for row in history.events:
        writer.event(row)
    writer.flush()
    scale.end = history.now


def scrape_once(scale: Scale) -> tuple[float, int]:
    assert scale.registry is not None
    append_job(scale)
    started = time.perf_counter()
    body = generate_latest(scale.registry)
    return time.perf_counter() - started, len(body)


def measure(scales: list[Scale], reports: int, scrapes: int) -> dict[str, dict[str, Any]]:
    """Reports, then scrapes; the sizes alternate so a busy moment hits both alike."""
    report_s: dict[str, list[float]] = {s.name: [] for s in scales}
    report_cpu_s: dict[str, list[float]] = {s.name: [] for s in scales}
    scrape_s: dict[str, list[float]] = {s.name: [] for s in scales}
    size: dict[str, int] = {}
    for _ in range(reports):
        for scale in scales:
            wall, cpu = report_once(scale)
            report_s[scale.name].append(wall)
            report_cpu_s[scale.name].append(cpu)
    catch_up_s = {scale.name: catch_up(scale) for scale in scales}
    for _ in range(scrapes):
        for scale in scales:
            elapsed, size[scale.name] = scrape_once(scale)
            scrape_s[scale.name].append(elapsed)
    return {
        s.name: {
            "events": s.events,
            "jobs": s.jobs,
            "populate_s": round(s.populate_s, 2),
            "report_s": statistics.median(report_s[s.name]),
            "report_runs_s": [round(t, 4) for t in report_s[s.name]],
            "report_cpu_s": statistics.median(report_cpu_s[s.name]),
            "catch_up_s": round(catch_up_s[s.name], 3),
            "scrape_s": statistics.median(scrape_s[s.name]),
            "scrape_best_s": min(scrape_s[s.name]),
            "scrape_bytes": size[s.name],
        }
        for s in scales
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events-small", type=int, default=10_000)
    parser.add_argument("--events-large", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=28.0, help="span of the history")
    parser.add_argument("--active", type=int, default=20, help="jobs still running at the end")
    parser.add_argument("--reports", type=int, default=3, help="report runs per size; median")
    parser.add_argument("--scrapes", type=int, default=15, help="scrapes per size; median")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="scratch space (default: temp)")
    args = parser.parse_args(argv)

    span_s = args.days * 86400
    start = time.time() - span_s
    with tempfile.TemporaryDirectory(prefix="slo-scale-", dir=args.dir) as tmp:
        scales = [
            build_scale(name, Path(tmp), Plan(events, start, span_s, args.active, args.seed))
            for name, events in (("small", args.events_small), ("large", args.events_large))
        ]
        try:
            results = measure(scales, args.reports, args.scrapes)
        finally:
            for scale in scales:
                scale.store.close()
    small, large = results["small"], results["large"]
    events_ratio = large["events"] / small["events"]
    scrape_ratio = large["scrape_s"] / small["scrape_s"]
    report_ratio = large["report_s"] / small["report_s"]
    result = {
        "benchmark": "slo_scale",
        "events": {"small": small["events"], "large": large["events"]},
        "days": args.days,
        "active_jobs": args.active,
        "small": small,
        "large": large,
        "scrape_ratio_1m_vs_10k": round(scrape_ratio, 3),
        "report_ratio_1m_vs_10k": round(report_ratio, 3),
        "report_cpu_ratio_1m_vs_10k": round(large["report_cpu_s"] / small["report_cpu_s"], 3),
        "events_ratio": round(events_ratio, 3),
        "target": {"scrape_ratio_max": 1.5, "report_ratio_max": round(events_ratio, 3)},
        "meets_target": {"scrape": scrape_ratio <= 1.5, "report": report_ratio <= events_ratio},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
