"""Per-project quotas: submissions per minute and core-hours per day refuse with when to
retry (and are audited as denied); work beyond the running quota waits queued, saying why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hpcbridge.config import Settings
from hpcbridge.errors import QuotaExceededError
from hpcbridge.security import Principal, Role
from hpcbridge.service import Service
from hpcbridge.spec import JobSpec
from hpcbridge.states import JobState
from hpcbridge.store import Store
from tests.service.conftest import PLATFORM, Clock, make_service, principal

ALICE = principal("alice", {"a": Role.MEMBER, "b": Role.MEMBER})
ALICE_ALL = principal("alice", {p: Role.MEMBER for p in "abc"})


def quota_service(
    store: Store, settings: Settings, clock: Clock, **quotas: float | Path
) -> Service:
    return make_service(store, settings.model_copy(update=quotas), clock)


def test_submissions_per_minute(
    store: Store, settings: Settings, clock: Clock, make_spec: Callable[..., JobSpec]
) -> None:
    service = quota_service(store, settings, clock, quota_submissions_per_minute=3)
    for _ in range(3):
        service.submit(ALICE, make_spec(project="a"))
        clock.now += 10
    with pytest.raises(QuotaExceededError) as refused:
        service.submit(ALICE, make_spec(project="a"))
    assert refused.value.retry_after_s == 30  # the first of the three leaves the minute then
    assert "3 jobs in the last minute" in str(refused.value)
    service.submit(ALICE, make_spec(project="b"))  # each project has its own quota
    clock.now += 30
    again = service.submit(ALICE, make_spec(project="a"), idempotency_key="k")
    # a retry of an accepted submission is no new work: never refused
    retried = service.submit(ALICE, make_spec(project="a"), idempotency_key="k")
    assert retried.job_id == again.job_id
    with pytest.raises(QuotaExceededError):
        service.submit(ALICE, make_spec(project="a"))
    denied = [r for r in service.audit_list(PLATFORM) if r.outcome == "denied"]
    assert [(r.action, r.project) for r in denied] == [("job.submit", "a")] * 2


def test_core_hours_per_day(
    store: Store, settings: Settings, clock: Clock, make_spec: Callable[..., JobSpec]
) -> None:
    service = quota_service(store, settings, clock, quota_core_hours_per_day=10.0)
    four_cpus = {"cpus_per_task": 4, "walltime": "1h"}  # 4 core-hours
    service.submit(ALICE, make_spec(project="a", resources=four_cpus))
    clock.now += 3600
    service.submit(ALICE, make_spec(project="a", resources=four_cpus))
    clock.now += 3600
    with pytest.raises(QuotaExceededError) as refused:
        service.submit(ALICE, make_spec(project="a", resources=four_cpus))
    assert refused.value.retry_after_s == 86_400 - 7200  # when the first leaves the day
    with pytest.raises(QuotaExceededError, match="more than project 'a' may use in a day"):
        service.submit(
            ALICE, make_spec(project="a", resources={"cpus_per_task": 2, "walltime": "6h"})
        )
    service.submit(ALICE, make_spec(project="a", resources={"walltime": "1h"}))  # 1 more fits
    clock.now += 86_400 - 7200
    service.submit(ALICE, make_spec(project="a", resources=four_cpus))


def test_work_beyond_the_running_quota_waits_with_a_reason(
    store: Store, settings: Settings, make_spec: Callable[..., JobSpec]
) -> None:
    service = Service(store, settings.model_copy(update={"quota_running_jobs": 1}))
    me = Principal.local_user()
    try:
        first = service.submit(me, make_spec(project="a", command=["sleep", "0.5"]))
        second = service.submit(me, make_spec(project="a", command=["sleep", "0.5"]))
        other = service.submit(me, make_spec(project="b", command=["sleep", "0.5"]))
        client = service.client
        waited: set[str] = set()

        def look() -> None:
            running = [j for j in (first, second) if client.get(j.job_id).state is JobState.RUNNING]
            assert len(running) <= 1
            for job_id in (first.job_id, second.job_id):
                reason = client.get(job_id).reason or ""
                if "waiting for the project quota: a has 1 of 1" in reason:
                    waited.add(job_id)

        jobs = client.wait([first.job_id, second.job_id, other.job_id], timeout_s=60, on_cycle=look)
        assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 3
        assert waited == {second.job_id}
    finally:
        service.close()


def test_a_project_of_the_quotas_file_has_limits_of_its_own(
    store: Store,
    settings: Settings,
    clock: Clock,
    make_spec: Callable[..., JobSpec],
    tmp_path: Path,
) -> None:
    quotas_file = tmp_path / "quotas.yaml"
    quotas_file.write_text("projects:\n  b: {submissions_per_minute: 1}\n  c: {}\n")
    service = quota_service(
        store, settings, clock, quota_submissions_per_minute=2, quotas_file=quotas_file
    )
    for project, accepted in (("a", 2), ("b", 1), ("c", 2)):
        for _ in range(accepted):
            service.submit(ALICE_ALL, make_spec(project=project))
        with pytest.raises(QuotaExceededError):
            service.submit(ALICE_ALL, make_spec(project=project))


def test_a_project_of_the_quotas_file_has_a_running_quota_of_its_own(
    store: Store, settings: Settings, make_spec: Callable[..., JobSpec], tmp_path: Path
) -> None:
    quotas_file = tmp_path / "quotas.yaml"
    quotas_file.write_text("projects:\n  a: {running_jobs: 1}\n")
    service = Service(store, settings.model_copy(update={"quotas_file": quotas_file}))
    me = Principal.local_user()
    try:
        a_jobs = [service.submit(me, make_spec(project="a", command=["sleep", "1"])) for _ in "xy"]
        b_jobs = [service.submit(me, make_spec(project="b", command=["sleep", "1"])) for _ in "xy"]
        client = service.client
        most_running: dict[str, int] = {"a": 0, "b": 0}

        def look() -> None:
            for project, jobs in (("a", a_jobs), ("b", b_jobs)):
                states = [client.get(j.job_id).state for j in jobs]
                running = sum(state is JobState.RUNNING for state in states)
                most_running[project] = max(most_running[project], running)

        ids = [j.job_id for j in a_jobs + b_jobs]
        jobs = client.wait(ids, timeout_s=60, on_cycle=look)
        assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 4
        assert most_running["a"] == 1  # its own quota
        assert most_running["b"] == 2  # no quota: both at once (the default has none)
    finally:
        service.close()
