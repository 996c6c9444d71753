"""Failover of the reconciler on PostgreSQL: two agents, the leader SIGKILLed again and again.

Starts the PostgreSQL test server (``scripts/postgres-cluster start``) if none answers, then
runs, in a schema of its own:

- ``--jobs`` jobs on the local executor, or with ``--backend slurm`` on the Slurm test
  cluster (``scripts/slurm-cluster``; ``--slurm-conf`` names another), each sleeping a
  moment, then writing down the attempt that ran it, submitted at once;
- two ``hpcbridge agent`` processes on one database and one data directory; whichever holds
  the lease leads, the other waits;
- ``--kills`` times, at seeded random moments: SIGKILL the leader, start a replacement, and
  time until the other agent holds the lease (its epoch is higher).

Prints one JSON object: ``takeover_s`` (the slowest takeover), ``takeover_p50_s``,
``lease_ttl_s``, ``takeover_limit_s`` (two lease periods: the target), ``duplicates``
(attempts whose program ran more than once, plus jobs with more than one successful
attempt), ``lost`` (jobs that did not end succeeded), ``kills`` and the run's wall time.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import load_spec_document
from hpcbridge.states import AttemptState, JobState
from hpcbridge.store import JobFilter

REPO = Path(__file__).resolve().parents[1]
POSTGRES_SCRIPT = REPO / "scripts" / "postgres-cluster"
URL_FILE = Path(os.environ.get("HPCBRIDGE_POSTGRES_STATE", "/var/lib/hpcbridge-postgres")) / "url"
SLURM_CONF = (
    Path(os.environ.get("HPCBRIDGE_SLURM_STATE", "/var/lib/hpcbridge-slurm")) / "etc" / "slurm.conf"
)
PROGRAM = 'sleep "$2"; echo "$HPCBRIDGE_ATTEMPT" >>"$1/$HPCBRIDGE_JOB_ID"'


def server_url() -> str:
    url = os.environ.get("HPCBRIDGE_TEST_POSTGRES_URL")
    if url:
        return url
    if not URL_FILE.exists():
        subprocess.run([str(POSTGRES_SCRIPT), "start"], check=True, capture_output=True)
    return URL_FILE.read_text().strip()


def fresh_schema(server: str) -> str:
    """A URL whose connections use a new, empty schema."""
    schema = f"failover_{secrets.token_hex(4)}"
    engine = create_engine(server)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


class Agents:
    """``hpcbridge agent`` processes sharing one database and data directory."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self._env = env
        self._log_dir = log_dir
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        log = open(self._log_dir / f"agent-{len(self.processes)}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "hpcbridge", "agent"],
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        self.processes[process.pid] = process

    def kill(self, pid: int) -> None:
        process = self.processes.pop(pid)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def lease(url: str) -> tuple[str, int] | None:
    """The reconciler lease's holder and epoch, as stored."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT holder, epoch FROM leases WHERE name = 'reconciler'")
            ).first()
    finally:
        engine.dispose()
    return None if row is None or not row[0] else (str(row[0]), int(row[1]))


def slurm_clusters_file(root: Path, slurm_conf: Path) -> Path:
    """A clusters file naming the Slurm cluster of ``slurm_conf``, polled every second."""
    path = root / "clusters.yaml"
    path.write_text(
        "clusters:\n"
        "  bench:\n"
        "    default: true\n"
        "    transport: cli\n"
        f"    slurm_conf: {slurm_conf}\n"
        f"    log_dir: {root / 'slurm-logs'}\n"
        "    queue_interval_s: 1\n"
    )
    return path


def run_failover(
    url: str,
    root: Path,
    *,
    jobs: int,
    kills: int,
    ttl_s: float,
    seed: int,
    backend: str = "local",
    slurm_conf: Path = SLURM_CONF,
) -> dict[str, Any]:
    chooser = random.Random(seed)
    out = root / "out"
    out.mkdir()
    clusters = slurm_clusters_file(root, slurm_conf) if backend == "slurm" else None
    settings = Settings(
        home=root / "home",
        database_url=url,
        local_cpus=8,
        lease_ttl_s=ttl_s,
        clusters_file=clusters,
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HPCBRIDGE_", "SLURM_"))},
        "HPCBRIDGE_HOME": str(settings.home),
        "HPCBRIDGE_DATABASE_URL": url,
        "HPCBRIDGE_LOCAL_CPUS": "8",
        "HPCBRIDGE_LEASE_TTL_S": str(ttl_s),
        "HPCBRIDGE_POLL_INTERVAL_S": "0.2",
        **({"HPCBRIDGE_CLUSTERS_FILE": str(clusters)} if clusters else {}),
    }
    client = Client(settings)
    specs = [
        load_spec_document(
            {
                "apiVersion": "hpcbridge/v1",
                "kind": "Job",
                "name": f"failover-{i}",
                "command": [
                    "/bin/sh",
                    "-c",
                    PROGRAM,
                    "sh",
                    str(out),
                    f"{duration:.2f}",
                ],
                "retry": {"max_attempts": 5, "backoff": {"initial": "1s", "max": "2s"}},
                "backend": backend,
            }
        )
        for i, duration in enumerate(chooser.uniform(1, 4) for _ in range(jobs))
    ]
    submitted = [job.job_id for job in client.submit_many(specs)]
    started = time.monotonic()
    agents = Agents(env, root)
    agents.start()
    agents.start()
    takeovers: list[float] = []
    try:
        for _ in range(kills):
            time.sleep(chooser.uniform(0.2, ttl_s))
            if not client.has_active_jobs():
                break
            held = _wait_for(lambda: lease(url), ttl_s * 4)
            holder, epoch = held
            pid = int(holder.split(":")[1])
            if pid not in agents.processes:
                continue
            agents.kill(pid)
            killed_at = time.monotonic()
            agents.start()
            _wait_for(functools.partial(_taken_over, url, epoch), ttl_s * 10)
            takeovers.append(time.monotonic() - killed_at)
        deadline = time.monotonic() + 300
        while client.has_active_jobs() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        agents.stop()
    wall_s = time.monotonic() - started
    time.sleep(1.0)  # a program wrongly run twice would have written by now
    runs = {p.name: Counter(int(n) for n in p.read_text().split()) for p in out.iterdir()}
    duplicates = sum(count - 1 for ran in runs.values() for count in ran.values() if count > 1)
    lost = 0
    why: Counter[str] = Counter()
    for job in client.store.list_jobs(JobFilter()):
        succeeded = [
            a for a in client.store.attempts(job.job_id) if a.state is AttemptState.SUCCEEDED
        ]
        duplicates += max(0, len(succeeded) - 1)
        if job.state is not JobState.SUCCEEDED or job.job_id not in runs:
            lost += 1
            why[f"{job.state.value}: {job.reason}"] += 1
    client.close()
    return {
        "backend": backend,
        "jobs": len(submitted),
        "kills": len(takeovers),
        "lease_ttl_s": ttl_s,
        "takeover_s": round(max(takeovers, default=0.0), 3),
        "takeover_p50_s": round(statistics.median(takeovers), 3) if takeovers else None,
        "takeover_limit_s": 2 * ttl_s,
        "duplicates": duplicates,
        "lost": lost,
        "lost_why": dict(why.most_common(5)),
        "wall_s": round(wall_s, 1),
    }


def _taken_over(url: str, epoch: int) -> tuple[str, int] | None:
    held = lease(url)
    return held if held is not None and held[1] > epoch else None


def _wait_for(probe: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing after {timeout_s}s")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--lease-ttl", type=float, default=3.0, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=("local", "slurm"), default="local")
    parser.add_argument("--slurm-conf", type=Path, default=SLURM_CONF)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpcbridge-failover-") as root:
        result = run_failover(
            fresh_schema(server_url()),
            Path(root),
            jobs=args.jobs,
            kills=args.kills,
            ttl_s=args.lease_ttl,
            seed=args.seed,
            backend=args.backend,
            slurm_conf=args.slurm_conf,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
