"""The cycle's submissions: outside any transaction, then one transaction to record them.

An attempt row (with its token) exists before any scheduler call, so a crash between the
call and the record is healed by ``find``: the next cycle adopts, never duplicates. Tasks
of one array go to a backend with native arrays (Slurm) as one submission.
"""

from __future__ import annotations

import contextvars
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from hpcbridge.backends import (
    ArraySubmit,
    AttemptRef,
    Backend,
    Deferred,
    LaunchRequest,
    Submitted,
    array_token,
    split_array_token,
)
from hpcbridge.errors import (
    ArrayShapeError,
    BackendError,
    ConflictError,
    FencedError,
    HpcbridgeError,
    UncertainSubmissionError,
)
from hpcbridge.policy import without_managed
from hpcbridge.reconciler._environment import attempt_environment
from hpcbridge.reconciler._recovery import time_to_recover
from hpcbridge.spec import JobSpec
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import Attempt, Job, Store, new_token
from hpcbridge.telemetry import span

log = structlog.get_logger("hpcbridge.reconciler")

Outcome = Submitted | Deferred | BackendError
Pair = tuple[Job, Attempt]


class Report(Protocol):
    submitted: int
    errors: list[str]


@dataclass(frozen=True, slots=True)
class _Result:
    job: Job
    attempt: Attempt
    outcome: Outcome


def _parallelism(backend: Backend) -> int:
    """How many submissions a backend takes at once (``parallel_submissions``, default 1)."""
    value = getattr(backend, "parallel_submissions", 1)
    return value if isinstance(value, int) and value > 0 else 1


def ref_of(attempt: Attempt) -> AttemptRef:
    return AttemptRef(
        job_id=attempt.job_id,
        attempt=attempt.number,
        token=attempt.token,
        native_id=attempt.native_id,
        details=attempt.details,
    )


