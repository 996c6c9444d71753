"""The Python API of hpcbridge in embedded mode: submit, inspect, cancel and wait for jobs.

The reconciler runs in-process while a caller waits. Whoever holds the leader lock drives
it; a caller that submits and leaves starts a detached agent, so jobs always progress.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from hpcbridge.backends import AttemptRef, Backend, WakeUp, available_backends, load_backend
from hpcbridge.config import Settings
from hpcbridge.containers import pin as pin_container
from hpcbridge.containers import problems as container_problems
from hpcbridge.cost import (
    BudgetUse,
    budget_use,
    load_budget_file,
    load_budgets,
    load_cards,
    uses_for,
)
from hpcbridge.errors import (
    ConflictError,
    IdempotencyConflictError,
    NotFoundError,
    SpecError,
    StoreError,
)
from hpcbridge.policy import (
    BurstDecision,
    LicenceMonitor,
    QuarantinePolicy,
    Quotas,
    decide_burst,
    load_licence_pools,
    load_quotas,
    over_total,
    wait_estimates,
    without_managed,
)
from hpcbridge.provenance import ORIGIN_EVENT, build, origin
from hpcbridge.reconciler import CycleReport, Policy, Reconciler, burst_inputs, leadership_for
from hpcbridge.spec import JobSpec, expand, task_count, task_documents
from hpcbridge.staging import DataPreflight, check_data, preflight
from hpcbridge.states import JobState
from hpcbridge.store import (
    Attempt,
    Event,
    Job,
    JobFilter,
    NewJob,
    Store,
    new_job_id,
    open_store,
    task_job_id,
)
from hpcbridge.telemetry import MetricsExport

log = structlog.get_logger("hpcbridge.client")

_MAX_CANCEL_TRIES = 20
_NATIVE_ID = re.compile(r"^\d+(_\d+)?$")
"""A scheduler's job id (``1234``, ``1234_7``); hpcbridge's own ids start with a letter."""
_MAX_FAILED_CYCLES = 20
"""Consecutive failed cycles after which waiting gives up and says why."""
_BUSY_CYCLE_S = 0.005
ACTIVE_STATES = frozenset(s for s in JobState if not s.terminal)


class _Backends(Mapping[str, Backend]):
    """Backends loaded on first use, so a laptop never needs Slurm's configuration."""

    def __init__(self, settings: Settings, wake: WakeUp) -> None:
        self._settings = settings
        self._wake = wake
        self._loaded: dict[str, Backend] = {}

    def __getitem__(self, name: str) -> Backend:
        if name not in self._loaded:
            self._loaded[name] = load_backend(name, self._settings, self._wake)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(available_backends())

    def __len__(self) -> int:
        return len(available_backends())

    def get(self, name: str, default: Backend | None = None) -> Backend | None:  # type: ignore[override]
        try:
            return self[name]
        except Exception:
            return default

    def close(self) -> None:
        for backend in self._loaded.values():
            backend.close()


def _requested(document: Mapping[str, object]) -> dict[str, object]:
    """What a submission asked for: its spec without where it was submitted from and what
    the burst policy decided."""
    asked = {k: v for k, v in document.items() if k != "submit_dir"}
    burst = asked.get("burst")
    if isinstance(burst, Mapping) and "decided" in burst:
        asked["burst"] = {k: v for k, v in burst.items() if k != "decided"}
    container = asked.get("container")  # the image digest pinned at submission
    if isinstance(container, Mapping) and "digest" in container:
        asked["container"] = {k: v for k, v in container.items() if k != "digest"}
    return asked


def _configured_backends(settings: Settings) -> list[str]:
    """Backends whose nodes are worth counting before any job ran there: this machine, and
    Slurm once a clusters file names its clusters."""
    return ["local", *(["slurm"] if settings.resolved_clusters_file.exists() else [])]


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A checked submission, ready to be written (``Client.prepare``)."""

    specs: tuple[JobSpec, ...]
    rows: tuple[NewJob, ...]
    origins: dict[Any, Any]
    warnings: dict[int, list[str]]
    actor: str
    bursts: dict[int, BurstDecision] = dataclasses.field(default_factory=dict)
    """The burst policy's decision per burst-eligible spec (by ``id`` of the spec)."""


