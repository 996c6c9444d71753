"""Cursor pages: newest first, every job once, unshifted by jobs added between pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hpcbridge.errors import InvalidRequestError
from hpcbridge.security import Role
from hpcbridge.service import Service
from hpcbridge.spec import JobSpec
from tests.service.conftest import Clock, principal


def test_pages_walk_every_job_once_newest_first_while_jobs_are_added(
    service: Service, clock: Clock, make_spec: Callable[..., JobSpec]
) -> None:
    me = principal("me", {"a": Role.MEMBER})
    created = []
    for index in range(7):
        clock.now += 1 if index % 3 else 0  # some share a timestamp: ties break by id
        created.append(service.submit(me, make_spec(project="a")).job_id)
    seen: list[str] = []
    page = service.list_jobs(me, limit=3)
    while True:
        seen += [job.job_id for job in page.items]
        clock.now += 10
        service.submit(me, make_spec(project="a"))  # newer: on no later page
        if page.next_cursor is None:
            break
        page = service.list_jobs(me, cursor=page.next_cursor, limit=3)
    newest_first = sorted(
        (service.get(me, j) for j in created), key=lambda j: (j.created_at, j.job_id), reverse=True
    )
    assert seen == [job.job_id for job in newest_first]


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", "WzFd"])
def test_a_cursor_not_given_out_is_refused(service: Service, cursor: str) -> None:
    with pytest.raises(InvalidRequestError, match="cursor"):
        service.list_jobs(principal("me", {"a": Role.VIEWER}), cursor=cursor)


@pytest.mark.parametrize("limit", [0, 1001])
def test_a_limit_out_of_range_is_refused(service: Service, limit: int) -> None:
    with pytest.raises(InvalidRequestError, match="limit"):
        service.list_jobs(principal("me", {"a": Role.VIEWER}), limit=limit)
