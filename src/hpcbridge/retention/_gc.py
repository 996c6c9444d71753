"""``gc``: remove the files and the unread events of jobs past a retention period.

A plan first (``plan_gc``: it reads and changes nothing), then ``apply_gc`` removes what
the plan lists, so a dry run shows exactly what a real run removes. A job qualifies once
it is in a terminal state and finished before ``now - older_than_s``; an array task only
with its array, which finishes after the last of them. Removed:

- the job's directory under the local executor's ``runs`` directory (its attempts' logs,
  status files and work directories), and its data directory (``<home>/data/JOB``: staged
  inputs and outputs, already copied out);
- each attempt's log files and status directory elsewhere (Slurm's log directory);
- its events older than the cut-off, except the kinds that SLOs, metrics and cost read
  (``KEPT_EVENT_KINDS``). Job and attempt rows stay.

Never removed: anything of a job that is not finished (or has an attempt still active),
anything finished inside the period, a directory outside ``home`` unless it is an
attempt's own status directory (named after its token), a directory that holds the
job's submit directory, a symbolic link's target, and checkpoints.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hpcbridge.backends import Backend
from hpcbridge.retention._files import attempt_files
from hpcbridge.store import ACTIVE_ATTEMPT_STATES, Attempt, Job, JobId, Store

KEPT_EVENT_KINDS: frozenset[str] = frozenset(
    {
        "accepted",
        "transition",
        "attempt_succeeded",
        "attempt_failed",
        "checkpoint_saved",
        "fabric_latency",
    }
)
"""Event kinds the SLO evaluator and the metrics fold read (queue wait, outcomes, attempts
and their run time, preemptions, time to recover, checkpoint and fabric latency): a fold
of what ``gc`` leaves gives the same SLIs and metrics. Every other kind (submissions,
``attempt_running``, kill orders, cancel requests, node drains) only explains one job's
history, and goes with its files."""


@dataclass(frozen=True, slots=True)
class Removal:
    """One file or directory tree ``gc`` removes."""

    job_id: str
    path: Path
    bytes_total: int
    directory: bool


@dataclass(frozen=True, slots=True)
class GcPlan:
    cutoff: float
    """Jobs that finished before this (a Unix time) are past the retention period."""
    job_ids: tuple[JobId, ...]
    removals: tuple[Removal, ...]
    events: Mapping[str, int]
    """Events that go, by kind."""
    skipped: tuple[str, ...] = ()
    """What was left in place and why (a path outside hpcbridge's directories...)."""

    @property
    def bytes_total(self) -> int:
        return sum(r.bytes_total for r in self.removals)

    @property
    def events_total(self) -> int:
        return sum(self.events.values())


@dataclass(frozen=True, slots=True)
class GcResult:
    removed: tuple[Removal, ...]
    events_deleted: int
    errors: tuple[str, ...] = field(default=())

    @property
    def bytes_total(self) -> int:
        return sum(r.bytes_total for r in self.removed)


def plan_gc(
    store: Store,
    backends: Mapping[str, Backend],
    *,
    home: Path,
    runs_dir: Path,
    older_than_s: float,
    now: float,
) -> GcPlan:
    """What ``gc`` removes of the jobs that finished more than ``older_than_s`` ago."""
    cutoff = now - older_than_s
    finished = store.finished_jobs(before=cutoff)
    finished_ids = {job.job_id for job in finished}
    roots = (_absolute(home), _absolute(runs_dir))
    skipped: list[str] = []
    job_ids: list[JobId] = []
    candidates: list[tuple[Job, Path]] = []
    for job in finished:
        if job.parent_id is not None and job.parent_id not in finished_ids:
            continue  # its array has not finished, or finished inside the period
        attempts = store.attempts(job.job_id)
        if any(a.state in ACTIVE_ATTEMPT_STATES for a in attempts):
            skipped.append(f"{job.job_id}: an attempt is still active")
            continue
        job_ids.append(job.job_id)
        tokens = {a.token for a in attempts}
        for path in _paths_of(job, attempts, backends, runs_dir, home):
            reason = _refusal(job, path, roots, tokens)
            if reason is None:
                candidates.append((job, path))
            elif reason:
                skipped.append(f"{path}: {reason}")
    removals = [
        Removal(job.job_id, path, _size(path), _is_directory(path))
        for job, path in _outermost(candidates)
    ]
    events = store.count_events(job_ids, before=cutoff, keep_kinds=KEPT_EVENT_KINDS)
    return GcPlan(cutoff, tuple(job_ids), tuple(removals), dict(events), tuple(skipped))


def apply_gc(store: Store, plan: GcPlan) -> GcResult:
    """Remove what ``plan`` lists; a path that cannot be removed is reported, not fatal."""
    removed: list[Removal] = []
    errors: list[str] = []
    for removal in plan.removals:
        try:
            if removal.directory:
                shutil.rmtree(removal.path)
            else:
                removal.path.unlink()
        except FileNotFoundError:
            continue  # gone meanwhile: nothing left to remove
        except OSError as exc:
            errors.append(f"{removal.path}: {exc.strerror or exc}")
            continue
        removed.append(removal)
    deleted = store.delete_events(
        list(plan.job_ids), before=plan.cutoff, keep_kinds=KEPT_EVENT_KINDS
    )
    return GcResult(tuple(removed), deleted, tuple(errors))


def _paths_of(
    job: Job,
    attempts: Iterable[Attempt],
    backends: Mapping[str, Backend],
    runs_dir: Path,
    home: Path,
) -> list[Path]:
    # The local executor's directory of the job, and its staged data (inputs linked from the
    # input cache, which can evict them once no job links them).
    paths = [runs_dir / job.job_id, home / "data" / job.job_id]
    for attempt in attempts:
        files = attempt_files(attempt, backends.get(attempt.backend))
        paths += [p for p in (files.status_dir, files.stdout, files.stderr) if p is not None]
    return paths


def _refusal(job: Job, path: Path, roots: tuple[Path, Path], tokens: set[str]) -> str | None:
    """Why ``path`` must stay ("" when it is simply not there); None: it may go. A
    directory outside ``home`` may go only if it is named after one of ``tokens`` (Slurm's
    status directory of an attempt is). ``roots`` are home and the runs directory, which
    never go, nor anything that holds them."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return ""
    path = _absolute(path)
    home = roots[0]
    if any(_inside(root, path) for root in roots):
        return "it holds hpcbridge's own data"
    if stat.S_ISDIR(mode):
        if not (_inside(path, home) or path.name in tokens):
            return "a directory outside hpcbridge's home that is no attempt's own"
        submit_dir = job.spec.get("submit_dir")
        if isinstance(submit_dir, str) and submit_dir and _inside(Path(submit_dir), path):
            return "it holds the directory the job was submitted from"
    elif not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        return "not a regular file"
    return None


def _outermost(candidates: list[tuple[Job, Path]]) -> list[tuple[Job, Path]]:
    """Each path once, and none inside another that goes (a log inside a job directory),
    in the order given."""
    absolute = [(job, _absolute(path)) for job, path in candidates]
    chosen: set[Path] = set()
    for _, path in sorted(absolute, key=lambda c: len(c[1].parts)):
        if not any(parent in chosen for parent in path.parents):
            chosen.add(path)
    found = []
    for job, path in absolute:
        if path in chosen:
            chosen.discard(path)  # listed once
            found.append((job, path))
    return found


def _absolute(path: Path) -> Path:
    # Normalised without resolving links: a link is removed, never what it points to.
    return Path(os.path.normpath(path.absolute()))


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _is_directory(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def _size(path: Path) -> int:
    """Bytes of the files under ``path`` (links not followed)."""
    try:
        if not _is_directory(path):
            return path.lstat().st_size
    except OSError:
        return 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total
