"""A service over a real store (SQLite, or PostgreSQL where the test asks for both), with
principals of two projects in every role, and their jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from hpcbridge.config import Settings
from hpcbridge.security import SITE, Principal, Role
from hpcbridge.service import Service
from hpcbridge.spec import JobSpec
from hpcbridge.store import SqlStore, Store
from tests.store.conftest import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]


class FakeSlurm:
    """Stands in for the Slurm backend's node calls (no cluster in these tests)."""

    calls: ClassVar[list[tuple[str, ...]]] = []

    def nodes(self, cluster: str | None) -> list[Any]:
        return []

    def drain(self, node: str, reason: str, cluster: str | None) -> None:
        FakeSlurm.calls.append(("drain", node, reason))

    def resume(self, node: str, cluster: str | None) -> None:
        FakeSlurm.calls.append(("resume", node))

    def close(self) -> None:
        return None


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_service(store: Store, settings: Settings, clock: Clock, **kwargs: Any) -> Service:
    return Service(store, settings, clock=clock, slurm=FakeSlurm, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def open_test_store(request: pytest.FixtureRequest, settings: Settings) -> SqlStore:
    """SQLite under the test's home, or a PostgreSQL schema of its own (param)."""
    if request.param == "postgres":
        return SqlStore(request.getfixturevalue("postgres_url"))
    return SqlStore(settings.resolved_database_url)


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Store]:
    opened = open_test_store(request, settings)
    yield opened
    opened.close()


@pytest.fixture
def service(store: Store, settings: Settings, clock: Clock) -> Iterator[Service]:
    svc = make_service(store, settings, clock)
    yield svc
    svc.client.close()


def principal(subject: str, roles: dict[str, Role], via: str = "token") -> Principal:
    return Principal(subject=subject, roles=roles, via=via)


PLATFORM = Principal(subject="root-admin", platform_admin=True, via="token")


@dataclass
class World:
    """Jobs of project a (one owned by ``me``, one by ``them``) and of project b."""

    service: Service
    mine: str
    theirs: str
    other_project: str


@pytest.fixture
def world(service: Service, make_spec: Callable[..., JobSpec]) -> World:
    them = principal("them", {"a": Role.MEMBER})
    me = principal("me", {"a": Role.MEMBER})
    b_user = principal("b-user", {"b": Role.MEMBER})
    return World(
        service=service,
        mine=service.submit(me, make_spec(project="a", name="mine")).job_id,
        theirs=service.submit(them, make_spec(project="a", name="theirs")).job_id,
        other_project=service.submit(b_user, make_spec(project="b", name="b-job")).job_id,
    )


def site(role: Role) -> Principal:
    return principal(f"site-{role}", {SITE: role})
