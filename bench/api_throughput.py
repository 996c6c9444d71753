"""The REST API against embedded mode: submission rate, listing at 100k jobs, scheduler load.

- ``api_vs_embedded_ratio``: submissions per second through ``POST /api/v1/jobs`` of a
  real ``hpcbridge serve`` process (one client, one kept-alive connection, a fresh
  ``Idempotency-Key`` each) divided by the rate of ``Service.submit`` called in this
  process on a store of its own (the same use case without HTTP), measured in the same
  run, in alternating rounds (the median of the rounds' ratios).
- ``list_p99_ms_100k``: with ``--jobs`` (100,000) jobs stored, the p99 of
  ``GET /api/v1/jobs?limit=50`` answered by the real server: the first page as a platform
  admin, a page deep in the list (by cursor), one project's page as its member, and a
  state filter; on SQLite and (when a server is available) on PostgreSQL
  (``list_p99_ms_100k_postgresql``); ``list_p99_ms_by_query`` has each kind's p99 and that
  of ``GET /healthz`` (no query at all) asked in the same turns, the floor the machine and
  the HTTP stack set. The URL comes from ``HPCBRIDGE_BENCH_PG_URL``, else
  from the file scripts/postgres-cluster writes; the bench works in a schema of its own.
- ``scheduler_queries_ratio_20_users``: backend queries (``poll`` calls of a counting
  local backend under the server's one reconciler) per minute while 20 users, each with
  a token of their own project, watch their running jobs through the API (a ``GET`` of
  each job every 0.5 s), divided by the same with one user.

    python bench/api_throughput.py [--submissions 300] [--rounds 3] [--jobs 100000]
                                   [--users 20] [--watch-s 20] [--no-postgres]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import make_url

from hpcbridge.api import Runtime, ServeOptions, create_app
from hpcbridge.api._bootstrap import BOOTSTRAP_FILE
from hpcbridge.backends import Backend
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.logs import configure_logging
from hpcbridge.security import Principal, Role
from hpcbridge.service import Service
from hpcbridge.spec import load_spec_document
from hpcbridge.states import JobState
from hpcbridge.store import JobFilter, new_job_id, open_store

PG_STATE_URL = Path("/var/lib/hpcbridge-postgres/url")
PAGE = 50


def _document(name: str, project: str = "bench", command: Sequence[str] = ("true",)) -> Any:
    return {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": name,
        "project": project,
        "command": list(command),
    }


def _settings(home: Path, database_url: str | None = None, **extra: Any) -> Settings:
    return Settings(
        home=home,
        database_url=database_url or f"sqlite:///{home / 'hpcbridge.db'}",
        required_tags=(),
        local_cpus=64,
        local_mem_mb=65536,
        local_gpus=0,
        poll_interval_s=0.5,
        **extra,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served_process(home: Path, database_url: str | None) -> Iterator[tuple[str, str]]:
    """``(url, admin token)`` of a real ``hpcbridge serve --no-reconcile`` process."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCBRIDGE_")}
    env |= {"HPCBRIDGE_HOME": str(home), "HPCBRIDGE_REQUIRED_TAGS": "[]"}
    if database_url is not None:
        env["HPCBRIDGE_DATABASE_URL"] = database_url
    argv = [sys.executable, "-m", "hpcbridge", "serve", "--port", str(port), "--no-reconcile"]
    log = (home.parent / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _answers(f"{url}/healthz") or not (home / BOOTSTRAP_FILE).exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hpcbridge serve did not start; see {log.name}")
            time.sleep(0.1)
        yield url, (home / BOOTSTRAP_FILE).read_text().strip()
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _answers(url: str) -> bool:
    """The server answers and has folded the stored events for /metrics (a thread that
    competes with requests for the interpreter until it is done)."""
    try:
        return bool(httpx.get(url, timeout=2).json().get("caught_up"))
    except (httpx.HTTPError, ValueError):
        return False


# -- submissions ---------------------------------------------------------------------------


def api_rate(http: httpx.Client, count: int, tag: str) -> float:
    started = time.perf_counter()
    for i in range(count):
        key = f"{tag}-{i}"
        answer = http.post("/api/v1/jobs", json=_document(key), headers={"Idempotency-Key": key})
        answer.raise_for_status()
    return count / (time.perf_counter() - started)


def embedded_rate(service: Service, count: int, tag: str) -> float:
    principal = Principal.local_user()
    specs = [load_spec_document(_document(f"{tag}-{i}"), source="bench") for i in range(count)]
    started = time.perf_counter()
    for i, spec in enumerate(specs):
        service.submit(principal, spec, idempotency_key=f"{tag}-{i}")
    return count / (time.perf_counter() - started)


def measure_submissions(work: Path, count: int, rounds: int) -> dict[str, Any]:
    embedded_home = work / "embedded"
    service = Service(open_store(_settings(embedded_home)), _settings(embedded_home))
    per_round: list[dict[str, float]] = []
    with served_process(work / "server", None) as (url, token):
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            api_rate(http, 5, "warm")
            embedded_rate(service, 5, "warm")
            for r in range(rounds):
                api = api_rate(http, count, f"api-{r}")
                embedded = embedded_rate(service, count, f"emb-{r}")
                per_round.append({"api": api, "embedded": embedded, "ratio": api / embedded})
    service.close()
    return {
        "api_submissions_per_s": round(statistics.median(p["api"] for p in per_round), 1),
        "embedded_submissions_per_s": round(statistics.median(p["embedded"] for p in per_round), 1),
        "api_vs_embedded_ratio": round(statistics.median(p["ratio"] for p in per_round), 3),
        "submission_rounds": [{k: round(v, 2) for k, v in p.items()} for p in per_round],
    }


# -- listing -------------------------------------------------------------------------------


def fill(database_url: str, home: Path, jobs: int, projects: int) -> None:
    """``jobs`` top-level jobs spread over ``projects`` projects, written in chunks; as in
    a store that has been in use a while, 98% succeeded, 1% failed, 1% still accepted."""
    settings = _settings(home, database_url)
    client = Client(settings)
    template = client.prepare([load_spec_document(_document("fill"), source="bench")]).rows[0]
    client.close()
    store = open_store(settings)
    engine = create_engine(database_url)
    finish = text(
        "UPDATE jobs SET state = :state, finished_at = created_at + 60 WHERE job_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    now = time.time() - jobs
    chunk = 5000
    for start in range(0, jobs, chunk):
        rows = [
            dataclasses.replace(
                template,
                job_id=new_job_id(),
                name=f"fill-{i}",
                project=f"p{i % projects}",
                owner="bench",
            )
            for i in range(start, min(start + chunk, jobs))
        ]
        store.create_jobs(rows, now=now + start, actor="bench")
        fates: dict[str, list[str]] = {JobState.SUCCEEDED.value: [], JobState.FAILED.value: []}
        for i, row in enumerate(rows, start):
            if i % 100 == 1:
                fates[JobState.FAILED.value].append(row.job_id)
            elif i % 100 != 2:
                fates[JobState.SUCCEEDED.value].append(row.job_id)
        with engine.begin() as conn:
            for state, ids in fates.items():
                if ids:
                    conn.execute(finish, {"state": state, "ids": ids})
    store.close()
    engine.dispose()


def measure_listing(
    work: Path, database_url: str | None, jobs: int, samples: int
) -> dict[str, Any]:
    home = work / "list-home"
    home.mkdir(parents=True, exist_ok=True)
    url_of_store = database_url or f"sqlite:///{home / 'hpcbridge.db'}"
    fill(url_of_store, home, jobs, projects=20)
    with served_process(home, database_url) as (url, token):
        admin = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=30) as http:
            member = _member_token(http, admin, "p3")
            first = http.get("/api/v1/jobs", params={"limit": PAGE}, headers=admin).json()
            deep = _cursor_deep(http, admin, first["next_cursor"], pages=20)
            queries: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
                "first": ({"limit": PAGE}, admin),
                "deep": ({"limit": PAGE, "cursor": deep}, admin),
                "member": ({"limit": PAGE}, member),
                "state": ({"limit": PAGE, "state": JobState.FAILED.value}, admin),
            }
            for params, headers in queries.values():  # warm: plans, caches, connections
                http.get("/api/v1/jobs", params=params, headers=headers).raise_for_status()
            timings: dict[str, list[float]] = {name: [] for name in [*queries, "healthz"]}
            for _ in range(samples):  # the kinds take turns: a busy moment hits them all
                for name, (params, headers) in queries.items():
                    started = time.perf_counter()
                    answer = http.get("/api/v1/jobs", params=params, headers=headers)
                    timings[name].append((time.perf_counter() - started) * 1000)
                    assert answer.is_success and answer.json()["items"], answer.text
                started = time.perf_counter()
                http.get("/healthz").raise_for_status()  # the floor: a route without a query
                timings["healthz"].append((time.perf_counter() - started) * 1000)
    pages = sorted(t for name, found in timings.items() if name != "healthz" for t in found)
    return {
        "p50_ms": round(statistics.median(pages), 2),
        "p99_ms": _p99(pages),
        "p99_ms_by_query": {name: _p99(found) for name, found in timings.items()},
    }


