"""What the backend last saw of one cluster's queue, and when it must look again.

slurmctld answers every job-information request under its job table lock, so the backend
looks at a cluster's queue at most every ``queue_interval_s`` (30 s by default) and answers
the polls in between from its last look. The jobs themselves say when that is not enough:
the batch script creates ``$HPCBRIDGE_STATUS_DIR/run-<N>`` when run ``N`` starts and writes
its exit status to ``run-<N>/exit`` when the program ends (``_render._RUNNER``). Where that
directory is visible from here (the CLI on shared storage), a stat tells that a job started
or ended; an end is settled from accounting (sacct asks slurmdbd, not slurmctld), and only
what accounting cannot settle (a requeue, a record that does not come) brings the next look
at the queue forward, no more often than ``EVENT_INTERVAL_S``. A start only changes what is
shown (running, on which nodes), not what hpcbridge must do: it brings a look forward to at
most every ``START_INTERVAL_S`` since the last one, so that a busy queue, where jobs start
every second, is still looked at a few times a minute.

A slow answer is slurmctld saying it is busy: a look that takes ``SLOW_LOOK_S`` or more
doubles the time to the next one (up to ``MAX_STRETCH`` times the interval), and the first
quick answer restores it. Errors back off separately (``_backend.Backoff``).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from hpcbridge.backends._protocol import AttemptRef
from hpcbridge.backends.slurm._parse import PENDING_STATES, TERMINAL_STATES
from hpcbridge.backends.slurm._records import JobRecord

EVENT_INTERVAL_S = 5.0
"""Least time between two looks at the queue that the jobs' status files asked for."""
START_INTERVAL_S = 15.0
"""Least time since the last look before a start seen in the status files asks for one."""
SETTLE_S = 2.0
"""How long an ended run may wait for accounting before the queue is asked instead."""
SLOW_LOOK_S = 2.0
"""A look at one user's jobs this slow means slurmctld is busy (a quick one takes ~10 ms)."""
MAX_STRETCH = 8
"""The most the intervals between looks are stretched while slurmctld answers slowly."""


@dataclass(frozen=True, slots=True)
class RunMark:
    """What the job side wrote about an attempt's newest run."""

    run: int
    """The run number: Slurm's restart count when it started (``run-<N>``)."""
    exit_status: int | None
    """The exit status the batch script wrote at the end; None while the run goes on."""


def read_run_mark(status_dir: str) -> RunMark | None:
    """The newest run in ``status_dir``; None when none started or it is out of sight."""
    try:
        names = os.listdir(status_dir)
    except OSError:
        return None
    runs = [int(name[4:]) for name in names if name.startswith("run-") and name[4:].isdigit()]
    if not runs:
        return None
    run = max(runs)
    try:
        with open(os.path.join(status_dir, f"run-{run}", "exit")) as handle:
            text = handle.read().strip()
    except OSError:
        return RunMark(run, None)
    return RunMark(run, int(text) if text.isdigit() else None)


def started_since(mark: RunMark | None, record: JobRecord | None) -> bool:
    """The job side says a run started that the last look did not show running."""
    if mark is None or mark.exit_status is not None:
        return False
    if record is None:
        return True
    return record.restarts < mark.run or (
        record.restarts == mark.run and record.state in PENDING_STATES
    )


def ended_since(mark: RunMark | None, record: JobRecord | None) -> bool:
    """The job side says the run the last look showed (or a later one) ended, and the look
    did not show it finished."""
    if mark is None or mark.exit_status is None:
        return False
    if record is None:
        return True
    return record.restarts <= mark.run and record.state not in TERMINAL_STATES


