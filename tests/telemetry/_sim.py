"""Write job histories into a store exactly as the reconciler does, without processes.

Used where real jobs would be too slow (hundreds of jobs) or cannot produce a class on
this machine (node failures, preemptions). Each call walks one job through its attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import JobId, NewJob, Store, new_job_id, new_token

S = JobState


@dataclass
class Sim:
    store: Store
    now: float = 1_700_000_000.0
    created: list[JobId] = field(default_factory=list)

    def _held(self, job_id: JobId, wait_s: float) -> int:
        """Held ``wait_s`` for licences, as the reconciler holds a job; its new version."""
        numbers = {"licences": {"fluent": {"requested": 3, "free": 2, "total": 4}}}
        held = self.store.transition(
            job_id,
            S.HELD,
            expected_version=1,
            now=self.now,
            reason="waiting for 3 licences of fluent (2 free)",
            data=numbers,
        )
        self.now += wait_s
        return held.version

    def job(
        self,
        outcomes: Sequence[str] = ("succeeded",),
        *,
        project: str = "climate",
        workload_class: str = "batch",
        backend: str = "local",
        cpus: int = 1,
        gpus: int = 0,
        queue_s: float = 30.0,
        run_s: float = 100.0,
        backoff_s: float = 10.0,
        partition_kind: str | None = None,
        checkpoints_s: Sequence[float] = (),
        exit_codes: Sequence[int | None] = (),
        nodes: tuple[str, ...] = ("node1",),
        reasons: Sequence[str | None] = (),
        finish: bool = True,
        licence_wait_s: float | None = None,
    ) -> JobId:
        """One job whose attempts end as ``outcomes`` ("succeeded" or a failure class).

        A failure followed by another outcome is retried; the last one decides the job.
        With ``finish=False`` the last attempt is left running. ``licence_wait_s``: it first
        waits that long in held for licences of a managed pool, as the reconciler holds it.
        """
        store, job_id = self.store, new_job_id()
        resources: dict[str, Any] = {"cpus_per_task": cpus}
        if gpus:
            resources["gpus"] = gpus
        spec = {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "sim",
            "project": project,
            "workload_class": workload_class,
            "command": ["sleep", "1"],
            "resources": resources,
        }
        store.create_jobs(
            [NewJob(job_id, "sim", project, workload_class, backend, spec)],
            now=self.now,
            actor="test",
        )
        self.created.append(job_id)
        job = store.transition(
            job_id,
            S.QUEUED,
            expected_version=1 if licence_wait_s is None else self._held(job_id, licence_wait_s),
            now=self.now,
            reason="waiting to start",
        )
        for index, outcome in enumerate(outcomes):
            number = index + 1
            token = new_token()
            store.create_attempt(job_id, backend=backend, token=token, now=self.now, details={})
            details = {"partition_kind": partition_kind} if partition_kind else {}
            store.update_attempt(
                job_id,
                number,
                state=AttemptState.SUBMITTED,
                native_id=token,
                submitted_at=self.now,
                details=details,
            )
            store.add_event(
                job_id,
                "attempt_submitted",
                now=self.now,
                attempt=number,
                data={"native_id": token, "backend": backend},
            )
            self.now += queue_s
            started = self.now
            store.update_attempt(
                job_id, number, state=AttemptState.RUNNING, started_at=started, nodes=nodes
            )
            store.add_event(job_id, "attempt_running", now=self.now, attempt=number)
            job = store.transition(
                job_id,
                S.RUNNING,
                expected_version=job.version,
                now=self.now,
                reason="running on " + ", ".join(nodes),
                attempt=number,
            )
            if not finish and number == len(outcomes):
                return job_id
            saved_at = self.now
            self.now += run_s
            succeeded = outcome == "succeeded"
            failure = None if succeeded else FailureClass(outcome)
            exit_code = exit_codes[index] if index < len(exit_codes) else (0 if succeeded else None)
            reason = reasons[index] if index < len(reasons) else None
            store.update_attempt(
                job_id,
                number,
                state=AttemptState.SUCCEEDED if succeeded else AttemptState.FAILED,
                ended_at=self.now,
                failure_class=failure,
                exit_code=exit_code,
                reason=reason,
            )
            data: dict[str, Any] = {
                "native_id": token,
                "backend": backend,
                "nodes": list(nodes),
                "run_s": run_s,
            }
            if exit_code is not None:
                data["exit_code"] = exit_code
            if failure is not None:
                data["failure_class"] = failure.value
            if partition_kind:
                data["partition_kind"] = partition_kind
            store.add_event(
                job_id,
                f"attempt_{'succeeded' if succeeded else 'failed'}",
                now=self.now,
                attempt=number,
                reason=reason,
                data=data,
            )
            # The job's own events, copied from its status directory once the attempt has
            # ended (Reconciler._ingest_job_events): after the attempt's end in the log,
            # with the time they were written.
            for duration in checkpoints_s:
                store.add_event(
                    job_id,
                    "checkpoint_saved",
                    now=saved_at,
                    attempt=number,
                    data={"duration_s": duration, "step": 1, "bytes": 2_000_000_000},
                )
            last = number == len(outcomes)
            if succeeded:
                store.transition(
                    job_id,
                    S.SUCCEEDED,
                    expected_version=job.version,
                    now=self.now,
                    reason="exited with code 0",
                    attempt=number,
                    exit_code=0,
                )
            elif failure is FailureClass.CANCELLED:
                store.transition(
                    job_id,
                    S.CANCELLED,
                    expected_version=job.version,
                    now=self.now,
                    reason="cancelled",
                    attempt=number,
                    failure_class=failure,
                )
            elif not last:
                assert failure is not None
                job = store.transition(
                    job_id,
                    S.RETRY_WAIT,
                    expected_version=job.version,
                    now=self.now,
                    reason=f"{reason or failure.value}; retry {number + 1} in {backoff_s:g}s",
                    attempt=number,
                    failure_class=failure,
                    exit_code=exit_code,
                    next_attempt_at=self.now + backoff_s,
                )
                self.now += backoff_s
                job = store.transition(
                    job_id, S.QUEUED, expected_version=job.version, now=self.now, reason="retrying"
                )
            else:
                assert failure is not None
                store.transition(
                    job_id,
                    S.FAILED,
                    expected_version=job.version,
                    now=self.now,
                    reason=f"{reason or failure.value}; no retries left",
                    attempt=number,
                    failure_class=failure,
                    exit_code=exit_code,
                )
        return job_id
