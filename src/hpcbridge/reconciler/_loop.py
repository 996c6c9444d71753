"""The level-triggered loop: load active jobs, observe each backend once, decide, apply.

A cycle writes in at most three transactions: decisions (and new prepared attempts), then
backend submissions outside any transaction, then what the submissions returned. An
attempt row always exists before the scheduler hears of it, so a crash adopts, never
duplicates.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from hpcbridge.backends import (
    AttemptRef,
    Backend,
    NodeControl,
    Observation,
    Phase,
)
from hpcbridge.containers import environment_change
from hpcbridge.cost import CardBook, price
from hpcbridge.errors import (
    BackendError,
    ConflictError,
    FencedError,
    HpcbridgeError,
    SpecError,
)
from hpcbridge.policy import (
    Drain,
    LicenceMonitor,
    NodeFailure,
    NodeState,
    QuarantinePolicy,
    Refusal,
    decide_quarantine,
)
from hpcbridge.reconciler._actions import (
    Action,
    CancelTasks,
    Continue,
    Kill,
    Note,
    RecordAttempt,
    Submit,
    Transition,
)
from hpcbridge.reconciler._decide import JobView, Policy, decide
from hpcbridge.reconciler._licences import LicenceBook
from hpcbridge.reconciler._recovery import lost_work, time_to_recover
from hpcbridge.reconciler._staged_cost import staged_usage
from hpcbridge.reconciler._stager import Stager, unverified_inputs
from hpcbridge.reconciler._submit import Submitter, record_submitted, ref_of
from hpcbridge.spec import JobSpec, load_spec_document, shared_part
from hpcbridge.staging import DEFAULT_MAX_BYTES as DEFAULT_CACHE_MAX_BYTES
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import Attempt, Job, JobFilter, JobId, Store, new_token
from hpcbridge.telemetry import (
    ReconcilerStats,
    StatusEvent,
    annotate,
    annotate_current,
    ingestable_events,
    job_log_context,
    span,
)

log = structlog.get_logger("hpcbridge.reconciler")


@dataclass(slots=True)
class CycleReport:
    active_jobs: int = 0
    changes: int = 0
    submitted: int = 0
    errors: list[str] = field(default_factory=list)
    unavailable_backends: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(
        self,
        store: Store,
        backends: Mapping[str, Backend],
        *,
        policy: Policy,
        checkpoints_dir: Path,
        clock: Callable[[], float] = time.time,
        quarantine: QuarantinePolicy | None = None,
        stats: ReconcilerStats | None = None,
        node_refresh_s: float = 60.0,
        node_backends: Collection[str] | None = None,
        may_act: Callable[[], bool] = lambda: True,
        wake: Callable[[], None] = lambda: None,
        rate_cards: CardBook | None = None,
        licences: LicenceMonitor | None = None,
        cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
    ) -> None:
        """``node_backends``: backends whose nodes are counted from the first cycle (None:
        all of ``backends``); any other is counted once it has had a job to poll, so that a
        laptop running local jobs never asks an installed Slurm about its nodes.
        ``may_act``: whether this process still leads with time to spare for a scheduler
        call (checked before each submission and kill). ``rate_cards``: the cards each
        finished attempt is charged under. ``licences``: the managed licence pools."""
        self._licences = LicenceBook(licences)
        self._cards = rate_cards or CardBook(())
        self.stats = stats or ReconcilerStats()
        self._node_refresh_s = node_refresh_s
        self._node_backends = None if node_backends is None else set(node_backends)
        self._nodes_seen_at: dict[str, float] = {}
        self._store = store
        self._quarantine = quarantine or QuarantinePolicy()
        self._node_failures: set[str] = set()  # backends with a new node failure this cycle
        self._backends = backends
        self._policy = policy
        self._checkpoints = checkpoints_dir
        self._clock = clock
        self._specs: dict[str, JobSpec] = {}
        self._task_templates: dict[str, tuple[dict[str, Any], JobSpec]] = {}
        self._unknown_since: dict[str, float] = {}
        self._kills_sent: set[str] = set()  # tokens whose recorded kill this process sent
        self._may_act = may_act
        self._submitter = Submitter(
            store,
            backends,
            self.spec_of,
            checkpoints_dir,
            may_act,
            project_quota=policy.running_quota_of,
            managed_licences=licences.pools if licences else (),
        )
        # data stages, off the cycle's thread
        self._stager = Stager(checkpoints_dir, wake, cache_max_bytes=cache_max_bytes)

    def cycle(self) -> CycleReport:
        started = time.monotonic()
        with span("hpcbridge.reconcile_cycle") as current:
            report = self._cycle()
            annotate(
                current,
                active_jobs=report.active_jobs,
                changes=report.changes,
                submitted=report.submitted,
                errors=len(report.errors),
            )
        self.stats.record_cycle(
            time.monotonic() - started,
            now=self._clock(),
            errors=len(report.errors),
            unavailable_backends=report.unavailable_backends,
        )
        return report

    def _cycle(self) -> CycleReport:
        now = self._clock()
        report = CycleReport()
        self._submitter.new_cycle()
        jobs: dict[str, Job] = {job.job_id: job for job in self._store.active_jobs()}
        report.active_jobs = len(jobs)
        annotate_current(job_ids=jobs)
        latest: dict[str, Attempt] = {a.job_id: a for a in self._store.active_attempts()}
        observations = self._observe(latest.values(), now, report)
        submits: list[tuple[Job, Attempt]] = []
        kills = self._unsent_kills(latest.values())
        # Decide, and read what the decisions need from files, before the transaction.
        decided: list[tuple[JobView, list[Action]] | tuple[Job, Exception]] = []
        self._licences.begin(jobs.values(), self.spec_of, now)  # health checks run here
        # In priority order: the first jobs released take the free licences.
        for job in sorted(jobs.values(), key=lambda j: (-j.priority, j.created_at)):
            try:
                view = self._view(job, latest.get(job.job_id), observations)
                actions = decide(view, self._policy, now)  # pure: nothing to log
                self._licences.decided(view.licences, actions)
                if actions:  # most jobs, most cycles: waiting, with nothing new
                    decided.append((view, self._with_files_read(view, actions)))
            except Exception as exc:
                decided.append((job, exc))
        with self._store.batch():
            for view_or_job, actions_or_error in decided:
                if isinstance(actions_or_error, Exception):
                    assert isinstance(view_or_job, Job)
                    self._failed_decision(view_or_job, actions_or_error, now, report)
                    continue
                assert isinstance(view_or_job, JobView)
                view, job = view_or_job, view_or_job.job
                planned = len(submits), len(kills)
                try:
                    # One job's actions commit or roll back together.
                    with _log_context(job, view.attempt), self._store.savepoint():
                        jobs[job.job_id] = self._apply(
                            view, actions_or_error, now, report, submits, kills
                        )
                except Exception as exc:  # one job's error never stops the loop
                    del submits[planned[0] :], kills[planned[1] :]  # undone with its writes
                    self._failed_decision(job, exc, now, report)
        # Scheduler calls only once the decisions are committed: never inside a transaction.
        self._send_kills(kills, now, report)
        if self._node_failures:
            self._fence_nodes(now, report)
        self._count_nodes(now)
        if submits:
            self._submitter.submit_all(submits, jobs, latest, now, report)
        self._forget_finished(jobs)
        return report

    def _failed_decision(self, job: Job, error: Exception, now: float, report: CycleReport) -> None:
        if isinstance(error, FencedError):
            raise error  # another process leads now: this cycle ends here
        if isinstance(error, ConflictError):
            return  # someone changed it meanwhile; the next cycle decides again
        if isinstance(error, SpecError):
            try:
                with self._store.savepoint():
                    self._fail_unreadable(job, error, now)
            except HpcbridgeError as again:
                report.errors.append(f"{job.job_id}: {again}")
            return
        report.errors.append(f"{job.job_id}: {error}")
        if not isinstance(error, HpcbridgeError):
            log.error("decide_failed", job_id=job.job_id, exc_info=error)

    def _unsent_kills(self, attempts: Iterable[Attempt]) -> list[Attempt]:
        """Live attempts whose kill is on record but not sent by this process (it crashed
        between recording a kill and sending it, or the call failed)."""
        live = [a for a in attempts if a.state in (AttemptState.SUBMITTED, AttemptState.RUNNING)]
        self._kills_sent &= {a.token for a in live}
        return [a for a in live if a.kill_order is not None and a.token not in self._kills_sent]

    def _send_kills(self, kills: Sequence[Attempt], now: float, report: CycleReport) -> None:
        for attempt in kills:
            backend = self._backends.get(attempt.backend)
            order = attempt.kill_order
            if backend is None or order is None or not self._may_act():
                continue
            failure_class = order.failure_class
            try:
                traced = span(
                    "hpcbridge.backend.kill", backend=backend.name, job_ids=[attempt.job_id]
                )
                with _attempt_log_context(attempt), traced:
                    backend.kill(ref_of(attempt), failure_class, now)  # idempotent
            except Exception as exc:  # sent again next cycle
                report.errors.append(f"{attempt.job_id}: kill failed: {exc}")
                if not isinstance(exc, HpcbridgeError):
                    log.error("kill_failed", job_id=attempt.job_id, exc_info=exc)
                continue
            self._kills_sent.add(attempt.token)

    def _count_nodes(self, now: float) -> None:
        """Nodes by state for the metrics, from backends that manage nodes, now and then."""
        names = list(self._backends) if self._node_backends is None else self._node_backends
        for name in sorted(names):
            # Before loading the backend: one that cannot load is tried again at the next
            # refresh, not every cycle.
            if now - self._nodes_seen_at.get(name, float("-inf")) < self._node_refresh_s:
                continue
            self._nodes_seen_at[name] = now
            backend = self._backends.get(name)
            if not isinstance(backend, NodeControl):
                continue
            try:
                nodes = backend.nodes()
            except Exception as exc:  # metrics must never stop the loop
                log.warning("node_count_failed", backend=name, error=str(exc))
                continue
            counts = Counter("drained" if n.drained else n.state.lower() for n in nodes)
            self.stats.record_nodes(name, counts)

    def _fence_nodes(self, now: float, report: CycleReport) -> None:
        """Drain nodes that keep failing jobs (backends that can), within the guard rail."""
        names, self._node_failures = self._node_failures, set()
        recent = self._store.failed_attempts_since(now - self._quarantine.window_s)
        for name in sorted(names):
            backend = self._backends.get(name)
            if not isinstance(backend, NodeControl):
                continue
            failures = [
                NodeFailure(node, a.ended_at or now, a.failure_class, a.job_id)
                for a in recent
                if a.backend == name and a.failure_class is not None
                for node in a.nodes
            ]
            try:
                nodes = [NodeState(n.name, n.partitions, n.drained) for n in backend.nodes()]
                for decision in decide_quarantine(failures, nodes, self._quarantine, now):
                    self._apply_fencing(backend, decision, failures, now, report)
            except HpcbridgeError as exc:
                report.errors.append(f"{name}: node quarantine failed: {exc}")

    def _apply_fencing(
        self,
        backend: NodeControl,
        decision: Drain | Refusal,
        failures: list[NodeFailure],
        now: float,
        report: CycleReport,
    ) -> None:
        if isinstance(decision, Drain):
            backend.drain(decision.node, decision.reason)
            kind = "node_drained"
            log.warning("node_drained", node=decision.node, reason=decision.reason)
        else:
            kind = "node_quarantine_refused"
            report.errors.append(decision.reason)
            log.error("node_quarantine_refused", node=decision.node, reason=decision.reason)
        with self._store.batch():
            for job_id in sorted({f.job_id for f in failures if f.node == decision.node}):
                self._store.add_event(
                    JobId(job_id),
                    kind,
                    now=now,
                    reason=decision.reason,
                    data={"node": decision.node},
                )

    def _fail_unreadable(self, job: Job, error: SpecError, now: float) -> None:
        """A stored spec this version cannot read: fail the job loudly, once."""
        self._store.transition(
            job.job_id,
            JobState.FAILED,
            expected_version=job.version,
            now=now,
            reason=f"stored spec is invalid: {error.message}",
            failure_class=FailureClass.SPEC_ERROR,
        )

    # -- observe ---------------------------------------------------------------------------

    def _observe(
        self, attempts: Sequence[Attempt] | Any, now: float, report: CycleReport
    ) -> dict[str, Observation]:
        by_backend: dict[str, list[AttemptRef]] = {}
        for attempt in attempts:
            if attempt.state is not AttemptState.PREPARED and attempt.native_id is not None:
                by_backend.setdefault(attempt.backend, []).append(ref_of(attempt))
        observations: dict[str, Observation] = {}
        for name, refs in by_backend.items():
            backend = self._backends.get(name)
            if backend is None:
                report.unavailable_backends.append(name)
                continue
            if self._node_backends is not None:
                self._node_backends.add(name)
            try:
                traced = span(
                    "hpcbridge.backend.poll", backend=name, job_ids=(r.job_id for r in refs)
                )
                with self.stats.polling(name), traced:
                    observations.update(backend.poll(refs, now))
            except BackendError as exc:
                report.unavailable_backends.append(name)
                log.warning("backend_unavailable", backend=name, error=str(exc))
            except Exception:  # a backend bug must not stop the loop: no news this cycle
                report.unavailable_backends.append(name)
                report.errors.append(f"{name}: poll failed")
                log.exception("backend_poll_failed", backend=name)
        for token, seen in observations.items():
            if seen.phase is Phase.UNKNOWN:
                self._unknown_since.setdefault(token, now)
            else:
                self._unknown_since.pop(token, None)
        return observations

    def _view(
        self, job: Job, attempt: Attempt | None, observations: Mapping[str, Observation]
    ) -> JobView:
        spec = self.spec_of(job)
        seen = observations.get(attempt.token) if attempt else None
        children = self._store.count_children(job.job_id) if job.is_array_parent else None
        staging = job.state in (JobState.STAGING_IN, JobState.STAGING_OUT)
        staged = self._stager.outcome(job, spec) if staging else None
        if seen is not None and attempt is not None and seen.phase is Phase.FAILED:
            seen = unverified_inputs(seen, attempt)
            changed = environment_change(attempt.status_dir, seen.exit_code)
            if changed:  # its image changed since submission: the command never ran
                seen = dataclasses.replace(
                    seen, failure_class=FailureClass.SPEC_ERROR, reason=changed
                )
        needs_history = job.state in (JobState.LOST, JobState.STAGING_OUT) or (
            seen is not None and seen.phase in (Phase.FAILED, Phase.UNKNOWN)
        )
        history: tuple[FailureClass | None, ...] = ()
        if needs_history:
            history = tuple(
                a.failure_class for a in self._store.attempts(job.job_id) if a.state.finished
            )
        return JobView(
            job=job,
            spec=spec,
            attempt=attempt,
            history=history,
            observation=seen,
            unknown_since=self._unknown_since.get(attempt.token) if attempt else None,
            children=children,
            staged=staged,
            licences=self._licences.needs(job, spec),
        )

    def staging_progress(self, job_id: str) -> tuple[int, int] | None:
        """``(bytes done, bytes in all)`` of the data stage this process runs for a job."""
        return self._stager.progress(job_id)

    def spec_of(self, job: Job) -> JobSpec:
        spec = self._specs.get(job.job_id)
        if spec is None:
            spec = self._task_spec(job) if job.parent_id else None
            if spec is None:
                spec = load_spec_document(job.spec, source=f"job {job.job_id}")
                if job.parent_id:
                    self._task_templates[job.parent_id] = (shared_part(job.spec), spec)
            self._specs[job.job_id] = spec
        return spec

    def _task_spec(self, job: Job) -> JobSpec | None:
        """Tasks of one array differ only in argv, environment and script: build them from
        a validated sibling instead of validating 10,000 documents one by one."""
        assert job.parent_id is not None
        template = self._task_templates.get(job.parent_id)
        if template is None or shared_part(job.spec) != template[0]:
            return None
        document = job.spec
        command = document.get("command")
        return template[1].model_copy(
            update={
                "command": tuple(command) if isinstance(command, list) else None,
                "env": dict(document.get("env") or {}),
                "script": document.get("script"),
            }
        )

    def _forget_finished(self, active: Mapping[str, Job]) -> None:
        """Specs are cached per active job only: a long-running server must not grow."""
        self._stager.forget(active)
        if len(self._specs) > len(active):
            self._specs = {k: v for k, v in self._specs.items() if k in active}
        if self._task_templates:
            self._task_templates = {k: v for k, v in self._task_templates.items() if k in active}

    # -- apply decisions (inside the cycle's first transaction) ----------------------------

    def _apply(
        self,
        view: JobView,
        actions: Sequence[Action],
        now: float,
        report: CycleReport,
        submits: list[tuple[Job, Attempt]],
        kills: list[Attempt],
    ) -> Job:
        job, attempt = view.job, view.attempt
        for action in actions:
            if isinstance(action, Transition):
                data = dict(action.data)
                if action.target is JobState.RUNNING:
                    data.update(time_to_recover(self._store, job, now))
                job = self._store.transition(
                    job.job_id,
                    action.target,
                    expected_version=job.version,
                    now=now,
                    reason=action.reason,
                    attempt=attempt.number if attempt else None,
                    data=data,
                    **action.fields,
                )
                report.changes += 1
            elif isinstance(action, RecordAttempt) and attempt is not None:
                fields = dict(action.fields)
                if "details" in fields:  # add to what submission recorded, never replace it
                    fields["details"] = {**attempt.details, **fields["details"]}
                events = action.job_events if isinstance(action, _FilesRead) else ()
                attempt = self._record_attempt(attempt, fields, events, now)
                report.changes += 1
            elif isinstance(action, Note):
                job = self._store.update_job(
                    job.job_id, expected_version=job.version, now=now, reason=action.reason
                )
            elif isinstance(action, Kill) and attempt is not None:
                attempt = self._kill(attempt, action, now)
                kills.append(attempt)
            elif isinstance(action, CancelTasks):
                self._cancel_tasks(job, now)
            elif isinstance(action, Submit):
                job, attempt = self._prepare(job, attempt, now)
                submits.append((job, attempt))
            elif isinstance(action, Continue) and attempt is not None:
                job, attempt = self._continue(job, attempt, now)
        return job

    def _with_files_read(self, view: JobView, actions: list[Action]) -> list[Action]:
        """Each RecordAttempt with what it needs from files (checkpoints, the job's own
        events), read now: never inside the transaction that records it."""
        return [
            _FilesRead(self._costed(view, dict(a.fields)), self._job_events(view, a.fields))
            if isinstance(a, RecordAttempt)
            else a
            for a in actions
        ]

    def _costed(self, view: JobView, fields: dict[str, Any]) -> dict[str, Any]:
        """A finished attempt's record gains its charge under the rate card in force when
        it started; a failed one also the work it lost since its last checkpoint."""
        attempt = view.attempt
        state = fields.get("state")
        if attempt is None or not isinstance(state, AttemptState) or not state.finished:
            return fields
        finished = dataclasses.replace(
            attempt,
            state=state,
            started_at=fields.get("started_at") or attempt.started_at,
            ended_at=fields.get("ended_at") or attempt.ended_at,
            details={**attempt.details, **fields.get("details", {})},
        )
        details = dict(finished.details)
        if state is AttemptState.FAILED:
            details.update(lost_work(finished, view.spec, self._checkpoint_dir(view)))
        if view.spec.stage_in:  # storage of its staged inputs, and egress after a burst
            details.update(staged_usage(view.spec, self._store.events(view.job.job_id)))
        charged = price(view.job, dataclasses.replace(finished, details=details), self._cards)
        details["cost"] = charged.as_details()
        return {**fields, "details": details}

    def _checkpoint_dir(self, view: JobView) -> Path | None:
        policy = view.spec.checkpoint
        if policy is None:
            return None
        return Path(policy.dir) if policy.dir else self._checkpoints / view.job.job_id

    def _record_attempt(
        self,
        attempt: Attempt,
        fields: dict[str, Any],
        job_events: Sequence[StatusEvent],
        now: float,
    ) -> Attempt:
        updated = self._store.update_attempt(attempt.job_id, attempt.number, **fields)
        if (
            updated.state is AttemptState.FAILED
            and updated.failure_class in self._quarantine.classes
            and updated.nodes
        ):
            self._node_failures.add(updated.backend)
        if updated.state is not attempt.state:
            self._store.add_event(
                attempt.job_id,
                f"attempt_{updated.state.value}",
                now=now,
                attempt=attempt.number,
                reason=updated.reason,
                data=_attempt_summary(updated),
            )
        if updated.state.finished:
            self._unknown_since.pop(attempt.token, None)
            for event in job_events:  # what the job itself reported (checkpoint saves)
                self._store.add_event(
                    attempt.job_id,
                    event.kind,
                    now=event.time,
                    attempt=attempt.number,
                    data=event.data,
                )
        return updated

    @staticmethod
    def _job_events(view: JobView, fields: Mapping[str, Any]) -> list[StatusEvent]:
        """The job-side events of an attempt that this record finishes."""
        attempt = view.attempt
        state = fields.get("state")
        if attempt is None or not isinstance(state, AttemptState) or not state.finished:
            return []
        status_dir = attempt.status_dir
        if status_dir is None:
            return []
        since = attempt.submitted_at or attempt.created_at  # a requeued job shares the dir
        return [e for e in ingestable_events(Path(status_dir)) if e.time >= since]

    def _kill(self, attempt: Attempt, action: Kill, now: float) -> Attempt:
        """Record the order; the cycle sends it once the transaction has committed."""
        details = {
            **attempt.details,
            "kill": {"failure_class": action.failure_class.value, "at": now},
        }
        self._store.add_event(
            attempt.job_id,
            "kill",
            now=now,
            attempt=attempt.number,
            reason=action.reason,
            data={"failure_class": action.failure_class.value},
        )
        return self._store.update_attempt(attempt.job_id, attempt.number, details=details)

    def _cancel_tasks(self, parent: Job, now: float) -> None:
        for task in self._store.list_jobs(JobFilter(parent_id=parent.job_id)):
            if not task.state.terminal and not task.cancel_requested:
                self._store.update_job(
                    task.job_id, expected_version=task.version, now=now, cancel_requested=True
                )

    def _continue(self, job: Job, ended: Attempt, now: float) -> tuple[Job, Attempt]:
        """A new attempt that follows the native job the scheduler requeued."""
        created = self._store.create_attempt(
            job.job_id,
            backend=ended.backend,
            token=new_token(),
            now=now,
            details={k: v for k, v in ended.details.items() if k not in _PER_RUN_DETAILS},
        )
        attempt = record_submitted(
            self._store,
            created,
            str(ended.native_id),
            now=now,
            state=AttemptState.SUBMITTED,
            reason="requeued by the scheduler under the same job",
            event_data={"requeued": True},
        )
        job = self._store.update_job(
            job.job_id, expected_version=job.version, now=now, attempt_count=attempt.number
        )
        return job, attempt

    def _prepare(self, job: Job, attempt: Attempt | None, now: float) -> tuple[Job, Attempt]:
        """Make sure a prepared attempt row exists before any scheduler call."""
        if attempt is not None and attempt.state is AttemptState.PREPARED:
            return job, attempt
        created = self._store.create_attempt(
            job.job_id,
            backend=job.backend,
            token=self._submitter.token_for(job),
            now=now,
            details={},
        )
        self._submitter.created(created)
        job = self._store.update_job(
            job.job_id, expected_version=job.version, now=now, attempt_count=created.number
        )
        return job, created


@dataclass(frozen=True, slots=True)
class _FilesRead(RecordAttempt):
    """A RecordAttempt whose file reads are done: its fields costed, the job's events read."""

    job_events: Sequence[StatusEvent] = ()


