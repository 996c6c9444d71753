"""Log context: every structlog line written while handling one attempt carries its ids.

``configure_logging`` (``hpcbridge.logs``) merges structlog's contextvars into each line,
so binding once around the work for one job is enough::

    with job_log_context(job_id=job.job_id, attempt=attempt.number,
                         backend=attempt.backend, native_id=attempt.native_id):
        ...  # log.info("submitted") -> {"job_id": "j...", "attempt": 2, ...}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog

LOG_CONTEXT_KEYS = ("job_id", "attempt", "backend", "native_id")


@contextmanager
def job_log_context(
    *,
    job_id: str,
    attempt: int | None = None,
    backend: str | None = None,
    native_id: str | None = None,
) -> Iterator[None]:
    """Bind the job's ids for the duration of the block (thread- and task-local)."""
    values = {
        "job_id": job_id,
        "attempt": attempt,
        "backend": backend,
        "native_id": native_id,
    }
    bound = {k: v for k, v in values.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**bound):
        yield