@dataclass(slots=True)
class QueueView:
    """The last look at one cluster's queue (own jobs), and what it does not cover yet."""

    records: dict[str, JobRecord] = field(default_factory=dict)
    looked_at: float | None = None
    """``poll``'s clock at the last look; None before the first."""
    event_look_at: float = float("-inf")
    """When a look was last brought forward by an event."""
    forced: bool = False
    """A kill or requeue asked for a fresh look at the next poll."""
    stretch: int = 1
    """How many times the intervals are stretched because slurmctld answered slowly."""
    ended_seen: dict[str, float] = field(default_factory=dict)
    """Native id -> when its run's end was first seen in its status files."""
    _unseen: set[str] = field(default_factory=set)
    """Native ids submitted after the last look: not in it, yet not gone either."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def submitted(self, native_ids: Iterable[str]) -> None:
        with self._lock:  # submissions come from several threads
            self._unseen.update(native_ids)

    def unseen(self, native_id: str) -> bool:
        return native_id in self._unseen

    def due(self, now: float, interval_s: float) -> bool:
        if self.forced or self.looked_at is None:
            return True
        return now - self.looked_at >= interval_s * self.stretch

    def may_bring_forward(self, now: float, interval_s: float) -> bool:
        return now - self.event_look_at >= min(EVENT_INTERVAL_S, interval_s) * self.stretch

    def may_look_for_starts(self, now: float, interval_s: float) -> bool:
        since = now - (self.looked_at if self.looked_at is not None else float("-inf"))
        return since >= min(START_INTERVAL_S, interval_s) * self.stretch

    def looked(
        self,
        records: Mapping[str, JobRecord],
        now: float,
        covered: set[str],
        took_s: float = 0.0,
    ) -> None:
        """A new look, taken after ``covered`` (the unseen ids then) had been submitted;
        ``took_s`` is how long slurmctld took to answer it."""
        self.records = dict(records)
        self.looked_at = now
        self.forced = False
        self.stretch = min(MAX_STRETCH, self.stretch * 2) if took_s >= SLOW_LOOK_S else 1
        with self._lock:
            self._unseen -= covered

    def covered_now(self) -> set[str]:
        with self._lock:
            return set(self._unseen)

    def forget(self, keep: Iterable[str]) -> None:
        """Drop end sightings of attempts no longer polled."""
        kept = set(keep)
        for native_id in [n for n in self.ended_seen if n not in kept]:
            del self.ended_seen[native_id]


def finished(record: JobRecord | None) -> bool:
    return record is not None and record.state in TERMINAL_STATES


def exact_exit(record: JobRecord | None, mark: RunMark | None) -> JobRecord | None:
    """sacct's text exit code loses bit 7 in 22.05 (``exit 200`` reads 72); the status
    written by the batch script is exact, when it is the same run's."""
    if record is None or mark is None or mark.exit_status is None or record.signal is not None:
        return record
    if record.restarts > mark.run or (record.exit_code or 0) & 0x7F != mark.exit_status & 0x7F:
        return record
    return dataclasses.replace(record, exit_code=mark.exit_status)


def wants_look(
    view: QueueView,
    refs: Sequence[AttemptRef],
    marks: Mapping[str, RunMark | None],
    ended: set[str],
    accounting: Mapping[str, JobRecord],
    now: float,
    interval_s: float,
) -> bool:
    """Before the interval is up: a run started that the last look showed pending, or
    a run ended that accounting alone cannot settle (Slurm may requeue the job)."""
    if not view.may_bring_forward(now, interval_s):
        return False
    for_starts = view.may_look_for_starts(now, interval_s)
    for ref in refs:
        native_id = ref.native_id
        if not native_id:
            continue
        record = view.records.get(native_id)
        mark = marks.get(ref.token)
        seen = record is not None or view.unseen(native_id)
        if for_starts and seen and started_since(mark, record):
            return True
        if native_id not in ended:
            continue
        if record is None or record.requeue is not False:
            return True  # requeue-able: only slurmctld knows whether it comes back
        waited = now - view.ended_seen.get(native_id, now)
        if not finished(accounting.get(native_id)) and waited >= SETTLE_S:
            return True
    return False
