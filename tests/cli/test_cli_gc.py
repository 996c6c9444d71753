"""Retention (``hpcbridge gc``) on a store with finished, recent and running jobs: nothing of
a running job or of one inside the retention period is touched, a dry run changes
nothing, and the real run removes exactly what the dry run listed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hpcbridge.backends import Backend
from hpcbridge.backends.local import LocalBackend
from hpcbridge.config import Settings
from hpcbridge.retention import KEPT_EVENT_KINDS, apply_gc, attempt_files, plan_gc
from hpcbridge.states import AttemptState, JobState
from hpcbridge.store import Event, JobId, MemoryStore, NewJob, Store

DAY = 86400.0
NOW = 1000 * DAY
OLD = NOW - 40 * DAY
RECENT = NOW - 1 * DAY
RETENTION_S = 30 * DAY
S = JobState


def _new(job_id: str, **fields: object) -> NewJob:
    values: dict[str, object] = {
        "name": job_id,
        "project": "p",
        "workload_class": "batch",
        "backend": "local",
        "spec": {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": job_id, "command": ["x"]},
    }
    values.update(fields)
    return NewJob(job_id=JobId(job_id), **values)  # type: ignore[arg-type]


@dataclass
class Site:
    store: MemoryStore
    backends: dict[str, Backend]
    home: Path
    runs: Path
    outside: Path

    def run_attempt(
        self, job_id: str, *, at: float, ended: AttemptState, backend: str = "local"
    ) -> None:
        """One attempt with its files, like the local executor leaves them."""
        job = JobId(job_id)
        number = len(self.store.attempts(job)) + 1
        token = f"tok-{job_id}-{number}"
        if backend == "local":
            directory = self.runs / job_id / f"attempt-{number}"
        else:  # a Slurm-like status directory outside home, named after the token
            directory = self.outside / "status" / token
        (directory / "work").mkdir(parents=True)
        (directory / "stdout.log").write_text(f"out of {job_id}\n")
        (directory / "stderr.log").write_text("")
        (directory / "work" / "result.dat").write_bytes(b"x" * 1000)
        key = "dir" if backend == "local" else "status_dir"
        self.store.create_attempt(
            job, backend=backend, token=token, now=at, details={key: str(directory)}
        )
        self.store.update_attempt(job, number, state=AttemptState.SUBMITTED, submitted_at=at)
        self.store.add_event(job, "attempt_submitted", now=at, attempt=number)
        self.store.add_event(job, "attempt_running", now=at, attempt=number)
        if ended is not AttemptState.RUNNING:
            self.store.update_attempt(job, number, state=ended, ended_at=at + 10)
            self.store.add_event(job, f"attempt_{ended.value}", now=at + 10, attempt=number)

    def move(self, job_id: str, *states: JobState, at: float) -> None:
        for state in states:
            job = self.store.get_job(job_id)
            self.store.transition(job.job_id, state, expected_version=job.version, now=at)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    home = tmp_path / "home"
    settings = Settings(home=home)
    backend = LocalBackend(settings)
    store = MemoryStore()
    made = Site(store, {"local": backend}, home, settings.runs_dir, tmp_path / "elsewhere")
    # Finished 40 days ago: everything of theirs but what SLOs read goes.
    store.create_jobs([_new("old"), _new("retried")], now=OLD - 100, actor="t")
    made.move("old", S.QUEUED, at=OLD - 50)
    made.run_attempt("old", at=OLD - 40, ended=AttemptState.SUCCEEDED)
    made.move("old", S.RUNNING, S.SUCCEEDED, at=OLD)
    store.add_event(JobId("old"), "kill", now=OLD, reason="a note")
    made.move("retried", S.QUEUED, S.RUNNING, at=OLD - 90)
    made.run_attempt("retried", at=OLD - 90, ended=AttemptState.FAILED)
    made.move("retried", S.RETRY_WAIT, S.QUEUED, S.RUNNING, at=OLD - 60)
    made.run_attempt("retried", at=OLD - 60, ended=AttemptState.FAILED, backend="slurm")
    made.move("retried", S.FAILED, at=OLD)
    # Finished yesterday: inside the period.
    store.create_jobs([_new("recent")], now=OLD, actor="t")
    made.move("recent", S.QUEUED, S.RUNNING, at=OLD)
    made.run_attempt("recent", at=RECENT - 20, ended=AttemptState.SUCCEEDED)
    made.move("recent", S.SUCCEEDED, at=RECENT)
    # Running for 40 days, with old events: never touched.
    store.create_jobs([_new("running")], now=OLD - 100, actor="t")
    made.move("running", S.QUEUED, S.RUNNING, at=OLD - 100)
    made.run_attempt("running", at=OLD - 100, ended=AttemptState.RUNNING)
    # An array still running, one of its tasks finished 40 days ago: the task stays.
    store.create_jobs(
        [_new("arr", task_count=2)]
        + [_new(f"arr.{i}", parent_id=JobId("arr"), task_index=i) for i in range(2)],
        now=OLD - 100,
        actor="t",
    )
    made.move("arr", S.QUEUED, S.RUNNING, at=OLD - 100)
    made.move("arr.0", S.QUEUED, S.RUNNING, at=OLD - 100)
    made.run_attempt("arr.0", at=OLD - 100, ended=AttemptState.SUCCEEDED)
    made.move("arr.0", S.SUCCEEDED, at=OLD - 50)
    made.move("arr.1", S.QUEUED, S.RUNNING, at=OLD - 100)
    made.run_attempt("arr.1", at=OLD - 100, ended=AttemptState.RUNNING)
    # A finished array, tasks and all.
    store.create_jobs(
        [_new("done", task_count=1), _new("done.0", parent_id=JobId("done"), task_index=0)],
        now=OLD - 100,
        actor="t",
    )
    made.move("done.0", S.QUEUED, S.RUNNING, at=OLD - 100)
    made.run_attempt("done.0", at=OLD - 100, ended=AttemptState.SUCCEEDED)
    made.move("done.0", S.SUCCEEDED, at=OLD - 10)
    made.move("done", S.QUEUED, S.RUNNING, S.SUCCEEDED, at=OLD - 10)
    yield made


def _tree(*roots: Path) -> dict[str, int]:
    found = {}
    for root in roots:
        for directory, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                path = Path(directory, name)
                found[str(path)] = -1 if path.is_dir() else path.stat().st_size
    return found


def _records(store: Store) -> tuple[object, ...]:
    jobs = store.list_jobs()
    return (jobs, [store.attempts(j.job_id) for j in jobs], store.all_events())


def test_plan_lists_only_finished_jobs_past_the_period(site: Site) -> None:
    plan = plan_gc(
        site.store,
        site.backends,
        home=site.home,
        runs_dir=site.runs,
        older_than_s=RETENTION_S,
        now=NOW,
    )
    assert sorted(plan.job_ids) == ["done", "done.0", "old", "retried"]
    assert sorted(str(r.path.relative_to(r.path.parents[1])) for r in plan.removals) == sorted(
        ["runs/done.0", "runs/old", "runs/retried", "status/tok-retried-2"]
    )
    assert all(r.directory and r.bytes_total > 1000 for r in plan.removals)
    assert plan.bytes_total == sum(r.bytes_total for r in plan.removals)
    assert plan.events == {"attempt_submitted": 4, "attempt_running": 4, "kill": 1}
    assert plan.skipped == ()


def test_a_dry_run_changes_nothing(site: Site) -> None:
    files, records = _tree(site.home, site.outside), _records(site.store)
    plan_gc(site.store, site.backends, home=site.home, runs_dir=site.runs, older_than_s=0, now=NOW)
    assert _tree(site.home, site.outside) == files
    assert _records(site.store) == records


def test_gc_removes_exactly_what_the_plan_listed(site: Site) -> None:
    files = _tree(site.home, site.outside)
    jobs, attempts, events = _records(site.store)
    plan = plan_gc(
        site.store,
        site.backends,
        home=site.home,
        runs_dir=site.runs,
        older_than_s=RETENTION_S,
        now=NOW,
    )
    result = apply_gc(site.store, plan)
    assert result.removed == plan.removals
    assert result.errors == ()
    assert result.events_deleted == plan.events_total == 9

    gone = [str(r.path) for r in plan.removals]
    expected = {
        path: size
        for path, size in files.items()
        if not any(path == g or path.startswith(g + os.sep) for g in gone)
    }
    assert _tree(site.home, site.outside) == expected
    # Rows stay; events go only where the plan said.
    after_jobs, after_attempts, after_events = _records(site.store)
    assert (after_jobs, after_attempts) == (jobs, attempts)
    assert isinstance(events, list) and isinstance(after_events, list)
    removed = [e for e in events if e not in after_events]
    assert len(removed) == 9
    assert all(e.job_id in plan.job_ids and e.time < plan.cutoff for e in removed)
    assert all(e.kind not in KEPT_EVENT_KINDS for e in removed)
    # Nothing of the running, recent or running-array jobs changed.
    for job_id in ("running", "recent", "arr", "arr.0", "arr.1"):
        assert _events_of(events, job_id) == _events_of(after_events, job_id)
        assert (site.runs / job_id).exists() or job_id == "arr"
    # What is left is kept: a second run finds nothing.
    again = plan_gc(
        site.store,
        site.backends,
        home=site.home,
        runs_dir=site.runs,
        older_than_s=RETENTION_S,
        now=NOW,
    )
    assert (again.removals, dict(again.events)) == ((), {})


def _events_of(events: list[Event], job_id: str) -> list[Event]:
    return [e for e in events if e.job_id == job_id]


def test_the_kept_event_kinds_are_the_ones_slos_and_metrics_read() -> None:
    assert {"accepted", "transition", "attempt_succeeded", "attempt_failed"} <= KEPT_EVENT_KINDS
    assert {"checkpoint_saved", "fabric_latency"} <= KEPT_EVENT_KINDS


def test_a_directory_outside_home_not_named_for_an_attempt_stays(site: Site) -> None:
    job = JobId("old")
    stray = site.outside / "shared-results"
    stray.mkdir(parents=True)
    (stray / "keep.txt").write_text("precious")
    site.store.create_attempt(
        job, backend="slurm", token="tok-x", now=OLD, details={"status_dir": str(stray)}
    )
    site.store.update_attempt(job, 2, state=AttemptState.FAILED, ended_at=OLD)
    plan = plan_gc(
        site.store,
        site.backends,
        home=site.home,
        runs_dir=site.runs,
        older_than_s=RETENTION_S,
        now=NOW,
    )
    assert stray not in [r.path for r in plan.removals]
    assert any(str(stray) in note for note in plan.skipped)
    apply_gc(site.store, plan)
    assert (stray / "keep.txt").read_text() == "precious"


def test_home_and_the_submit_directory_are_never_removed(site: Site) -> None:
    job = JobId("old")
    (site.home / "submitted" / "x").mkdir(parents=True)
    for number, directory in ((2, site.home), (3, site.runs)):
        site.store.create_attempt(
            job,
            backend="slurm",
            token=f"t{number}",
            now=OLD,
            details={"status_dir": str(directory)},
        )
        site.store.update_attempt(job, number, state=AttemptState.FAILED, ended_at=OLD)
    spec = {**site.store.get_job("old").spec, "submit_dir": str(site.home / "submitted" / "x")}
    site.store.create_jobs([_new("sub", spec=spec)], now=OLD - 10, actor="t")
    site.store.create_attempt(
        JobId("sub"),
        backend="slurm",
        token="ts",
        now=OLD,
        details={"status_dir": str(site.home / "submitted")},
    )
    site.store.update_attempt(JobId("sub"), 1, state=AttemptState.FAILED, ended_at=OLD)
    site.move("sub", S.CANCELLED, at=OLD)
    plan = plan_gc(
        site.store,
        site.backends,
        home=site.home,
        runs_dir=site.runs,
        older_than_s=RETENTION_S,
        now=NOW,
    )
    listed = [r.path for r in plan.removals]
    assert site.home not in listed and site.runs not in listed
    assert site.home / "submitted" not in listed
    assert any("submitted from" in note for note in plan.skipped), plan.skipped
    assert any("hpcbridge's own data" in note for note in plan.skipped), plan.skipped


def test_attempt_files_of_the_local_executor(site: Site) -> None:
    [attempt] = site.store.attempts(JobId("old"))
    files = attempt_files(attempt, site.backends["local"])
    directory = site.runs / "old" / "attempt-1"
    assert files.status_dir == directory
    assert files.work_dir == directory / "work"
    assert files.stdout is not None and files.stdout.read_text() == "out of old\n"
    assert files.stderr is not None and files.stderr.parent == directory
    assert attempt_files(attempt, None).stdout is None


def test_a_finished_job_with_an_attempt_still_active_is_left_alone(site: Site) -> None:
    site.store.create_attempt(JobId("old"), backend="local", token="late", now=OLD, details={})
    plan = plan_gc(
        site.store,
        site.backends,
        home=site.home,
        runs_dir=site.runs,
        older_than_s=RETENTION_S,
        now=NOW,
    )
    assert "old" not in plan.job_ids
    assert site.runs / "old" not in [r.path for r in plan.removals]
    assert "old: an attempt is still active" in plan.skipped