def _p99(timings: Sequence[float]) -> float:
    ordered = sorted(timings)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)


def _member_token(http: httpx.Client, admin: dict[str, str], project: str) -> dict[str, str]:
    body = {"project": project, "role": str(Role.MEMBER), "ttl": "1h"}
    answer = http.post("/api/v1/tokens", json=body, headers=admin)
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _cursor_deep(http: httpx.Client, headers: dict[str, str], cursor: str, pages: int) -> str:
    """The cursor of the page ``pages`` pages further on (or of the last page)."""
    for _ in range(pages):
        page = http.get("/api/v1/jobs", params={"limit": PAGE, "cursor": cursor}, headers=headers)
        following = page.json()["next_cursor"]
        if following is None:
            break
        cursor = following
    return cursor


# -- scheduler queries ---------------------------------------------------------------------


class CountingBackend:
    """The local backend, counting the queries the reconciler asks of it."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self.polls = 0

    def poll(self, refs: Any, now: float) -> Any:
        self.polls += 1
        return self._inner.poll(refs, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def measure_watchers(work: Path, users: int, watch_s: float, jobs_each: int = 2) -> float:
    """Backend queries per minute while ``users`` users watch their running jobs."""
    settings = _settings(work / f"watch-{users}")
    client = Client(settings)
    counting = CountingBackend(client.backends["local"])
    # the reconciler reads its backends from this mapping: it now asks the counting one
    client.backends._loaded["local"] = counting
    runtime = Runtime(settings, ServeOptions(), client=client)
    service = Service(client.store, settings, client=client)
    admin = Principal.local_user()
    tokens = [
        service.create_token(admin, f"user{u}", Role.MEMBER, 3600, subject=f"user{u}")[0]
        for u in range(users)
    ]
    config = uvicorn.Config(
        create_app(runtime, service=service), host="127.0.0.1", port=_free_port(), log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{config.port}"
    stop = threading.Event()
    ready = threading.Barrier(users + 1)
    watchers = [
        threading.Thread(target=_watch, args=(url, token, f"user{u}", jobs_each, ready, stop))
        for u, token in enumerate(tokens)
    ]
    for watcher in watchers:
        watcher.start()
    try:
        ready.wait(120)  # every user's jobs submitted
        _wait_running(client, users * jobs_each)
        before, started = counting.polls, time.monotonic()
        time.sleep(watch_s)
        per_minute = (counting.polls - before) / (time.monotonic() - started) * 60
    finally:
        stop.set()
        for watcher in watchers:
            watcher.join(30)
        for job in client.store.newest_jobs(_all()):
            if not job.state.terminal:
                client.cancel(job.job_id)
        server.should_exit = True
        thread.join(60)
    return per_minute


def _all() -> JobFilter:
    return JobFilter(top_level_only=True, limit=10_000)


def _wait_running(client: Client, count: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        running = [j for j in client.store.newest_jobs(_all()) if j.state is JobState.RUNNING]
        if len(running) >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(running)} of {count} jobs started")
        time.sleep(0.2)


def _watch(
    url: str,
    token: str,
    project: str,
    jobs: int,
    ready: threading.Barrier,
    stop: threading.Event,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        ids = []
        for i in range(jobs):
            document = _document(f"watch-{i}", project, ("sleep", "600"))
            answer = http.post("/api/v1/jobs", json=document)
            answer.raise_for_status()
            ids.append(answer.json()["job_id"])
        ready.wait(120)
        while not stop.wait(0.5):
            for job_id in ids:
                http.get(f"/api/v1/jobs/{job_id}").raise_for_status()


# -- PostgreSQL ----------------------------------------------------------------------------


def postgres_url() -> str | None:
    url = os.environ.get("HPCBRIDGE_BENCH_PG_URL")
    if not url:
        try:
            url = PG_STATE_URL.read_text().strip()
        except OSError:
            return None
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:
        return None
    return url


@contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped afterwards."""
    schema = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(server_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


# -- main ----------------------------------------------------------------------------------


def run(
    work: Path,
    *,
    submissions: int,
    rounds: int,
    jobs: int,
    samples: int,
    users: int,
    watch_s: float,
    use_postgres: bool,
) -> dict[str, Any]:
    result: dict[str, Any] = {"submissions": submissions, "jobs_stored": jobs, "users": users}
    result |= measure_submissions(work / "submit", submissions, rounds)
    sqlite = measure_listing(work / "list-sqlite", None, jobs, samples)
    result["list_p50_ms_100k"], result["list_p99_ms_100k"] = sqlite["p50_ms"], sqlite["p99_ms"]
    result["list_p99_ms_by_query"] = sqlite["p99_ms_by_query"]
    pg_server = postgres_url() if use_postgres else None
    if pg_server is not None:
        with postgres_schema(pg_server) as url:
            pg = measure_listing(work / "list-pg", url, jobs, samples)
        result["list_p50_ms_100k_postgresql"] = pg["p50_ms"]
        result["list_p99_ms_100k_postgresql"] = pg["p99_ms"]
        result["list_p99_ms_by_query_postgresql"] = pg["p99_ms_by_query"]
    one = measure_watchers(work, 1, watch_s)
    many = measure_watchers(work, users, watch_s)
    result["scheduler_queries_per_min_1_user"] = round(one, 1)
    result[f"scheduler_queries_per_min_{users}_users"] = round(many, 1)
    result[f"scheduler_queries_ratio_{users}_users"] = round(many / one, 3)
    result["targets"] = {
        "api_vs_embedded_ratio": ">= 0.5",
        "list_p99_ms_100k": "< 50",
        "scheduler_queries_ratio_20_users": "<= 1.2",
    }
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--submissions", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=100, help="requests per list query")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--watch-s", type=float, default=20.0)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # stdout carries the JSON object only
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="api-bench-") as work:
        result = run(
            Path(work),
            submissions=args.submissions,
            rounds=args.rounds,
            jobs=args.jobs,
            samples=args.samples,
            users=args.users,
            watch_s=args.watch_s,
            use_postgres=not args.no_postgres,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