def record_submitted(
    store: Store,
    attempt: Attempt,
    native_id: str,
    *,
    now: float,
    reason: str | None = None,
    event_data: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Attempt:
    """The scheduler holds the attempt as ``native_id``: record it and say so."""
    updated = store.update_attempt(
        attempt.job_id, attempt.number, native_id=native_id, submitted_at=now, **fields
    )
    store.add_event(
        attempt.job_id,
        "attempt_submitted",
        now=now,
        attempt=attempt.number,
        reason=reason,
        data={"native_id": native_id, "backend": attempt.backend, **(event_data or {})},
    )
    return updated


class Submitter:
    def __init__(
        self,
        store: Store,
        backends: Mapping[str, Backend],
        spec_of: Callable[[Job], JobSpec],
        checkpoints: Path,
        may_act: Callable[[], bool] = lambda: True,
        *,
        project_quota: Callable[[str], int | None] = lambda _project: None,
        managed_licences: Collection[str] = (),
    ) -> None:
        self._store = store
        self._managed_licences = frozenset(managed_licences)
        self._project_quota = project_quota
        self._backends = backends
        self._spec_of = spec_of
        self._checkpoints = checkpoints
        self._may_act = may_act
        # Tokens no submission call has carried since they were created or looked for:
        # only these may be submitted without first asking the scheduler for them.
        self._unsent: set[str] = set()
        self._array_keys: dict[str, str] = {}

    def new_cycle(self) -> None:
        self._array_keys.clear()

    def token_for(self, job: Job) -> str:
        """A fresh idempotency token; array tasks prepared in one cycle share a key so
        that a backend with native arrays submits them together."""
        if job.parent_id is None or job.task_index is None:
            return new_token()
        if not isinstance(self._backends.get(job.backend), ArraySubmit):
            return new_token()
        key = self._array_keys.setdefault(job.parent_id, new_token())
        return array_token(key, job.task_index)

    def created(self, attempt: Attempt) -> None:
        """A just-created attempt cannot be at the scheduler yet: no need to look."""
        self._unsent.add(attempt.token)

    # -- launch ----------------------------------------------------------------------------

    def submit_all(
        self,
        submits: list[Pair],
        jobs: Mapping[str, Job],
        latest: Mapping[str, Attempt],
        now: float,
        report: Report,
    ) -> None:
        # Tasks the scheduler holds (queued or running there) count against an array's throttle.
        held_per_parent: Counter[str] = Counter(
            str(jobs[a.job_id].parent_id)
            for a in latest.values()
            if a.state in (AttemptState.SUBMITTED, AttemptState.RUNNING)
            and a.job_id in jobs
            and jobs[a.job_id].parent_id
        )
        # Jobs each project has at the scheduler, against its running quota.
        held_per_project: Counter[str] = Counter(
            jobs[a.job_id].project
            for a in latest.values()
            if a.state in (AttemptState.SUBMITTED, AttemptState.RUNNING) and a.job_id in jobs
        )
        full: set[str] = set()
        results: list[_Result] = []
        arrays: dict[str, list[Pair]] = {}
        ordered = sorted(
            submits, key=lambda p: (-p[0].priority, p[0].created_at, p[0].task_index or 0)
        )
        concurrent: list[Pair] = []
        for job, attempt in ordered:
            backend = self._backends.get(job.backend)
            if backend is None or job.backend in full:
                continue
            split = split_array_token(attempt.token)
            if split is not None and isinstance(backend, ArraySubmit):
                arrays.setdefault(split[0], []).append((job, attempt))  # the scheduler throttles
                continue
            if self._throttled(job, held_per_parent):
                continue
            if self._over_quota(job, held_per_project, now):
                continue
            held_per_project[job.project] += 1
            if _parallelism(backend) > 1:
                concurrent.append((job, attempt))  # a batch scheduler queues; it never defers
                if job.parent_id:
                    held_per_parent[job.parent_id] += 1
                continue
            outcome = self._submit_one(backend, job, attempt)
            if isinstance(outcome, Deferred):
                full.add(job.backend)  # strict priority order: nobody jumps the queue
            elif isinstance(outcome, Submitted) and job.parent_id:
                held_per_parent[job.parent_id] += 1
            results.append(_Result(job, attempt, outcome))
        results.extend(self._submit_concurrently(concurrent))
        for members in arrays.values():
            results.extend(self._submit_array(members))
        self._record_all(results, now, report)

    def _submit_concurrently(self, pairs: Sequence[Pair]) -> list[_Result]:
        """Single jobs for backends whose submissions wait on a remote daemon (``sbatch``):
        a few at a time, which such a daemon handles as it handles many users."""
        if not pairs:
            return []
        workers = max(_parallelism(self._backends[job.backend]) for job, _ in pairs)
        # Each call runs in a copy of this thread's context: its span is the cycle's child.
        context = contextvars.copy_context()
        with ThreadPoolExecutor(workers, thread_name_prefix="hpcbridge-submit") as pool:
            outcomes = pool.map(
                lambda pair: context.copy().run(
                    self._submit_one, self._backends[pair[0].backend], *pair
                ),
                pairs,
            )
            return [
                _Result(job, attempt, o) for (job, attempt), o in zip(pairs, outcomes, strict=True)
            ]

    def _throttled(self, job: Job, held_per_parent: Counter[str]) -> bool:
        if job.parent_id is None:
            return False
        array = self._spec_of(job).array
        limit = array.throttle if array else None
        return limit is not None and held_per_parent[job.parent_id] >= limit

    def _over_quota(self, job: Job, held_per_project: Counter[str], now: float) -> bool:
        """At its project's running quota the job waits queued, and its reason says why."""
        quota = self._project_quota(job.project)
        if quota is None or held_per_project[job.project] < quota:
            return False
        self._set_reason(
            job,
            f"waiting for the project quota: {job.project} has {quota} of {quota} jobs "
            "running or queued at the scheduler",
            now,
        )
        return True

    def _request(self, job: Job, attempt: Attempt) -> LaunchRequest:
        spec = without_managed(self._spec_of(job), self._managed_licences)
        env = attempt_environment(job, spec, attempt.number, self._checkpoints)
        return LaunchRequest(job.job_id, attempt.number, attempt.token, spec, env)

    def _submit_one(self, backend: Backend, job: Job, attempt: Attempt) -> Outcome:
        try:
            if attempt.token not in self._unsent:
                with span("hpcbridge.backend.find", backend=backend.name, job_ids=[job.job_id]):
                    found = backend.find(ref_of(attempt))  # crashed between prepare and record?
                if found is not None:
                    return found
            request = self._request(job, attempt)
            if not self._may_act():
                return _NOT_LEADING
            self._unsent.discard(attempt.token)  # from here on it may reach the scheduler
            with span(
                "hpcbridge.backend.submit",
                backend=backend.name,
                job_ids=[job.job_id],
                attempt=attempt.number,
            ):
                outcome = backend.submit(request)
        except BackendError as exc:
            return exc
        except Exception as exc:  # a backend bug: as uncertain as a timeout
            return _unexpected(backend, exc)
        if isinstance(outcome, Deferred):
            self._unsent.add(attempt.token)  # a definite no: nothing was started
        return outcome

    def _submit_array(self, members: Sequence[Pair]) -> list[_Result]:
        """One native array submission for tasks prepared together (after adopting any
        that an earlier, unrecorded submission already launched)."""
        backend = self._backends[members[0][0].backend]
        assert isinstance(backend, ArraySubmit)

        def failed(pairs: Sequence[Pair], error: BackendError) -> list[_Result]:
            return [_Result(job, attempt, error) for job, attempt in pairs]

        try:
            adopted = self._adopt(backend, members)
        except BackendError as exc:
            return failed(members, exc)
        except Exception as exc:
            return failed(members, _unexpected(backend, exc))
        results = [
            _Result(job, attempt, adopted[attempt.token])
            for job, attempt in members
            if attempt.token in adopted
        ]
        pending = [(job, attempt) for job, attempt in members if attempt.token not in adopted]
        if not pending:
            return results
        tokens = [attempt.token for _, attempt in pending]
        try:
            array = self._spec_of(pending[0][0]).array
            requests = [self._request(job, attempt) for job, attempt in pending]
            if not self._may_act():
                return results + [_Result(job, attempt, _NOT_LEADING) for job, attempt in pending]
            self._unsent.difference_update(tokens)  # from here on they may reach the scheduler
            with span(
                "hpcbridge.backend.submit_array",
                backend=backend.name,
                job_ids=(job.job_id for job, _ in pending),
                tasks=len(pending),
            ):
                launched = backend.submit_array(
                    requests, throttle=array.throttle if array else None
                )
            if len(launched) != len(pending):
                raise UncertainSubmissionError(
                    f"{backend.name} answered {len(launched)} submissions for an array of "
                    f"{len(pending)} tasks"
                )
        except ArrayShapeError:  # raised before any scheduler call: one by one instead
            self._unsent.update(tokens)
            return results + [
                _Result(job, attempt, self._submit_one(backend, job, attempt))
                for job, attempt in pending
            ]
        except BackendError as exc:
            return results + failed(pending, exc)
        except Exception as exc:
            return results + failed(pending, _unexpected(backend, exc))
        log.info("array_submitted", tasks=len(pending), native_id=launched[0].native_id)
        return results + [
            _Result(job, attempt, outcome)
            for (job, attempt), outcome in zip(pending, launched, strict=True)
        ]

    def _adopt(self, backend: Backend, members: Sequence[Pair]) -> dict[str, Submitted]:
        """Tasks already at the scheduler. One array submission launches all its tasks or
        none, so when the first task that may have been sent is not there, none of them is."""
        unverified = [a for _, a in members if a.token not in self._unsent]
        if not unverified:
            return {}
        first = backend.find(ref_of(unverified[0]))
        if first is None:
            return {}
        adopted = {unverified[0].token: first}
        for attempt in unverified[1:]:
            found = backend.find(ref_of(attempt))
            if found is not None:
                adopted[attempt.token] = found
        return adopted

    # -- record (one transaction) ----------------------------------------------------------

    def _record_all(self, results: Sequence[_Result], now: float, report: Report) -> None:
        """Each job's outcome in a savepoint of one transaction: a failed write undoes that
        job's writes only. A launch whose record is lost is found by its token next cycle:
        its token left ``_unsent`` before the call."""
        with self._store.batch():
            for result in results:
                try:
                    with self._store.savepoint():
                        self._record(result.job, result.attempt, result.outcome, now, report)
                except FencedError:
                    raise  # another process leads: it finds these launches by their tokens
                except Exception as exc:
                    report.errors.append(f"{result.job.job_id}: {exc}")
                    if not isinstance(exc, HpcbridgeError):
                        log.exception("record_failed", job_id=result.job.job_id)

    def _record(
        self, job: Job, attempt: Attempt, outcome: Outcome, now: float, report: Report
    ) -> None:
        if isinstance(outcome, Deferred):
            self._set_reason(job, outcome.reason, now)
            return
        if isinstance(outcome, BackendError):
            self._record_error(job, attempt, outcome, now)
            return
        state = AttemptState.RUNNING if outcome.running else AttemptState.SUBMITTED
        started: dict[str, Any] = {"started_at": now} if outcome.running else {}
        record_submitted(
            self._store,
            attempt,
            outcome.native_id,
            now=now,
            state=state,
            details=dict(outcome.details),
            **started,
        )
        placement = outcome.details.get("placement")
        if isinstance(placement, dict):  # the backend chose the node holding the inputs
            self._store.add_event(
                attempt.job_id,
                "placed",
                now=now,
                attempt=attempt.number,
                reason=str(placement.get("reason") or ""),
                data={k: v for k, v in placement.items() if k != "reason"},
            )
        report.submitted += 1
        if outcome.running:
            self._on_current(
                job,
                lambda current: self._store.transition(
                    current.job_id,
                    JobState.RUNNING,
                    expected_version=current.version,
                    now=now,
                    reason="started",
                    attempt=attempt.number,
                    data=time_to_recover(self._store, current, now),
                ),
            )

    def _on_current(self, job: Job, write: Callable[[Job], object]) -> None:
        """``write`` against the job as we know it, or once more against the stored one
        when someone changed it meanwhile (a cancel request landing during the call)."""
        try:
            write(job)
        except ConflictError:
            write(self._store.get_job(job.job_id))

    def _set_reason(self, job: Job, reason: str, now: float) -> None:
        def write(current: Job) -> None:
            if current.reason != reason:
                self._store.update_job(
                    current.job_id, expected_version=current.version, now=now, reason=reason
                )

        self._on_current(job, write)

    def _record_error(self, job: Job, attempt: Attempt, error: BackendError, now: float) -> None:
        if error.transient:
            self._set_reason(job, f"{job.backend} unavailable, will retry: {error.message}", now)
            return
        self._store.update_attempt(
            job.job_id,
            attempt.number,
            state=AttemptState.FAILED,
            failure_class=FailureClass.SPEC_ERROR,
            ended_at=now,
            reason=error.message,
        )
        self._on_current(
            job,
            lambda current: self._store.transition(
                current.job_id,
                JobState.FAILED,
                expected_version=current.version,
                now=now,
                reason=f"the scheduler refused the job: {error.message}",
                attempt=attempt.number,
                failure_class=FailureClass.SPEC_ERROR,
            ),
        )


_NOT_LEADING = Deferred("waiting for this reconciler to renew its lease before it submits")
"""Nothing was sent: the lease has too little time left for a scheduler call."""


def _unexpected(backend: Backend, error: Exception) -> UncertainSubmissionError:
    """An error no backend should raise: logged with its traceback, and handled as a
    submission that may have reached the scheduler (looked for before the next try)."""
    log.error("backend_call_failed", backend=backend.name, exc_info=error)
    return UncertainSubmissionError(
        f"{backend.name}: unexpected {type(error).__name__} during submission: {error}"
    )
