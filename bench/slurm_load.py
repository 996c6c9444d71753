"""Load hpcbridge puts on slurmctld while it watches jobs, measured with ``sdiag``.

Runs on the real Slurm test cluster (``scripts/slurm-cluster``), as root (``sdiag --reset``
needs an administrator). ``sdiag`` counts every client of the cluster; with ``--as-user
nobody`` hpcbridge's Slurm commands (and so its jobs) run as that user, and ``sdiag``'s
count of that user's RPCs is hpcbridge's alone, whoever else uses the cluster. (squeue
``--me`` asks slurmctld for one user's jobs, REQUEST_JOB_USER_INFO, for any user but root:
for uid 0 it loads the whole job table, REQUEST_JOB_INFO.) Each scenario resets the
counters, submits jobs of ``--job-s`` seconds through the Python client, reconciles every
``poll_interval_s`` (0.5 s, as ``hpcbridge run`` does) until every job is recorded finished,
then reads ``sdiag``:

- ``one``: one job; ``many``: ``--jobs`` jobs at once (more than the cluster's CPUs: the
  rest wait in the queue, as on a busy site);
- with ``--watch-s``, each scenario watches for that long and then cancels what is left
  (``--jobs 1000 --job-s 2 --watch-s 300``: a thousand active jobs, about three ending a
  second on six CPUs, for five minutes; ``--one-job-s 300`` keeps the one job of ``one``
  running as long); without it, until every job has finished;
- each with ``queue_interval_s`` 0 (the queue asked at every poll: the baseline) and with
  the configured default (30 s: answers from the last look, ends seen in status files).

Prints one JSON object: per scenario the job-information RPCs (``REQUEST_JOB_INFO``,
``REQUEST_JOB_USER_INFO``, ``REQUEST_JOB_INFO_SINGLE``) of every client and, with
``--as-user``, hpcbridge's own (``job_info_rpc_per_min_hpcbridge``) and all RPCs of its user
(submissions and node queries included), per minute; hpcbridge's own Slurm calls by kind
(counted in the process), the delay from each job's end (its exit status file) to hpcbridge
recording it, and the ratios baseline / default of the rates per minute. With
``--plain-loop-s`` it also times a plain ``squeue --json`` loop every 0.5 s, the polling
hpcbridge did before ``queue_interval_s`` existed. The headline figures:
``job_info_rpc_per_min_1`` and ``job_info_rpc_per_min_<jobs>`` (hpcbridge's own with
``--as-user``, at the default interval; ``baseline_...`` at every poll), and
``completion_delay_p50_s``, the larger of the two scenarios' medians.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hpcbridge.backends.slurm import ClusterConfig, SlurmBackend
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import load_spec_document
from hpcbridge.store import JobId

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "scripts" / "slurm-cluster"
POLL_S = 0.5
JOB_INFO = ("REQUEST_JOB_INFO", "REQUEST_JOB_USER_INFO", "REQUEST_JOB_INFO_SINGLE")
RPC_LINE = re.compile(r"^\s*(\S+)\s+\(\s*\d+\)\s+count:(\d+)")
SLURM_TOOLS = ("sbatch", "squeue", "sacct", "scancel", "scontrol", "sinfo")
COUNTED = ("own_jobs", "queue", "accounting", "accounting_by_name", "submit", "nodes")


def cluster_env() -> dict[str, str]:
    exports = subprocess.run(
        [str(CLUSTER_SCRIPT), "env"], capture_output=True, text=True, check=True
    ).stdout
    env = dict(os.environ)
    for line in exports.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name and value and not value.startswith("$"):
            env[name] = value.strip("'\"")
    env.pop("SLURM_JWT", None)
    return env


def sdiag(env: dict[str, str], *, reset: bool = False) -> tuple[dict[str, int], dict[str, int]]:
    """RPC counts since the last reset: by message type, and by user."""
    if reset:
        subprocess.run(["sdiag", "--reset"], env=env, check=True, capture_output=True)
        return {}, {}
    out = subprocess.run(["sdiag"], env=env, check=True, capture_output=True, text=True).stdout
    by_type, _, rest = out.partition("by message type")[2].partition("by user")
    return _counts(by_type), _counts(rest.partition("Pending RPC")[0])


def _counts(section: str) -> dict[str, int]:
    return {
        match.group(1): int(match.group(2))
        for match in map(RPC_LINE.match, section.splitlines())
        if match
    }


def run_as(user: str, root: Path, env: dict[str, str]) -> None:
    """Put wrappers first on PATH that run Slurm's tools as ``user`` (who then owns the
    jobs), and give ``root`` to that user: the jobs write their logs and status there."""
    entry = pwd.getpwnam(user)
    tools = root / "as-user"
    tools.mkdir()
    for tool in SLURM_TOOLS:
        real = shutil.which(tool, path=env.get("PATH"))
        wrapper = tools / tool
        wrapper.write_text(
            f"#!/bin/sh\nexec setpriv --reuid={entry.pw_uid} --regid={entry.pw_gid} "
            f'--clear-groups {real} "$@"\n'
        )
        wrapper.chmod(0o755)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    os.environ["PATH"] = f"{tools}:{os.environ.get('PATH', '')}"


def count_calls(backend: SlurmBackend) -> dict[str, int]:
    """Count the transport's calls by kind (wrapping this bench's own instance)."""
    transport = backend.transport()
    counts = dict.fromkeys(COUNTED, 0)
    for name in COUNTED:
        method: Callable[..., Any] = getattr(transport, name)

        def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            counts[_name] += 1
            return _method(*args)

        setattr(transport, name, counted)
    return counts


def scenario(
    env: dict[str, str],
    root: Path,
    *,
    jobs: int,
    job_s: int,
    interval_s: float,
    user: str | None,
    watch_s: float | None = None,
) -> dict[str, Any]:
    cluster = ClusterConfig(
        name="bench",
        default=True,
        slurm_conf=Path(env["SLURM_CONF"]),
        log_dir=root / "logs",
        queue_interval_s=interval_s,
        usage_wait_s=0.0,
    )
    (root / "logs").mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root / "logs", entry.pw_uid, entry.pw_gid)
    clusters_file = root / "clusters.yaml"
    clusters_file.write_text(
        json.dumps({"clusters": {"bench": cluster.model_dump(mode="json", exclude={"name"})}})
    )
    client = Client(
        Settings(home=root / "home", clusters_file=clusters_file, poll_interval_s=POLL_S)
    )
    backend = client.backends["slurm"]
    assert isinstance(backend, SlurmBackend)
    calls = count_calls(backend)
    specs = [
        load_spec_document(
            {
                "apiVersion": "hpcbridge/v1",
                "kind": "Job",
                "name": f"load-{i}",
                "project": "bench",
                "backend": "slurm",
                "command": ["sleep", str(job_s)],
                "resources": {"walltime": f"{job_s + 120}s"},
            }
        )
        for i in range(jobs)
    ]
    sdiag(env, reset=True)
    started = time.monotonic()
    submitted = client.submit_many(specs, actor="bench")
    ids = [job.job_id for job in submitted]
    recorded: dict[str, float] = {}
    limit_s = watch_s or job_s * 3 + 300
    while len(recorded) < len(ids) and time.monotonic() - started < limit_s:
        client.reconcile_once()
        for job_id in ids:
            if job_id not in recorded and client.store.get_job(job_id).state.terminal:
                recorded[job_id] = time.time()
        time.sleep(POLL_S)
    minutes = (time.monotonic() - started) / 60
    rpcs, by_user = sdiag(env)
    delays = []
    states = []
    for job_id in ids:
        states.append(client.store.get_job(job_id).state.value)
        attempts = client.store.attempts(job_id)
        status_dir = attempts[-1].status_dir if attempts else None
        exit_file = Path(status_dir or "/nonexistent") / "run-0" / "exit"
        if job_id in recorded and exit_file.exists():
            delays.append(recorded[job_id] - exit_file.stat().st_mtime)
    job_info = sum(rpcs.get(name, 0) for name in JOB_INFO)
    cancel_unfinished(client, ids, env)
    client.close()
    mine = by_user.get(user, 0) if user is not None else None
    # Only a user other than root makes squeue --me send REQUEST_JOB_USER_INFO: with
    # --as-user, that count is hpcbridge's job-information RPCs alone.
    own = rpcs.get("REQUEST_JOB_USER_INFO", 0) if user is not None else None
    return {
        "queue_interval_s": interval_s,
        "jobs": jobs,
        "finished_in_watch": len(recorded),
        "states": sorted(set(states)),
        "minutes": round(minutes, 2),
        "job_info_rpcs": job_info,
        "job_info_rpc_per_min": round(job_info / minutes, 2),
        "rpcs": {name: rpcs[name] for name in sorted(rpcs) if name.startswith("REQUEST_JOB")},
        "all_rpcs": sum(rpcs.values()),
        "hpcbridge_job_info_rpcs": own,
        "job_info_rpc_per_min_hpcbridge": round(own / minutes, 2) if own is not None else None,
        "user_rpcs": mine,
        "user_rpc_per_min": round(mine / minutes, 2) if mine is not None else None,
        "hpcbridge_calls": calls,
        "completion_delay_p50_s": round(statistics.median(delays), 2) if delays else None,
        "completion_delay_max_s": round(max(delays), 2) if delays else None,
    }


def cancel_unfinished(client: Client, ids: Sequence[JobId], env: dict[str, str]) -> None:
    """Cancel at Slurm what a watch left running or queued, so the next scenario starts
    on an empty cluster (after sdiag was read: these calls are not counted)."""
    native = []
    for job_id in ids:
        if client.store.get_job(job_id).state.terminal:
            continue
        native += [a.native_id for a in client.store.attempts(job_id) if a.native_id]
    for start in range(0, len(native), 200):
        subprocess.run(["scancel", *native[start : start + 200]], env=env, check=False)


def plain_loop(env: dict[str, str], seconds: float) -> dict[str, Any]:
    """``squeue --json`` every POLL_S: what the CLI transport polled with before."""
    sdiag(env, reset=True)
    started = time.monotonic()
    calls = 0
    while time.monotonic() - started < seconds:
        subprocess.run(["squeue", "--json"], env=env, check=True, capture_output=True)
        calls += 1
        time.sleep(POLL_S)
    minutes = (time.monotonic() - started) / 60
    rpcs, _ = sdiag(env)
    job_info = sum(rpcs.get(name, 0) for name in JOB_INFO)
    return {
        "calls_per_min": round(calls / minutes, 2),
        "job_info_rpc_per_min": round(job_info / minutes, 2),
    }


def ratio(baseline: float, ours: float) -> float | None:
    return round(baseline / ours, 1) if ours else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=6, help="jobs at once in 'many' (6 CPUs)")
    parser.add_argument("--job-s", type=int, default=60, help="how long each job runs")
    parser.add_argument(
        "--one-job-s", type=int, default=None, help="how long the job of 'one' runs (--job-s)"
    )
    parser.add_argument("--interval-s", type=float, default=None, help="default: the config's")
    parser.add_argument("--plain-loop-s", type=float, default=0.0)
    parser.add_argument("--as-user", default=None, help="run Slurm's tools as this user")
    parser.add_argument(
        "--kinds",
        default="baseline,default",
        help="which intervals to run: baseline (0: every poll), default (the config's)",
    )
    parser.add_argument(
        "--watch-s", type=float, default=None, help="watch each scenario this long, then cancel"
    )
    args = parser.parse_args(argv)
    interval_s = args.interval_s
    if interval_s is None:
        interval_s = ClusterConfig().queue_interval_s
    env = cluster_env()
    result: dict[str, Any] = {"job_s": args.job_s, "poll_interval_s": POLL_S}
    with tempfile.TemporaryDirectory(
        prefix="hpcbridge-load-",
        ignore_cleanup_errors=True,  # cancelled jobs may still write
    ) as tmp:
        if args.as_user is not None:
            run_as(args.as_user, Path(tmp), env)
        for label, jobs in (("one", 1), ("many", args.jobs)):
            kinds = [k for k in (("baseline", 0.0), ("default", interval_s)) if k[0] in args.kinds]
            for kind, seconds in kinds:
                root = Path(tmp) / f"{label}-{kind}"
                root.mkdir()
                result[f"{label}_{kind}"] = scenario(
                    env,
                    root,
                    jobs=jobs,
                    job_s=args.job_s if label == "many" else args.one_job_s or args.job_s,
                    interval_s=seconds,
                    user=args.as_user,
                    watch_s=args.watch_s,
                )
            base, ours = result.get(f"{label}_baseline"), result.get(f"{label}_default")
            mine = "job_info_rpc_per_min"
            if args.as_user is not None:
                mine += "_hpcbridge"
            # The headline figures, named by how many jobs were watched.
            if ours is not None:
                result[f"job_info_rpc_per_min_{jobs}"] = ours[mine]
            if base is not None:
                result[f"baseline_job_info_rpc_per_min_{jobs}"] = base[mine]
            if base is None or ours is None:
                continue
            # Per minute: a scenario cut short (another client cancelling every job on the
            # shared cluster) still compares.
            if args.as_user is not None:
                result[f"{label}_user_rpc_ratio"] = ratio(
                    base["user_rpc_per_min"], ours["user_rpc_per_min"]
                )
            result[f"{label}_job_info_ratio"] = ratio(base[mine], ours[mine])
    delays = [
        result[f"{label}_default"]["completion_delay_p50_s"]
        for label in ("one", "many")
        if f"{label}_default" in result
        and result[f"{label}_default"]["completion_delay_p50_s"] is not None
    ]
    result["completion_delay_p50_s"] = max(delays) if delays else None
    if args.plain_loop_s:
        result["plain_squeue_json_loop"] = plain_loop(env, args.plain_loop_s)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
