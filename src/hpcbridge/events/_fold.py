"""The one reading of the store's event log, event by event, from acceptance to the end.

``EventFold`` follows each job from its ``accepted`` event to its terminal transition and
says what happened, in the order it happened, to a ``FoldListener``: a job started (with
its queue wait), recovered after a failure, an attempt finished (``FinishedAttempt``), a
checkpoint was saved, a job finished (``FinishedJob``). Telemetry turns these into
counters and histograms as they come; the SLO module keeps the finished jobs. Both read
the log the same way because there is only this one fold.

The fold is a pure function of the event log: replaying the same events from ``seq`` 0
gives the same calls, and ``EventReader`` gives the same whatever the chunks it reads.
Array parents are skipped (their tasks are the jobs that run). Events of a job the fold
no longer follows (an attempt's end or a checkpoint that lands after the job's terminal
transition) are still told, with the labels the reader looks up; only the job's own
record (``FinishedJob``) is closed at its end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from hpcbridge.errors import NotFoundError
from hpcbridge.events import _vocabulary as v
from hpcbridge.events._metrics import PARTITION_KINDS, REGULAR, Outcome
from hpcbridge.events._records import FinishedAttempt, FinishedJob, JobLabels
from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import Event, JobId, Store

_KNOWN_CLASSES = frozenset(c.value for c in FailureClass)
_SUCCEEDED, _FAILED, _CANCELLED = (o.value for o in Outcome)
_CANCELLED_CLASS = FailureClass.CANCELLED.value
_RUNNING = JobState.RUNNING
_HELD = JobState.HELD
_VALUE = {state: state.value for state in JobState}
"""``state.value`` without the enum's descriptor, once per transition of a whole history."""
_ACCEPTED_STATE = JobState.ACCEPTED.value
_ACCEPTED = v.EventKind.ACCEPTED.value
_TRANSITION = v.EventKind.TRANSITION.value
_ATTEMPT_SUCCEEDED = v.EventKind.ATTEMPT_SUCCEEDED.value
_ATTEMPT_END = frozenset(k.value for k in v.ATTEMPT_END_KINDS)
_CHECKPOINT_SAVED = v.EventKind.CHECKPOINT_SAVED.value
_STAGES = {JobState.STAGING_IN.value: "stage_in", JobState.STAGING_OUT.value: "stage_out"}
_CHECKSUM_MISMATCH = FailureClass.CHECKSUM_MISMATCH.value
_NODE_CHECK = "node"
_BULK = 32
"""More new jobs than this in one chunk of events: load their labels with one query."""

RELEVANT_KINDS: frozenset[str] = frozenset(
    {_ACCEPTED, _TRANSITION, _CHECKPOINT_SAVED, v.EventKind.FABRIC_LATENCY.value, *_ATTEMPT_END}
)
"""Event kinds the fold reads; every other kind is only counted."""


class FoldListener:
    """What the fold tells, one call per fact; each method here does nothing.

    ``labels`` is the job's; ``state`` values are ``JobState`` values. Not told for array
    parents except ``job_accepted``.
    """

    def job_accepted(self, labels: JobLabels) -> None:
        """The fold follows a new job from now on (array parents too)."""

    def state_changed(self, labels: JobLabels, source: str | None, target: str) -> None:
        """The job moved from ``source`` to ``target``; ``source`` is None for the
        ``accepted`` event, which is not a transition."""

    def job_started(self, labels: JobLabels, queue_wait_s: float) -> None:
        """The job ran for the first time, ``queue_wait_s`` after its acceptance."""

    def licence_waited(self, labels: JobLabels, wait_s: float) -> None:
        """The job left ``held`` after waiting ``wait_s`` for licences (released, or failed
        as licence_unavailable)."""

    def job_recovered(self, labels: JobLabels, failure_class: str, recover_s: float) -> None:
        """The job runs again ``recover_s`` after an attempt failed with ``failure_class``."""

    def attempt_finished(
        self, labels: JobLabels, attempt: FinishedAttempt, lost_core_s: float
    ) -> None:
        """An attempt ended; ``lost_core_s`` is the work it lost (0 when it succeeded)."""

    def checkpoint_saved(
        self, labels: JobLabels, duration_s: float | None, bytes_written: float
    ) -> None:
        """A checkpoint save; ``duration_s`` is None when the event does not say."""

    def fabric_latency(self, labels: JobLabels, rtt_s: float) -> None:
        """A fabric probe's median round trip (only positive ones are told)."""

    def job_finished(self, labels: JobLabels, job: FinishedJob, makespan_s: float) -> None:
        """The job reached a terminal state; ``makespan_s`` is from acceptance to now."""

    def stage_finished(
        self,
        labels: JobLabels,
        direction: str,
        duration_s: float | None,
        endpoints: Mapping[str, tuple[float, float]],
    ) -> None:
        """A data stage ended well: ``direction`` is ``stage_in`` or ``stage_out``;
        ``endpoints`` maps each storage endpoint to (bytes copied, seconds copying)."""

    def checksum_mismatch(self, labels: JobLabels, check: str) -> None:
        """A job failed on a checksum mismatch: ``check`` is ``stage_in``, ``stage_out``
        (while staging) or ``node`` (the job wrapper's re-check before the command)."""


