"""``RemoteClient`` on canned answers: problem+json becomes the embedded client's exceptions
(so the CLI prints the same line and exit code), pages are followed by cursor, headers are
sent. The real server is exercised in tests/api/test_api_v1*.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hpcbridge.client import RemoteClient
from hpcbridge.errors import (
    AuthenticationError,
    BackendError,
    ConfigError,
    ForbiddenError,
    IdempotencyConflictError,
    NotFoundError,
    QuotaExceededError,
    SpecError,
)
from hpcbridge.spec import load_spec_document
from hpcbridge.states import JobState
from hpcbridge.store import JobFilter

PROBLEM = "application/problem+json"


def _job(job_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "name": "n",
        "project": "p",
        "workload_class": "batch",
        "backend": "local",
        "state": "queued",
        "created_at": 1.0,
        "updated_at": 1.0,
    } | fields


def _remote(handler: Callable[[httpx.Request], httpx.Response]) -> RemoteClient:
    return RemoteClient("http://server", "hpcb_x", transport=httpx.MockTransport(handler))


def _problem(status: int, slug: str, **extra: Any) -> httpx.Response:
    body = {"type": f"urn:hpcbridge:problem:{slug}", "title": "t", "status": status}
    return httpx.Response(
        status,
        json=body | {"detail": f"{slug} detail"} | extra.pop("body", {}),
        headers={"content-type": PROBLEM, **extra},
    )


@pytest.mark.parametrize(
    ("response", "expected", "exit_code"),
    [
        (_problem(401, "unauthenticated"), AuthenticationError, 4),
        (_problem(403, "forbidden"), ForbiddenError, 4),
        (_problem(404, "not-found"), NotFoundError, 3),
        (_problem(409, "idempotency-conflict"), IdempotencyConflictError, 2),
        (_problem(422, "invalid-spec", body={"problems": ["name: bad"]}), SpecError, 2),
        (_problem(429, "quota-exceeded", **{"Retry-After": "7"}), QuotaExceededError, 5),
        (_problem(400, "invalid-request"), ConfigError, 2),
        (httpx.Response(502, text="bad gateway"), BackendError, 1),
    ],
)
def test_problems_become_the_same_exceptions(
    response: httpx.Response, expected: type[Exception], exit_code: int
) -> None:
    with _remote(lambda _: response) as remote, pytest.raises(expected) as caught:
        remote.get("j1")
    error = caught.value
    assert getattr(error, "exit_code", None) == exit_code
    if isinstance(error, QuotaExceededError):
        assert error.retry_after_s == 7
    if isinstance(error, SpecError):
        assert error.problems == ["name: bad"]


def test_list_follows_cursors_and_sends_filters() -> None:
    seen: list[httpx.QueryParams] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        assert request.headers["Authorization"] == "Bearer hpcb_x"
        if request.url.params.get("cursor") is None:
            return httpx.Response(200, json={"items": [_job("j3"), _job("j2")], "next_cursor": "c"})
        return httpx.Response(200, json={"items": [_job("j1")], "next_cursor": None})

    with _remote(handler) as remote:
        jobs = remote.list_jobs(JobFilter(project="p", states=frozenset({JobState.QUEUED})))
    assert [j.job_id for j in jobs] == ["j1", "j2", "j3"]  # oldest first, like Client
    assert seen[0].get("project") == "p" and seen[0].get_list("state") == ["queued"]
    assert seen[1].get("cursor") == "c"


def test_newest_jobs_stops_at_the_limit() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["limit"] == "2"
        return httpx.Response(200, json={"items": [_job("j3"), _job("j2")], "next_cursor": "c"})

    with _remote(handler) as remote:
        assert [j.job_id for j in remote.newest_jobs(JobFilter(limit=2))] == ["j3", "j2"]


def test_submit_sends_the_spec_and_the_idempotency_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Idempotency-Key"] == "k1"
        assert json.loads(request.content)["name"] == "hello"
        return httpx.Response(201, json=_job("j9", name="hello"))

    spec = load_spec_document(
        {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": "hello", "command": ["true"]},
        source="test",
    )
    with _remote(handler) as remote:
        job = remote.submit(spec, idempotency_key="k1")
    assert (job.job_id, job.state) == ("j9", JobState.QUEUED)


def test_an_unreachable_server_is_one_clear_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with _remote(handler) as remote, pytest.raises(BackendError, match="cannot reach"):
        remote.get("j1")


def test_a_server_that_is_no_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="not an http"):
        RemoteClient("localhost:8080", None)
