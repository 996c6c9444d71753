"""``hpcbridge gc`` end to end, with the installed command on a real SQLite store: jobs aged
by rewriting their times in the database, a running job, a dry run that changes nothing,
a real run that removes exactly what the dry run listed, and SLO reports and metrics that
read the same after it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from prometheus_client.registry import CollectorRegistry

from hpcbridge.store import SqlStore
from hpcbridge.telemetry import StoreCollector
from tests.cli._home import as_json, runner, spec
from tests.cli.conftest import RunHpcbridge

DAY = 86400.0
AGE_S = 40 * DAY


def _tree(root: Path) -> dict[str, int]:
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(directory, name)
            found[str(path)] = -1 if path.is_dir() else path.stat().st_size
    return found


def _rows(database: Path) -> dict[str, list[Any]]:
    with sqlite3.connect(database) as conn:
        return {
            table: conn.execute(f"select * from {table} order by 1, 2").fetchall()
            for table in ("jobs", "attempts", "events")
        }


def _age(database: Path, job_ids: list[str]) -> None:
    """Move everything of ``job_ids`` (and their tasks) 40 days into the past."""
    with sqlite3.connect(database) as conn:
        for job_id in job_ids:
            ids = [job_id, f"{job_id}.%"]
            for column in ("created_at", "updated_at", "started_at", "finished_at"):
                conn.execute(
                    f"update jobs set {column} = {column} - ? where job_id = ? or job_id like ?",
                    (AGE_S, *ids),
                )
            for column in ("created_at", "submitted_at", "started_at", "ended_at"):
                conn.execute(
                    f"update attempts set {column} = {column} - ? "
                    "where job_id = ? or job_id like ?",
                    (AGE_S, *ids),
                )
            conn.execute(
                "update events set time = time - ? where job_id = ? or job_id like ?",
                (AGE_S, *ids),
            )


def _submit(run: RunHpcbridge, directory: Path, name: str, body: str) -> str:
    result = run("submit", spec(directory, name, body))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_gc_removes_what_the_dry_run_listed_and_nothing_running_or_recent(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    run = runner(home, tmp_path)
    talker = _submit(run, tmp_path, "talker", "command: [sh, -c, 'echo out; echo err >&2']\n")
    failing = _submit(run, tmp_path, "failing", "command: [sh, -c, 'exit 3']\n")
    sweep = _submit(run, tmp_path, "sweep", "command: [echo, '{index}']\narray: {indices: 0-2}\n")
    recent = _submit(run, tmp_path, "recent", "command: [echo, recent]\n")
    assert run("wait", talker, failing, sweep, recent).returncode == 1  # 'failing' failed
    running = _submit(run, tmp_path, "running", "command: [sleep, '300']\n")
    try:
        database = home / "hpcbridge.db"
        for _ in range(100):
            if as_json(run("status", running, "--json"))["job"]["state"] == "running":
                break
        _age(database, [talker, failing, sweep, running])
        files, rows = _tree(home / "runs"), _rows(database)

        dry = as_json(run("gc", "--dry-run", "--json"))
        assert dry["dry_run"] is True
        old = {talker, failing, sweep, *(f"{sweep}.{i}" for i in range(3))}
        assert set(dry["jobs"]) == old
        assert {p["job_id"] for p in dry["paths"]} == old - {sweep}
        assert dry["events_total"] > 0
        assert set(dry["events"]).isdisjoint(dry["kept_event_kinds"])
        assert _tree(home / "runs") == files and _rows(database) == rows
        text = run("gc", "--dry-run")
        assert text.returncode == 0, text.stderr
        assert "dry run: nothing changed" in text.stdout
        assert all(p["path"] in text.stdout for p in dry["paths"])
        assert _tree(home / "runs") == files and _rows(database) == rows

        real = run("gc", "--json")
        assert real.returncode == 0, real.stderr
        done = as_json(real)
        assert done["dry_run"] is False
        assert done["paths"] == dry["paths"]
        assert (done["events"], done["events_total"]) == (dry["events"], dry["events_total"])

        gone = [p["path"] for p in dry["paths"]]
        assert _tree(home / "runs") == {
            path: size
            for path, size in files.items()
            if not any(path == g or path.startswith(g + os.sep) for g in gone)
        }
        after = _rows(database)
        assert (after["jobs"], after["attempts"]) == (rows["jobs"], rows["attempts"])
        removed = [e for e in rows["events"] if e not in after["events"]]
        assert len(removed) == dry["events_total"]
        assert {e[1] for e in removed} <= old  # events.job_id
        for job_id in (running, recent):
            assert (home / "runs" / job_id).is_dir()
        assert as_json(run("status", running, "--json"))["job"]["state"] == "running"

        # What gc removed is said so where it is looked for.
        assert "removed by 'hpcbridge gc'" in run("status", talker).stdout
        logs = run("logs", talker)
        assert (logs.returncode, logs.stdout) == (0, "")
        assert "'hpcbridge gc' removed it" in logs.stderr
        assert as_json(run("gc", "--json"))["paths"] == []
    finally:
        run("cancel", running)


def _metrics(database: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample a fresh collector folds from the whole event log, but its event count."""
    store = SqlStore(f"sqlite:///{database}")
    try:
        registry = CollectorRegistry()
        registry.register(StoreCollector(store))
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in registry.collect()
            for sample in family.samples
            if "events_processed" not in sample.name
        }
    finally:
        store.close()


def test_slo_reports_and_metrics_read_the_same_after_gc(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run = runner(home, tmp_path)
    marker = tmp_path / "failed-once"
    jobs = [
        spec(tmp_path, "ok", "command: [echo, ok]\n"),
        spec(tmp_path, "bad", "command: [sh, -c, 'exit 2']\n"),
        spec(
            tmp_path,
            "flaky",
            f"command: [sh, -c, 'test -e {marker} && exit 0; touch {marker}; exit 3']\n"
            "retry: {max_attempts: 2, retry_on: [app_error], backoff: {initial: 1s}}\n",
        ),
        spec(tmp_path, "sweep", "command: [echo, '{index}']\narray: {indices: 0-3}\n"),
    ]
    for path in jobs:
        run("run", path)
    cancelled = run("submit", spec(tmp_path, "long", "command: [sleep, '300']\n")).stdout.strip()
    run("cancel", cancelled)

    def report() -> Any:
        document = as_json(run("slo", "report", "--json"))
        document.pop("generated_at")
        return document

    database = home / "hpcbridge.db"
    slo_before, metrics_before = report(), _metrics(database)
    done = as_json(run("gc", "--older-than", "0", "--json"))
    assert done["events_total"] > 0 and done["paths"]
    assert report() == slo_before
    assert _metrics(database) == metrics_before
