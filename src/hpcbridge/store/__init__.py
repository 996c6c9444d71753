"""Durable state: jobs, attempts, append-only events and leases behind one Protocol."""

from hpcbridge.config import Settings
from hpcbridge.store._cost_totals import NONE, CostGroup, CostTotals, group_key
from hpcbridge.store._engine import migrate
from hpcbridge.store._memory import MemoryStore
from hpcbridge.store._protocol import ACTIVE_ATTEMPT_STATES, Store
from hpcbridge.store._records import (
    Attempt,
    Event,
    Job,
    JobFilter,
    JobId,
    Lease,
    NewJob,
    new_job_id,
    new_token,
    task_job_id,
)
from hpcbridge.store._sql import SqlStore


def open_store(settings: Settings) -> Store:
    """The store the settings name: SQLite under ``home`` unless a database URL is set."""
    url = settings.resolved_database_url
    if url == "memory://":
        return MemoryStore()
    return SqlStore(url)


__all__ = [
    "ACTIVE_ATTEMPT_STATES",
    "NONE",
    "Attempt",
    "CostGroup",
    "CostTotals",
    "Event",
    "Job",
    "JobFilter",
    "JobId",
    "Lease",
    "MemoryStore",
    "NewJob",
    "SqlStore",
    "Store",
    "group_key",
    "migrate",
    "new_job_id",
    "new_token",
    "open_store",
    "task_job_id",
]