@dataclass(slots=True)
class _Progress:
    """What the fold keeps about a job until it finishes."""

    labels: JobLabels
    started_at: float | None = None
    failed_at: float | None = None
    failed_class: str = ""
    attempts: list[FinishedAttempt] = field(default_factory=list)
    checkpoints: dict[int, list[float]] = field(default_factory=dict)
    licence_held_at: float | None = None
    licence_waits: list[tuple[float, float]] = field(default_factory=list)


def _failure_class(value: object) -> str:
    return value if isinstance(value, str) and value in _KNOWN_CLASSES else ""


def _number(value: object) -> float:
    """A non-negative number from event data; anything else reads as 0."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return 0.0


def _duration(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _job_outcome(state: JobState, failure_class: object) -> tuple[str, str]:
    """(outcome, failure_class) of a job that reached the terminal ``state``."""
    if state is JobState.SUCCEEDED:
        return _SUCCEEDED, ""
    if state is JobState.CANCELLED:
        return _CANCELLED, _CANCELLED_CLASS
    return _FAILED, _failure_class(failure_class)


class EventFold:
    """Folds events in ``seq`` order. Not thread-safe: callers hold a lock around it."""

    def __init__(self, listener: FoldListener | None = None) -> None:
        self.seq = 0
        """The newest event folded so far."""
        self.events = 0
        """Events folded so far, of every kind."""
        self._listener = listener if listener is not None else FoldListener()
        self._jobs: dict[str, _Progress] = {}

    def follows(self, job_id: str) -> bool:
        """True from the job's acceptance until its terminal transition."""
        return job_id in self._jobs

    def labels(self, job_id: str) -> JobLabels | None:
        """The labels of a job the fold follows."""
        progress = self._jobs.get(job_id)
        return None if progress is None else progress.labels

    def apply(self, event: Event, labels: JobLabels | None = None) -> None:
        """Fold one event.

        ``labels`` are needed for a job the fold does not follow: its ``accepted`` event,
        or an event that arrives after the job finished. Without them (a deleted job) the
        event is only counted.
        """
        self.seq = max(self.seq, event.seq)
        self.events += 1
        kind = event.kind
        if kind not in RELEVANT_KINDS:
            return
        progress = self._jobs.get(event.job_id)
        if progress is None:
            if labels is None:
                return
            progress = _Progress(labels)
            if kind == _ACCEPTED:
                self._jobs[event.job_id] = progress
                self._listener.job_accepted(labels)
        if progress.labels.parent:
            if kind == _TRANSITION and event.to_state and event.to_state.terminal:
                self._jobs.pop(event.job_id, None)
            return
        if kind == _TRANSITION:
            self._transition(event, progress)
        elif kind in _ATTEMPT_END:
            self._attempt_end(event, progress)
        elif kind == _CHECKPOINT_SAVED:
            self._checkpoint_saved(event, progress)
        elif kind == _ACCEPTED:
            self._listener.state_changed(progress.labels, None, _ACCEPTED_STATE)
        else:  # fabric latency
            rtt = _number(event.data.get(v.RTT_S_P50))
            if rtt > 0:
                self._listener.fabric_latency(progress.labels, rtt)

    def _transition(self, event: Event, progress: _Progress) -> None:
        labels, listener = progress.labels, self._listener
        target = event.to_state
        source = _VALUE[event.from_state] if event.from_state else ""
        listener.state_changed(labels, source, _VALUE[target] if target else "")
        self._licence_wait(event, progress)
        stage = _STAGES.get(source)
        if stage is not None:
            self._stage_end(event, labels, stage)
        if event.data.get(v.FAILURE_CLASS) == _CHECKSUM_MISMATCH:
            listener.checksum_mismatch(labels, stage or _NODE_CHECK)
        if target is _RUNNING:
            if progress.started_at is None:
                progress.started_at = event.time
                listener.job_started(labels, max(event.time - labels.created_at, 0.0))
            if progress.failed_at is not None:
                reported = event.data.get(v.TIME_TO_RECOVER_S)
                recover = (
                    _number(reported) if reported is not None else event.time - progress.failed_at
                )
                listener.job_recovered(labels, progress.failed_class, max(recover, 0.0))
                progress.failed_at = None
        elif target is not None and target.terminal:
            self._jobs.pop(event.job_id, None)
            outcome, failure_class = _job_outcome(target, event.data.get(v.FAILURE_CLASS))
            started = progress.started_at
            finished = FinishedJob(
                job_id=event.job_id,
                project=labels.project,
                workload_class=labels.workload_class,
                outcome=outcome,
                failure_class=failure_class,
                finished_at=event.time,
                queue_wait_s=None if started is None else max(started - labels.created_at, 0.0),
                started_at=started,
                attempts=_with_late_checkpoints(progress),
                licence_waits=tuple(progress.licence_waits),
            )
            listener.job_finished(labels, finished, max(event.time - labels.created_at, 0.0))

    def _licence_wait(self, event: Event, progress: _Progress) -> None:
        """A wait in ``held`` for licences starts with a transition there that carries the
        licence numbers, and ends when the job leaves ``held`` (released or failed)."""
        if event.to_state is _HELD:
            if v.LICENCES in event.data:
                progress.licence_held_at = event.time
            return
        held_at = progress.licence_held_at
        if held_at is None or event.from_state is not _HELD:
            return
        progress.licence_held_at = None
        if event.to_state is JobState.CANCELLED:
            return  # someone gave up on it: not a wait the licences ended
        wait_s = max(event.time - held_at, 0.0)
        progress.licence_waits.append((event.time, wait_s))
        self._listener.licence_waited(progress.labels, wait_s)

    def _stage_end(self, event: Event, labels: JobLabels, stage: str) -> None:
        endpoints = event.data.get(v.ENDPOINTS)
        if not isinstance(endpoints, Mapping):
            return  # a stage that failed copies nothing worth measuring
        use = {
            str(name): (_number(one.get("bytes")), _number(one.get("seconds")))
            for name, one in endpoints.items()
            if isinstance(one, Mapping)
        }
        self._listener.stage_finished(labels, stage, _duration(event.data.get(v.DURATION_S)), use)

    def _attempt_end(self, event: Event, progress: _Progress) -> None:
        data, labels = event.data, progress.labels
        succeeded = event.kind == _ATTEMPT_SUCCEEDED
        failure_class = "" if succeeded else _failure_class(data.get(v.FAILURE_CLASS))
        if succeeded:
            outcome = _SUCCEEDED
        elif failure_class == _CANCELLED_CLASS:
            outcome = _CANCELLED
        else:
            outcome = _FAILED
        backend = data.get(v.BACKEND)
        kind = data.get(v.PARTITION_KIND)
        number = event.attempt if event.attempt is not None else len(progress.attempts) + 1
        run_s = _number(data.get(v.RUN_S))
        attempt = FinishedAttempt(
            number=number,
            outcome=outcome,
            failure_class=failure_class,
            finished_at=event.time,
            backend=backend if isinstance(backend, str) and backend else labels.backend,
            partition_kind=kind if isinstance(kind, str) and kind in PARTITION_KINDS else REGULAR,
            run_s=run_s,
            cost=_number(data.get(v.COST)),
            checkpoint_durations_s=tuple(progress.checkpoints.pop(number, ())),
        )
        progress.attempts.append(attempt)
        lost = 0.0
        if not succeeded:
            # The reconciler's own estimate (work since the last checkpoint) when it sends one.
            reported = data.get(v.LOST_CORE_HOURS)
            lost = _number(reported) * 3600 if reported is not None else run_s * labels.cores
            if outcome == _FAILED:
                progress.failed_at = event.time
                progress.failed_class = failure_class
        self._listener.attempt_finished(labels, attempt, lost)

    def _checkpoint_saved(self, event: Event, progress: _Progress) -> None:
        duration = _duration(event.data.get(v.DURATION_S))
        if duration is not None and event.attempt is not None:
            progress.checkpoints.setdefault(event.attempt, []).append(duration)
        written = _number(event.data.get(v.BYTES))
        self._listener.checkpoint_saved(progress.labels, duration, written)