class Client:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or Settings()
        self.store = store or open_store(self.settings)
        self._clock = clock
        self._wake = threading.Event()
        self._settled = threading.Event()  # the backends have nothing left in flight
        self.backends = _Backends(self.settings, self._woken)
        self._leader = leadership_for(
            self.store,
            self.settings.home / "reconciler.lock",
            clock=clock,
            ttl_s=self.settings.lease_ttl_s,
        )
        self.licence_pools = load_licence_pools(self.settings.resolved_licence_pools_file)
        self.quotas = load_quotas(
            self.settings.resolved_quotas_file,
            Quotas(
                running_jobs=self.settings.quota_running_jobs,
                submissions_per_minute=self.settings.quota_submissions_per_minute,
                core_hours_per_day=self.settings.quota_core_hours_per_day,
            ),
        )
        self.reconciler = Reconciler(
            self.store,
            self.backends,
            policy=Policy(
                lost_grace_s=self.settings.lost_grace_s,
                project_running_quota=self.quotas.default.running_jobs,
                project_running_quotas={
                    project: quotas.running_jobs for project, quotas in self.quotas.projects.items()
                },
            ),
            checkpoints_dir=self.settings.home / "checkpoints",
            clock=clock,
            quarantine=QuarantinePolicy(
                failures=self.settings.quarantine_failures,
                window_s=self.settings.quarantine_window_s,
                max_drained_fraction=self.settings.quarantine_max_drained_fraction,
            ),
            node_backends=_configured_backends(self.settings),
            may_act=self._leader.may_act,
            wake=self._wake.set,
            rate_cards=load_cards(self.settings.resolved_rate_cards),
            licences=LicenceMonitor(self.licence_pools),
            cache_max_bytes=int(self.settings.cache_max_gb * (1 << 30)),
        )
        self.metrics = (
            MetricsExport(
                self.store,
                textfile=self.settings.metrics_textfile,
                pushgateway=self.settings.pushgateway_url,
                stats=self.reconciler.stats,
            )
            if self.settings.metrics_textfile or self.settings.pushgateway_url
            else None
        )

    # -- submission ------------------------------------------------------------------------

    def check(self, spec: JobSpec) -> list[str]:
        """Every problem that would stop ``spec`` from running as written."""
        problems = spec.check_required_tags(self.settings.required_tags)
        if spec.backend not in available_backends():
            return [
                *problems,
                f"backend: {spec.backend!r} is not installed; available: "
                f"{', '.join(available_backends())}",
            ]
        problems += [use.refusal() for use in self._budgets(spec) if use.over_hard]
        problems += over_total(spec.licences, self.licence_pools)
        backend = self.backends[spec.backend]
        for task in expand(spec)[:1] if spec.array else [None]:
            checked = without_managed(task.spec if task else spec, self.licence_pools)
            problems += backend.check(checked)
        if spec.stage_in or spec.stage_out:  # inputs readable, sizes, room to stage them
            problems += check_data(spec, self.settings.home / "data" / "preflight")
        problems += container_problems(spec)  # runtime installed, image present
        return problems

    def licence_waits(self, spec: JobSpec) -> dict[str, float]:
        """Per managed pool ``spec`` asks of: the median seconds its recent jobs waited
        held for licences (pools without history are left out)."""
        return wait_estimates(self.store, [p for p in spec.licences if p in self.licence_pools])

    def start_estimate(self, spec: JobSpec) -> str | None:
        """When the scheduler expects ``spec`` to start, as its backend's last check of it
        heard (Slurm's ``sbatch --test-only``); None where the backend gives no estimate."""
        estimate = getattr(self.backends[spec.backend], "start_estimate", None)
        found = estimate(spec) if callable(estimate) else None
        return found if isinstance(found, str) else None

    def submit(
        self,
        spec: JobSpec,
        *,
        idempotency_key: str | None = None,
        actor: str = "cli",
        prepared: Prepared | None = None,
    ) -> Job:
        """Accept one job. A retried request with the same idempotency key and the same spec
        gets the job the first one created; the same key with another spec is refused.
        ``prepared``: what ``prepare([spec], ...)`` made of it beforehand."""

        def store() -> Job:
            ready = prepared or self.prepare([spec], idempotency_key=idempotency_key, actor=actor)
            return self.store_prepared(ready)[0]

        if idempotency_key is None:
            return store()
        existing = self.store.find_by_idempotency_key(idempotency_key)
        if existing is None:
            try:
                return store()
            except StoreError:
                existing = self.store.find_by_idempotency_key(idempotency_key)
                if existing is None:
                    raise
                # a concurrent request with the same key was stored first
        if _requested(existing.spec) != _requested(spec.to_document()):
            raise IdempotencyConflictError(idempotency_key, existing.job_id)
        return existing

    def submit_many(
        self, specs: Sequence[JobSpec], *, idempotency_key: str | None = None, actor: str = "cli"
    ) -> list[Job]:
        """Accept several jobs in one transaction: all of them, or none if one is invalid."""
        return self.store_prepared(
            self.prepare(specs, idempotency_key=idempotency_key, actor=actor)
        )

    def prepare(
        self, specs: Sequence[JobSpec], *, idempotency_key: str | None = None, actor: str = "cli"
    ) -> Prepared:
        """What a submission does before it writes: the checks (which may ask the
        scheduler), the rows, where it was submitted from (git runs). Outside any
        transaction; ``store_prepared`` then writes it."""
        warnings = {id(spec): self.budget_warnings(spec) for spec in specs}
        rows: list[NewJob] = []
        bursts: dict[int, BurstDecision] = {}
        for spec in specs:
            accepted = self._accept(spec)
            if accepted.burst.eligible:  # routed now, after check() asked the scheduler
                bursts[id(spec)] = decision = self.burst_decision(accepted)
                choice = "burst" if decision.burst else "onprem"
                burst = accepted.burst.model_copy(update={"decided": choice})
                accepted = accepted.model_copy(update={"burst": burst})
            rows += self._rows_for(accepted, idempotency_key, owner=actor)
        origins = {r.spec.get("submit_dir") for r in rows if r.parent_id is None}
        found = {where: origin(where) for where in origins}
        return Prepared(tuple(specs), tuple(rows), found, warnings, actor, bursts)

    def burst_decision(self, spec: JobSpec) -> BurstDecision:
        """Whether ``spec`` would burst to its cloud partition, with the numbers. Uses the
        start estimate of the last ``check(spec)`` (no scheduler call of its own)."""
        cluster = getattr(self.backends[spec.backend], "cluster", None)
        name = cluster(spec.cluster).name if callable(cluster) else (spec.cluster or "local")
        egress = self.data_preflight(spec).bytes_total if spec.stage_in else 0
        inputs = burst_inputs(
            spec,
            store=self.store,
            cards=load_cards(self.settings.resolved_rate_cards),
            budgets=load_budget_file(self.settings.resolved_budgets_file).burst_budgets,
            start_estimate=self.start_estimate(spec),
            egress_bytes=egress,
            cluster=name,
            now=self._clock(),
        )
        return decide_burst(inputs)

    def store_prepared(self, prepared: Prepared) -> list[Job]:
        """Write a prepared submission: its jobs and where each came from."""
        now, actor = self._clock(), prepared.actor
        created = self.store.create_jobs(prepared.rows, now=now, actor=actor)
        top = [job for job in created if job.parent_id is None]
        with self.store.batch():
            for job in top:
                data = prepared.origins[job.spec.get("submit_dir")]
                self.store.add_event(job.job_id, ORIGIN_EVENT, now=now, data=data, actor=actor)
        self._note_budget_warnings(created, prepared.specs, prepared.warnings)
        self._note_bursts(top, prepared)
        self._wake.set()
        return top

    def _note_bursts(self, top: Sequence[Job], prepared: Prepared) -> None:
        """Each burst-eligible job's decision and its numbers, as a ``burst_decided`` event."""
        by_name = {
            (s.project, s.name): prepared.bursts[id(s)]
            for s in prepared.specs
            if id(s) in prepared.bursts
        }
        if not by_name:
            return
        now = self._clock()
        with self.store.batch():
            for job in top:
                decision = by_name.get((job.project, job.name))
                if decision is not None:
                    self.store.add_event(
                        job.job_id,
                        "burst_decided",
                        now=now,
                        reason=decision.summary,
                        data=decision.as_data(),
                    )

    def data_preflight(self, spec: JobSpec) -> DataPreflight:
        """What staging ``spec``'s inputs involves: files, bytes, free space, time."""
        return preflight(spec, self.settings.home / "data" / "preflight")

    def provenance(self, job_id: str) -> dict[str, Any]:
        """Inputs and outputs with digests, command, resolved spec, environment without
        secrets, where it was submitted from, attempts and nodes."""
        job = self.get(job_id)
        return build(job, self.store.attempts(job.job_id), self.store.events(job.job_id))

    def _accept(self, spec: JobSpec) -> JobSpec:
        if spec.submit_dir is None:
            spec = spec.model_copy(update={"submit_dir": os.getcwd()})
        problems = self.check(spec)
        if problems:
            raise SpecError(
                f"job {spec.name!r} cannot run: " + "; ".join(problems), problems=problems
            )
        return pin_container(spec)  # every attempt runs the image it has now

    def _budgets(self, spec: JobSpec) -> list[BudgetUse]:
        """The budgets ``spec`` would count against, with their use this period."""
        budgets = load_budgets(self.settings.resolved_budgets_file)
        scoped = [
            b
            for b in budgets
            if b.project == spec.project or (b.team and spec.tags.get("team") == b.team)
        ]
        if not scoped:
            return []
        cards = load_cards(self.settings.resolved_rate_cards)
        uses = budget_use(self.store, cards, scoped, self._clock())
        return uses_for(uses, spec.project, spec.tags)

    def budget_warnings(self, spec: JobSpec) -> list[str]:
        """Budgets past their soft limit that ``spec`` counts against, in words."""
        return [use.warning() for use in self._budgets(spec) if use.over_soft and not use.over_hard]

    def _note_budget_warnings(
        self, created: Sequence[Job], specs: Sequence[JobSpec], warnings: dict[int, list[str]]
    ) -> None:
        """Each new job past a soft limit says so: an event, and its reason until it moves."""
        by_name = {(s.project, s.name): warnings[id(s)] for s in specs if warnings[id(s)]}
        if not by_name:
            return
        now = self._clock()
        with self.store.batch():
            for job in created:
                said = by_name.get((job.project, job.name)) if job.parent_id is None else None
                if said:
                    reason = "; ".join(said)
                    self.store.add_event(job.job_id, "budget_warning", now=now, reason=reason)
                    self.store.update_job(
                        job.job_id, expected_version=job.version, now=now, reason=reason
                    )

    @staticmethod
    def _rows_for(spec: JobSpec, idempotency_key: str | None, *, owner: str = "") -> list[NewJob]:
        job_id = new_job_id()
        parent = NewJob(
            job_id=job_id,
            name=spec.name,
            project=spec.project,
            tags=dict(spec.tags),
            workload_class=spec.workload_class,
            backend=spec.backend,
            cluster=spec.cluster,
            priority=spec.priority,
            spec=spec.to_document(),
            idempotency_key=idempotency_key,
            task_count=task_count(spec.array) if spec.array else 0,
            owner=owner,
        )
        if spec.array is None:
            return [parent]
        return [parent] + [
            dataclasses.replace(
                parent,
                job_id=task_job_id(job_id, task.index),
                spec=document,
                parent_id=job_id,
                task_index=task.index,
                task_params=task.params,
                task_count=0,
                idempotency_key=None,
            )
            for task, document in task_documents(spec)
        ]

    # -- reading ---------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """A job by its id, or by the scheduler's id of one of its attempts (Slurm's
        ``1234``, or ``1234_7`` for task 7 of an array; ``1234`` alone for an array is
        the whole array)."""
        if _NATIVE_ID.match(job_id):
            attempt = self.store.attempt_by_native_id(job_id)
            if attempt is None and job_id.isdigit():
                task = self.store.array_task_attempt(job_id)
                parent = None if task is None else self.store.get_job(task.job_id).parent_id
                if parent is not None:
                    return self.store.get_job(parent)
            if attempt is None:
                raise NotFoundError(
                    f"no job has an attempt the scheduler knows as {job_id}",
                    hint="'hpcbridge list' shows the jobs and their ids",
                )
            job_id = attempt.job_id
        return self.store.get_job(job_id)

    def tasks(self, job_id: str) -> list[Job]:
        return self.store.list_jobs(JobFilter(parent_id=self.get(job_id).job_id))

    def list_jobs(self, query: JobFilter | None = None) -> list[Job]:
        return self.store.list_jobs(query or JobFilter(top_level_only=True))

    def newest_jobs(self, query: JobFilter) -> list[Job]:
        """The jobs ``query`` matches, newest first (``query.limit`` of them)."""
        return self.store.newest_jobs(query)

    def attempts(self, job_id: str) -> list[Attempt]:
        return self.store.attempts(self.get(job_id).job_id)

    def events(self, job_id: str, *, after_seq: int = 0) -> list[Event]:
        return self.store.events(self.get(job_id).job_id, after_seq=after_seq)

    def log_paths(self, job_id: str, attempt: int | None = None) -> tuple[Path | None, Path | None]:
        attempts = self.attempts(job_id)
        if not attempts:
            raise NotFoundError(
                f"job {job_id} has no attempts yet",
                hint="wait until it starts, see 'hpcbridge status'",
            )
        chosen = (
            attempts[-1]
            if attempt is None
            else next((a for a in attempts if a.number == attempt), None)
        )
        if chosen is None:
            raise NotFoundError(
                f"job {job_id} has no attempt {attempt}; it has "
                f"{', '.join(str(a.number) for a in attempts)}"
            )
        backend = self.backends[chosen.backend]
        return backend.log_paths(
            AttemptRef(chosen.job_id, chosen.number, chosen.token, chosen.native_id, chosen.details)
        )

    # -- control ---------------------------------------------------------------------------

    def cancel(self, job_id: str, *, actor: str = "cli") -> Job:
        """Ask for a job to stop (an array: each of its unfinished tasks too, at once, so
        that none of them starts after this returns); the reconciler carries it out."""
        for _ in range(_MAX_CANCEL_TRIES):
            job = self.get(job_id)
            if job.state.terminal or job.cancel_requested:
                return job
            now = self._clock()
            try:
                with self.store.batch():
                    job = self.store.update_job(
                        job.job_id, expected_version=job.version, now=now, cancel_requested=True
                    )
                    self.store.add_event(job.job_id, "cancel_requested", now=now, actor=actor)
                    if job.is_array_parent:
                        self._cancel_tasks(job, now)
            except ConflictError:
                continue
            self._wake.set()
            return job
        raise ConflictError(f"job {job_id} kept changing; try 'hpcbridge cancel' again")

    def _cancel_tasks(self, parent: Job, now: float) -> None:
        for task in self.tasks(parent.job_id):
            if task.state.terminal or task.cancel_requested:
                continue
            # On a conflict the reconciler's own CancelTasks marks it a moment later.
            with contextlib.suppress(ConflictError), self.store.savepoint():
                self.store.update_job(
                    task.job_id, expected_version=task.version, now=now, cancel_requested=True
                )

    def _woken(self, *, settled: bool = False) -> None:
        if settled:
            self._settled.set()
        self._wake.set()

    def reconcile_once(self) -> CycleReport | None:
        """One reconciler cycle if this process is (or becomes) the leader."""
        if not self._leader.try_acquire():
            return None
        with self._leader.fenced():  # refused once another process leads (PostgreSQL)
            return self.reconciler.cycle()

    def wait(
        self,
        job_ids: Sequence[str],
        *,
        timeout_s: float | None = None,
        on_cycle: Callable[[], None] | None = None,
    ) -> list[Job]:
        """Drive (or watch) the reconciler until every job is finished."""
        for job_id in job_ids:
            self.get(job_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        pending = list(job_ids)

        def finished() -> bool:
            while pending and self.get(pending[0]).state.terminal:
                pending.pop(0)  # finished jobs stay finished: look at each only until then
            return not pending

        self.drive(finished, deadline=deadline, on_cycle=on_cycle)
        return [self.get(job_id) for job_id in job_ids]

    def drive(
        self,
        done: Callable[[], bool],
        *,
        deadline: float | None = None,
        on_cycle: Callable[[], None] | None = None,
    ) -> None:
        failures = 0
        while not done():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("timed out waiting for jobs to finish")
            started = time.monotonic()
            self._settled.clear()  # what settles from here on, this cycle may not see
            try:
                report = self.reconcile_once()
                failures = 0
            except Exception as exc:  # a failed cycle (a busy database): the next one retries
                failures += 1
                if failures >= _MAX_FAILED_CYCLES:
                    raise
                log.warning("reconcile_cycle_failed", error=str(exc), failures=failures)
                self._wake.wait(self.settings.poll_interval_s)
                continue
            spent = time.monotonic() - started
            if on_cycle is not None:
                on_cycle()
            if self.metrics is not None:
                self.metrics.after_cycle()
            if report is None or not (report.changes or report.submitted):
                self._wake.wait(self.settings.poll_interval_s)
                self._wake.clear()
            elif spent > _BUSY_CYCLE_S:
                # A long cycle that changed things: pause as long as it took before the next,
                # so that the loop never holds a core for more than half the time while the
                # backends start and reap the next processes (each cycle looks at every
                # active job, so back-to-back cycles would spend that on fewer changes);
                # the next cycle takes in everything that happened in one pass. Once the
                # backends have nothing left in flight, the pause ends: the rest is in.
                self._settled.wait(min(spent, self.settings.poll_interval_s))

    def has_active_jobs(self) -> bool:
        return bool(self.store.list_jobs(JobFilter(states=ACTIVE_STATES, limit=1)))

    def hand_over(self) -> None:
        """Before this process exits: let a detached agent drive any unfinished jobs."""
        self._leader.release()
        if self.has_active_jobs():
            start_agent(self.settings)

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        self._leader.release()
        self.backends.close()
        self.store.close()


def start_agent(settings: Settings) -> None:
    """A detached ``hpcbridge agent`` that drives jobs until none is active, then exits."""
    settings.home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HPCBRIDGE_HOME": str(settings.home)}
    if settings.database_url:
        env["HPCBRIDGE_DATABASE_URL"] = settings.database_url
    with open(settings.home / "agent.log", "ab") as log_file:
        subprocess.Popen(
            [sys.executable, "-m", "hpcbridge", "agent"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            env=env,
            start_new_session=True,
        )


# The REST API's client, with this one's methods (hpcbridge.remote).
from hpcbridge.remote import RemoteClient  # noqa: E402

__all__ = ["Client", "JobState", "RemoteClient", "start_agent"]
