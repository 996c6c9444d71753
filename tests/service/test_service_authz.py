"""The authorization matrix: two projects x every role x every use case x own/other object.

Expected outcomes are written out here as a table of their own, not derived from the code
under test: another project's objects are absent (NotFoundError), a role below the one a
use case needs is refused (ForbiddenError), and no role may set a field beyond it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hpcbridge.errors import (
    ForbiddenError,
    HpcbridgeError,
    InvalidTransitionError,
    NotFoundError,
)
from hpcbridge.security import SITE, AuditFilter, Principal, Role
from hpcbridge.service import Service
from hpcbridge.spec import JobSpec
from hpcbridge.store import JobFilter
from tests.service.conftest import PLATFORM, World, principal

OK, DENY, ABSENT, EMPTY = "ok", "forbidden", "absent", "none of a"

# Who asks: a subject "me" with each role in project a, none, or a site-wide role.
CALLERS: dict[str, Principal] = {
    "admin": principal("me", {"a": Role.ADMIN}),
    "operator": principal("me", {"a": Role.OPERATOR}),
    "member": principal("me", {"a": Role.MEMBER}),
    "viewer": principal("me", {"a": Role.VIEWER}),
    "none": principal("me", {"c": Role.ADMIN}),  # admin elsewhere, nothing in a or b
    "platform": Principal(subject="me", platform_admin=True, via="token"),
    "site-operator": principal("me", {SITE: Role.OPERATOR}),
}

# caller -> (read, manage own, manage theirs, submit in a, priority 50, priority 1000,
#            other project's job, submit in b, create tokens in a, audit of a, drain)
TABLE: dict[str, tuple[str, ...]] = {
    "admin": (OK, OK, OK, OK, OK, OK, ABSENT, DENY, OK, OK, DENY),
    "operator": (OK, OK, OK, OK, OK, DENY, ABSENT, DENY, DENY, DENY, DENY),
    "member": (OK, OK, DENY, OK, DENY, DENY, ABSENT, DENY, DENY, DENY, DENY),
    "viewer": (OK, DENY, DENY, DENY, DENY, DENY, ABSENT, DENY, DENY, DENY, DENY),
    "none": (ABSENT, ABSENT, ABSENT, DENY, DENY, DENY, ABSENT, DENY, DENY, EMPTY, DENY),
    "platform": (OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK),
    "site-operator": (OK, OK, OK, OK, OK, DENY, OK, OK, DENY, DENY, OK),
}


def outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except NotFoundError:
        return ABSENT
    except ForbiddenError:
        return DENY
    except InvalidTransitionError:
        return OK  # allowed, but the job is in no state to requeue
    except HpcbridgeError as exc:
        return f"error: {exc}"
    return OK


def reads(svc: Service, who: Principal, job_id: str) -> list[Callable[[], Any]]:
    return [
        lambda: svc.get(who, job_id),
        lambda: svc.attempts(who, job_id),
        lambda: svc.events(who, job_id),
        lambda: svc.why(who, job_id),
        lambda: svc.tasks(who, job_id),
    ]


def manages(svc: Service, who: Principal, job_id: str) -> list[Callable[[], Any]]:
    return [lambda: svc.requeue(who, job_id), lambda: svc.cancel(who, job_id)]


def audit_of_a(svc: Service, who: Principal) -> str:
    """OK when project a's records are readable; a project admin elsewhere reads its own
    projects' records only, and so sees none of a."""
    found = outcome(lambda: svc.audit_list(who, AuditFilter(project="a")))
    if found != OK:
        return found
    return OK if svc.audit_list(who, AuditFilter(project="a")) else EMPTY


