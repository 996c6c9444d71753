"""Managed licence pools end to end on the local executor and a real store: jobs wait
``held`` with the numbers, are released as licences free up, fail over between servers
and fail as ``licence_unavailable`` when no server stays up past the grace."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.errors import ConfigError, SpecError
from hpcbridge.policy._licence_history import held_s
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass, JobState

UP = ["true"]
DOWN = ["false"]


def write_pools(settings: Settings, *servers: dict[str, object], **pool: object) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    document = {
        "pools": [
            {
                "name": "fluent",
                "total": 4,
                "check_interval_s": 0,
                "servers": list(servers) or [{"name": "lic1", "check": UP}],
                **pool,
            }
        ]
    }
    settings.resolved_licence_pools_file.write_text(yaml.safe_dump(document))


@pytest.fixture
def open_client(settings: Settings) -> Iterator[Callable[[], Client]]:
    opened: list[Client] = []

    def make() -> Client:
        opened.append(Client(settings))
        return opened[-1]

    yield make
    for client in opened:
        client.close()


def fluent_job(make_spec: Callable[..., JobSpec], name: str, command: list[str]) -> JobSpec:
    return make_spec(name=name, command=command, licences={"fluent": 2})


def test_three_jobs_of_two_licences_share_a_pool_of_four(
    settings: Settings, make_spec: Callable[..., JobSpec], open_client: Callable[[], Client]
) -> None:
    write_pools(settings)
    client = open_client()
    gate = settings.home / "gate"
    # The first two run until the gate file exists; the third must wait for one of them.
    wait_gate = [
        sys.executable,
        "-c",
        f"import os,time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)",
    ]
    jobs = [client.submit(fluent_job(make_spec, f"j{i}", wait_gate)) for i in range(2)]
    third = client.submit(fluent_job(make_spec, "j2", ["true"]))
    seen: list[tuple[list[JobState], JobState, str | None]] = []

    def look() -> None:
        held = client.get(third.job_id)
        states = [client.get(j.job_id).state for j in jobs]
        if states == [JobState.RUNNING] * 2 and held.state is JobState.HELD and not seen:
            seen.append((states, held.state, held.reason))
            gate.touch()  # one of the two may end now

    done = client.wait([j.job_id for j in (*jobs, third)], timeout_s=60, on_cycle=look)
    assert seen == [
        ([JobState.RUNNING] * 2, JobState.HELD, "waiting for 2 licences of fluent (0 free)")
    ]
    assert [j.state for j in done] == [JobState.SUCCEEDED] * 3
    # The preflight's history: the third waited, the first two did not (median 0).
    assert (held_s(client.store.events(third.job_id), "fluent") or 0) > 0
    assert held_s(client.store.events(jobs[0].job_id), "fluent") == 0
    assert client.licence_waits(fluent_job(make_spec, "next", ["true"])) == {"fluent": 0.0}
    event = next(e for e in client.store.events(third.job_id) if e.data.get("licences"))
    assert event.data["licences"]["fluent"] == {
        "requested": 2,
        "free": 0,
        "total": 4,
        "capacity": 4,
    }
    reasons = [e.reason for e in client.store.events(third.job_id)]
    assert any(r and r.startswith("licences free: 2 of fluent") for r in reasons), reasons


def test_a_failed_first_server_fails_over_to_the_second(
    settings: Settings, make_spec: Callable[..., JobSpec], open_client: Callable[[], Client]
) -> None:
    write_pools(settings, {"name": "lic1", "check": DOWN}, {"name": "lic2", "check": UP})
    client = open_client()
    job = client.submit(fluent_job(make_spec, "j", ["true"]))
    (done,) = client.wait([job.job_id], timeout_s=60)
    assert done.state is JobState.SUCCEEDED
    assert all(e.data.get("licences") is None for e in client.store.events(job.job_id))


def test_no_healthy_server_holds_then_fails_after_the_grace(
    settings: Settings, make_spec: Callable[..., JobSpec], open_client: Callable[[], Client]
) -> None:
    servers: list[dict[str, object]] = [
        {"name": "lic1", "check": DOWN},
        {"name": "lic2", "check": DOWN},
    ]
    write_pools(settings, *servers, unavailable_grace_s=1)
    client = open_client()
    job = client.submit(fluent_job(make_spec, "j", ["true"]))
    client.reconciler.cycle()
    held = client.get(job.job_id)
    assert held.state is JobState.HELD
    assert held.reason == (
        "waiting for 2 licences of fluent (0 free); "
        "no licence server of fluent passes its health check"
    )
    (done,) = client.wait([job.job_id], timeout_s=30)
    assert done.state is JobState.FAILED
    assert done.failure_class is FailureClass.LICENCE_UNAVAILABLE
    assert done.reason is not None
    assert done.reason.startswith("no licence server of fluent has passed its health check")


def test_a_request_over_the_pool_total_is_refused_at_submission(
    settings: Settings, make_spec: Callable[..., JobSpec], open_client: Callable[[], Client]
) -> None:
    write_pools(settings)
    client = open_client()
    with pytest.raises(SpecError) as refused:
        client.submit(make_spec(command=["true"], licences={"fluent": 5}))
    assert "asks for 5 but the pool fluent holds 4" in str(refused.value)


def test_a_bad_pools_file_is_a_config_error(settings: Settings, tmp_path: Path) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.resolved_licence_pools_file.write_text(json.dumps({"pools": [{"name": "x"}]}))
    with pytest.raises(ConfigError) as bad:
        Client(settings)
    assert "licence pools" in str(bad.value) and "total" in str(bad.value)