def _with_late_checkpoints(progress: _Progress) -> tuple[FinishedAttempt, ...]:
    """The job's attempts, with the saves copied into the log after their attempt ended.

    The reconciler copies an attempt's ``checkpoint_saved`` events from the job's status
    directory once the attempt has ended, so they follow its ``attempt_*`` event.
    """
    attempts = progress.attempts
    if not progress.checkpoints:
        return tuple(attempts)
    last = {attempt.number: index for index, attempt in enumerate(attempts)}
    for number, durations in progress.checkpoints.items():
        index = last.get(number)
        if index is not None:
            attempt = attempts[index]
            joined = (*attempt.checkpoint_durations_s, *durations)
            attempts[index] = replace(attempt, checkpoint_durations_s=joined)
    return tuple(attempts)


class EventReader:
    """Feeds a fold the events written since it last read, looking up labels in few queries.

    A long backlog (the first read after a restart) loads every job's labels once; a
    chunk naming many new jobs loads the active ones at once; the rest are fetched one
    by one.
    """

    def __init__(
        self,
        store: Store,
        fold: EventFold,
        *,
        chunk_size: int = 5000,
    ) -> None:
        self._store = store
        self._fold = fold
        self._chunk = chunk_size
        self._preloaded: dict[str, JobLabels] | None = None

    def read(self) -> int:
        """Fold every event written since the last call; returns how many were read."""
        fold, read = self._fold, 0
        try:
            while True:
                events = self._store.all_events(after_seq=fold.seq, limit=self._chunk)
                read += len(events)
                self._fold_chunk(events, catching_up=read >= self._chunk)
                if len(events) < self._chunk:
                    return read
        finally:
            self._preloaded = None

    def _fold_chunk(self, events: list[Event], *, catching_up: bool) -> None:
        found = self._labels(events, catching_up=catching_up)
        apply, follows, known = self._fold.apply, self._fold.follows, found.get  # hot loop
        missing: set[JobId] = set()
        for event in events:
            job_id = event.job_id
            labels = known(job_id)
            if (
                labels is None
                and event.kind in RELEVANT_KINDS
                and job_id not in missing
                and not follows(job_id)
            ):
                # It finished earlier in this chunk: its later events still count.
                labels = self._one(job_id)
                if labels is None:
                    missing.add(job_id)
                else:
                    found[job_id] = labels
            apply(event, labels)

    def _labels(self, events: list[Event], *, catching_up: bool) -> dict[str, JobLabels]:
        follows = self._fold.follows
        wanted = {e.job_id for e in events if e.kind in RELEVANT_KINDS and not follows(e.job_id)}
        if not wanted:
            return {}
        if catching_up and self._preloaded is None and len(wanted) > _BULK:
            jobs = self._store.list_jobs()
            self._preloaded = {job.job_id: JobLabels.of(job) for job in jobs}
        found: dict[str, JobLabels] = {}
        if self._preloaded is not None:
            preloaded = self._preloaded
            found = {i: preloaded[i] for i in wanted if i in preloaded}
        elif len(wanted) > _BULK:
            active = self._store.active_jobs()
            found = {j.job_id: JobLabels.of(j) for j in active if j.job_id in wanted}
        for job_id in wanted - found.keys():
            labels = self._one(job_id)
            if labels is not None:
                found[job_id] = labels
        return found

    def _one(self, job_id: JobId) -> JobLabels | None:
        found = None if self._preloaded is None else self._preloaded.get(job_id)
        if found is not None:
            return found
        try:
            return JobLabels.of(self._store.get_job(job_id))
        except NotFoundError:
            return None