def same(outcomes: list[str]) -> str:
    assert len(set(outcomes)) == 1, outcomes
    return outcomes[0]


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_authorization_matrix(caller: str, world: World, make_spec: Callable[..., JobSpec]) -> None:
    svc, who = world.service, CALLERS[caller]
    (read, own, theirs, submit_a, prio50, prio1000, other, submit_b, tokens, audit, drain) = TABLE[
        caller
    ]
    mine = world.mine
    found = {
        "read own": same([outcome(c) for c in reads(svc, who, mine)]),
        "read theirs": same([outcome(c) for c in reads(svc, who, world.theirs)]),
        "manage own": same([outcome(c) for c in manages(svc, who, mine)]),
        "manage theirs": same([outcome(c) for c in manages(svc, who, world.theirs)]),
        "other project's job": same(
            [outcome(c) for c in reads(svc, who, world.other_project)]
            + [outcome(c) for c in manages(svc, who, world.other_project)]
        ),
        "submit in a": outcome(lambda: svc.submit(who, make_spec(project="a"))),
        "priority 50": outcome(lambda: svc.submit(who, make_spec(project="a", priority=50))),
        "priority 1000": outcome(lambda: svc.submit(who, make_spec(project="a", priority=1000))),
        "submit in b": outcome(lambda: svc.submit(who, make_spec(project="b"))),
        "tokens of a": outcome(lambda: svc.create_token(who, "a", Role.VIEWER, 60)),
        "audit of a": audit_of_a(svc, who),
        "drain": outcome(lambda: svc.drain(who, "node1", "ECC errors")),
    }
    row = (read, read, own, theirs, other, submit_a, prio50, prio1000, submit_b, tokens)
    expected = dict(zip(found, (*row, audit, drain), strict=True))
    assert found == expected


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_listing_shows_only_readable_projects(caller: str, world: World) -> None:
    who = CALLERS[caller]
    listed = {job.project for job in world.service.list_jobs(who, limit=100).items}
    readable = {
        "platform": {"a", "b"},
        "site-operator": {"a", "b"},
        "none": set(),
    }.get(caller, {"a"})
    assert listed == readable
    # asking for another project by name shows nothing either
    asked = world.service.list_jobs(who, JobFilter(project="b"), limit=100).items
    assert bool(asked) == ("b" in readable)


def test_owner_and_event_actor_are_the_principal(
    service: Service, make_spec: Callable[..., JobSpec]
) -> None:
    alice = principal("alice", {"a": Role.MEMBER})
    job = service.submit(alice, make_spec(project="a"))
    assert job.owner == "alice"
    assert {e.actor for e in service.events(alice, job.job_id)} == {"alice"}
    service.cancel(alice, job.job_id)
    kinds = {e.kind: e.actor for e in service.events(alice, job.job_id)}
    assert kinds["cancel_requested"] == "alice"


def test_a_hidden_job_reads_exactly_like_a_missing_one(world: World) -> None:
    who = CALLERS["member"]
    with pytest.raises(NotFoundError) as hidden:
        world.service.get(who, world.other_project)
    with pytest.raises(NotFoundError) as missing:
        world.service.get(who, "jzzzzzzzzz")
    assert str(hidden.value).replace(world.other_project, "X") == str(missing.value).replace(
        "jzzzzzzzzz", "X"
    )


def test_an_idempotency_key_of_another_principal_is_refused(
    service: Service, make_spec: Callable[..., JobSpec]
) -> None:
    alice = principal("alice", {"a": Role.MEMBER})
    bob = principal("bob", {"a": Role.MEMBER})
    first = service.submit(alice, make_spec(project="a"), idempotency_key="k1")
    again = service.submit(alice, make_spec(project="a"), idempotency_key="k1")
    assert again.job_id == first.job_id
    with pytest.raises(ForbiddenError) as refused:
        service.submit(bob, make_spec(project="a"), idempotency_key="k1")
    assert first.job_id not in str(refused.value)


def test_tokens_are_listed_and_revoked_only_by_their_projects_admins(service: Service) -> None:
    admin_a = principal("adm", {"a": Role.ADMIN})
    admin_b = principal("bdm", {"b": Role.ADMIN})
    _, record = service.create_token(admin_a, "a", Role.MEMBER, 3600, subject="x")
    assert [t.token_id for t in service.list_tokens(admin_a)] == [record.token_id]
    assert service.list_tokens(admin_b) == []
    with pytest.raises(NotFoundError):
        service.revoke_token(admin_b, record.token_id)
    with pytest.raises(ForbiddenError):
        service.create_token(admin_a, SITE, Role.ADMIN, 3600)
    assert service.revoke_token(admin_a, record.token_id).revoked_at is not None
    assert PLATFORM.platform_admin
    assert len(service.list_tokens(PLATFORM)) == 1
