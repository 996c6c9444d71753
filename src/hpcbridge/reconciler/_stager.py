"""Data stages run in worker threads; the cycle only starts them and reads their outcome.

A job in ``staging_in`` or ``staging_out`` with no stage running in this process (a new
job, or one whose control plane crashed mid-stage) gets one started; the stage is
idempotent (kept files re-verified, ``.part`` files resumed), so a crash re-runs it, and
the job is queued only once a run of it finished here and verified every input. Nothing is
written to the store from the workers: the cycle records the outcome in its transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import structlog

from hpcbridge.backends import Observation
from hpcbridge.checkpoint.verify_inputs import EXIT_CODE as VERIFY_EXIT_CODE
from hpcbridge.checkpoint.verify_inputs import MARK as VERIFY_MARK
from hpcbridge.checkpoint.verify_inputs import TORN_EXIT_CODE as VERIFY_TORN_EXIT_CODE
from hpcbridge.errors import HpcbridgeError
from hpcbridge.reconciler._environment import data_dir
from hpcbridge.reconciler._stage_outcome import StageOutcome
from hpcbridge.spec import JobSpec
from hpcbridge.staging import (
    DEFAULT_MAX_BYTES,
    Cache,
    Meter,
    StageReport,
    StagingError,
    stage_in,
    stage_out,
)
from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import Attempt, Job

log = structlog.get_logger("hpcbridge.reconciler")

MAX_STAGES = 4
"""Jobs staged at once; each stage also copies up to 8 files in parallel."""

_Key = tuple[str, JobState, int]


class Stager:
    def __init__(
        self,
        checkpoints: Path,
        wake: Callable[[], None] = lambda: None,
        *,
        cache_max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._checkpoints = checkpoints
        self._wake = wake
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[_Key, Future[StageOutcome]] = {}
        self._meters: dict[str, Meter] = {}
        # beside the data directories
        self._cache = Cache(checkpoints.parent / "cache", cache_max_bytes)

    def outcome(self, job: Job, spec: JobSpec) -> StageOutcome | None:
        """The stage's outcome once it has finished; starts it when none runs."""
        key = (job.job_id, job.state, job.attempt_count)
        future = self._running.get(key)
        if future is None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(MAX_STAGES, "hb-stager")
            meter = self._meters[job.job_id] = Meter()
            future = self._pool.submit(self._stage, job, spec, meter)
            future.add_done_callback(lambda _: self._wake())
            self._running[key] = future
            return None
        return future.result() if future.done() else None

    def forget(self, active: Mapping[str, Job]) -> None:
        """Drop outcomes of jobs that left the state they were staged for."""
        self._running = {
            key: future
            for key, future in self._running.items()
            if (job := active.get(key[0])) is not None and job.state is key[1]
        }
        self._meters = {k: v for k, v in self._meters.items() if k in active}

    def progress(self, job_id: str) -> tuple[int, int] | None:
        """``(bytes done, bytes in all)`` of a stage this process runs for the job."""
        meter = self._meters.get(job_id)
        return None if meter is None else (meter.done, meter.total)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _stage(self, job: Job, spec: JobSpec, meter: Meter) -> StageOutcome:
        where = data_dir(self._checkpoints, job.job_id)
        try:
            if job.state is JobState.STAGING_IN:
                # A local job's copies need not outlive this machine: a crash ends it too.
                here = spec.backend == "local"
                report = stage_in(spec, where, cache=self._cache, progress=meter, durable=not here)
                verb = "staged in and verified"
            else:
                report = stage_out(spec, where, succeeded=job.failure_class is None, progress=meter)
                verb = "staged out"
        except StagingError as exc:
            return StageOutcome(exc.failure_class, exc.message, {"error": str(exc)})
        except HpcbridgeError as exc:
            return StageOutcome(FailureClass.STAGING_ERROR, exc.message, {"error": str(exc)})
        except Exception as exc:  # a bug must fail the stage loudly, never pass it
            log.exception("stage_failed", job_id=job.job_id)
            return StageOutcome(FailureClass.STAGING_ERROR, f"staging failed: {exc}")
        return StageOutcome(None, _sentence(report, verb), _data(report))


def _sentence(report: StageReport, verb: str) -> str:
    mib = report.bytes_total / (1 << 20)
    return f"{len(report.files)} files ({mib:.1f} MiB) {verb} in {report.duration_s:.1f}s"


def _data(report: StageReport) -> dict[str, object]:
    return {
        **report.summary(),
        "files_list": [
            {"path": f.path, "source": f.source, "size": f.size, "digest": f.digest}
            for f in report.files
        ],
    }


def unverified_inputs(seen: Observation, attempt: Attempt) -> Observation:
    """A failed attempt whose wrapper found its inputs changed since staging (the mark
    ``verify_inputs`` leaves) failed with ``checksum_mismatch``, not as the program; with
    ``staging_error`` (retried, staging again) where a crash tore copies not yet on disk."""
    status_dir = attempt.status_dir
    failure_class = _VERIFY_FAILURES.get(seen.exit_code) if seen.exit_code is not None else None
    if status_dir is None or failure_class is None:
        return seen
    try:
        why = (Path(status_dir) / VERIFY_MARK).read_text().strip()
    except OSError:
        return seen
    return dataclasses.replace(seen, failure_class=failure_class, reason=why or seen.reason)


_VERIFY_FAILURES = {
    VERIFY_EXIT_CODE: FailureClass.CHECKSUM_MISMATCH,
    # torn by a crash before it reached the disk: a staging failure, retried by default
    # (the retry stages again, re-hashing what it keeps)
    VERIFY_TORN_EXIT_CODE: FailureClass.STAGING_ERROR,
}