_PER_RUN_DETAILS = frozenset(
    {
        "slurm",
        "max_rss_mb",
        "kill",
        "lost_s",
        "lost_core_hours",
        "lost_gpu_hours",
        "last_checkpoint_at",
        "cost",
    }
)
"""Attempt details that describe one run; a requeued attempt starts without them."""


def _log_context(job: Job, attempt: Attempt | None) -> AbstractContextManager[None]:
    if attempt is None:
        return job_log_context(job_id=job.job_id, backend=job.backend)
    return _attempt_log_context(attempt)


def _attempt_log_context(attempt: Attempt) -> AbstractContextManager[None]:
    return job_log_context(
        job_id=attempt.job_id,
        attempt=attempt.number,
        backend=attempt.backend,
        native_id=attempt.native_id,
    )


def _attempt_summary(attempt: Attempt) -> dict[str, Any]:
    summary: dict[str, Any] = {"native_id": attempt.native_id, "backend": attempt.backend}
    if attempt.nodes:
        summary["nodes"] = list(attempt.nodes)
    if attempt.exit_code is not None:
        summary["exit_code"] = attempt.exit_code
    if attempt.failure_class is not None:
        summary["failure_class"] = attempt.failure_class.value
    if attempt.started_at is not None and attempt.ended_at is not None:
        summary["run_s"] = round(attempt.ended_at - attempt.started_at, 3)
    for key in ("partition_kind", "lost_core_hours", "lost_gpu_hours", "max_rss_mb"):
        if attempt.details.get(key) is not None:
            summary[key] = attempt.details[key]
    cost = attempt.details.get("cost")
    if isinstance(cost, dict) and cost.get("card"):
        summary["cost"] = cost["amount"]
    return summary
