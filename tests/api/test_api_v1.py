"""``/api/v1`` over HTTP (uvicorn on 127.0.0.1, httpx): bearer auth with one 401 body for
every failure, problem+json errors, submission with idempotency keys, cursor pages, logs
(tail and follow), cancel, requeue, why, tokens, audit, another project's job as 404."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hpcbridge.api import Runtime, ServeOptions, create_app
from hpcbridge.api._app import bootstrap
from hpcbridge.api._bootstrap import BOOTSTRAP_FILE
from hpcbridge.config import Settings
from hpcbridge.security import Principal, Role
from hpcbridge.service import Service
from hpcbridge.telemetry import configure_tracing, shutdown_tracing
from tests.api.conftest import Served, serve, wait_for

PROBLEM = "application/problem+json"


@dataclass
class Api:
    served: Served
    service: Service
    tokens: dict[str, str]

    def call(self, who: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.served.http.request(method, f"/api/v1{path}", headers=headers, **kwargs)


def job_document(name: str = "hello", project: str = "a", **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": name,
        "project": project,
        "command": ["sh", "-c", "echo out-$0; echo err-$0 >&2", name],
    } | fields


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    runtime = Runtime(settings, ServeOptions())
    service = Service(runtime.client.store, settings, client=runtime.client)
    admin = Principal.local_user()
    tokens = {}
    for who, project, role in (
        ("admin_a", "a", Role.ADMIN),
        ("operator_a", "a", Role.OPERATOR),
        ("member_a", "a", Role.MEMBER),
        ("viewer_a", "a", Role.VIEWER),
        ("member_b", "b", Role.MEMBER),
    ):
        tokens[who] = service.create_token(admin, project, role, 3600, subject=who)[0]
    for served in serve(runtime, app=create_app(runtime, service=service)):
        yield Api(served, service, tokens)


def _finished(api: Api, who: str, job_id: str) -> Callable[[], bool]:
    def check() -> bool:
        state = api.call(who, "GET", f"/jobs/{job_id}").json()["state"]
        return state in ("succeeded", "failed", "cancelled")

    return check


def test_every_authentication_failure_gets_the_same_answer(api: Api) -> None:
    revoked = api.call("admin_a", "POST", "/tokens", json={"project": "a", "role": "viewer"})
    raw = revoked.json()["token"]
    assert api.call("admin_a", "DELETE", f"/tokens/{revoked.json()['token_id']}").is_success
    attempts = [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer hpcb_not-a-real-token"},
        {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
        {"Authorization": f"Bearer {raw}"},
    ]
    answers = [api.call(None, "GET", "/jobs", headers=h) for h in attempts]
    assert {a.status_code for a in answers} == {401}
    assert len({a.content for a in answers}) == 1
    assert answers[0].headers["content-type"] == PROBLEM
    assert answers[0].headers["www-authenticate"].startswith("Bearer")
    assert raw not in str(api.service.store.audit_records())  # stored only as a hash


def test_submit_run_read_and_logs(api: Api) -> None:
    created = api.call("member_a", "POST", "/jobs", json=job_document())
    assert created.status_code == 201, created.text
    job = created.json()
    assert created.headers["location"] == f"/api/v1/jobs/{job['job_id']}"
    assert (job["project"], job["owner"]) == ("a", "member_a")
    wait_for(_finished(api, "member_a", job["job_id"]))

    path = f"/jobs/{job['job_id']}"
    assert api.call("viewer_a", "GET", path).json()["state"] == "succeeded"
    (attempt,) = api.call("viewer_a", "GET", f"{path}/attempts").json()
    assert (attempt["number"], attempt["exit_code"]) == (1, 0)
    kinds = [e["kind"] for e in api.call("viewer_a", "GET", f"{path}/events").json()]
    assert "transition" in kinds
    tail = api.call("viewer_a", "GET", f"{path}/logs", params={"tail": 5}).json()
    assert (tail["exists"], tail["lines"]) == (True, ["out-hello"])
    err = api.call("viewer_a", "GET", f"{path}/logs", params={"stream": "stderr"}).json()
    assert err["lines"] == ["err-hello"]
    followed = api.call("viewer_a", "GET", f"{path}/logs", params={"follow": "true"})
    assert followed.text == "out-hello\n"
    why = api.call("viewer_a", "GET", f"{path}/why").json()
    assert why["job_id"] == job["job_id"] and why["summary"]


def test_idempotency_key_gives_one_job_and_refuses_another_spec(api: Api) -> None:
    key = {"Idempotency-Key": "ci-42"}
    first = api.call("member_a", "POST", "/jobs", json=job_document(), headers=key)
    again = api.call("member_a", "POST", "/jobs", json=job_document(), headers=key)
    assert first.json()["job_id"] == again.json()["job_id"]
    other = api.call("member_a", "POST", "/jobs", json=job_document("other"), headers=key)
    assert other.status_code == 409
    assert other.headers["content-type"] == PROBLEM
    assert other.json()["type"].endswith("idempotency-conflict")
    assert "new key" in other.json()["detail"]


def test_invalid_spec_is_a_problem_naming_the_field(api: Api) -> None:
    answer = api.call("member_a", "POST", "/jobs", json=job_document(resoures={"cpus": 1}))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert "did you mean 'resources'" in answer.json()["detail"]
    bad_json = api.call(
        "member_a", "POST", "/jobs", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 422 and bad_json.headers["content-type"] == PROBLEM


def test_another_projects_job_is_not_found_and_roles_hold(api: Api) -> None:
    job_id = api.call("member_a", "POST", "/jobs", json=job_document()).json()["job_id"]
    for path in ("", "/attempts", "/events", "/logs", "/why"):
        answer = api.call("member_b", "GET", f"/jobs/{job_id}{path}")
        assert answer.status_code == 404, (path, answer.text)
    assert api.call("member_b", "POST", f"/jobs/{job_id}/cancel").status_code == 404
    assert api.call("member_b", "GET", "/jobs").json()["items"] == []
    # a viewer reads but does not submit or cancel; nobody submits into another project
    assert api.call("viewer_a", "POST", "/jobs", json=job_document()).status_code == 403
    assert api.call("viewer_a", "POST", f"/jobs/{job_id}/cancel").status_code == 403
    into_a = api.call("member_b", "POST", "/jobs", json=job_document(project="a"))
    assert into_a.status_code == 403 and into_a.headers["content-type"] == PROBLEM
    high = api.call("member_a", "POST", "/jobs", json=job_document(priority=50))
    assert high.status_code == 403
    assert api.call("member_a", "GET", "/nodes").status_code == 403
    assert api.call("member_a", "POST", "/nodes/n1/drain").status_code == 403
    assert api.call("member_a", "GET", "/audit").status_code == 403


def test_cursor_pages_cover_every_job_once(api: Api) -> None:
    made = [
        api.call("member_a", "POST", "/jobs", json=job_document(f"j{i}")).json()["job_id"]
        for i in range(5)
    ]
    seen: list[str] = []
    answer = api.call("viewer_a", "GET", "/jobs", params={"limit": 2})
    while True:
        body = answer.json()
        seen += [job["job_id"] for job in body["items"]]
        if not body["next_cursor"]:
            assert "link" not in answer.headers
            break
        link = answer.headers["link"]
        assert link.endswith('>; rel="next"') and body["next_cursor"] in link
        following = httpx.URL(link[1 : link.index(">")])
        answer = api.call("viewer_a", "GET", "/jobs", params=following.params)
    assert seen == list(reversed(made))  # newest first, each once
    bad = api.call("viewer_a", "GET", "/jobs", params={"cursor": "nonsense"})
    assert bad.status_code == 400 and "next_cursor" in bad.json()["detail"]
    named = api.call("viewer_a", "GET", "/jobs", params={"name": "j3"}).json()["items"]
    assert [job["job_id"] for job in named] == [made[3]]


def test_cancel_requeue_tokens_and_audit(api: Api) -> None:
    sleeper = job_document("sleeper", command=["sleep", "60"])
    job_id = api.call("member_a", "POST", "/jobs", json=sleeper).json()["job_id"]
    cancelled = api.call("operator_a", "POST", f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"]
    wait_for(_finished(api, "viewer_a", job_id))
    requeue = api.call("operator_a", "POST", f"/jobs/{job_id}/requeue")
    assert requeue.status_code == 409 and "retry_wait" in requeue.json()["detail"]

    listed = api.call("admin_a", "GET", "/tokens").json()
    assert {t["subject"] for t in listed} >= {"member_a", "viewer_a"}
    assert all("token_hash" not in t and "token" not in t for t in listed)
    bad_role = api.call("admin_a", "POST", "/tokens", json={"project": "a", "role": "king"})
    assert bad_role.status_code == 422 and "viewer" in bad_role.json()["detail"]
    escalate = api.call("admin_a", "POST", "/tokens", json={"project": "b", "role": "viewer"})
    assert escalate.status_code == 403

    actions = [r["action"] for r in api.call("admin_a", "GET", "/audit").json()]
    assert {"job.submit", "job.cancel", "job.requeue", "token.create"} <= set(actions)
    only_cancel = api.call("admin_a", "GET", "/audit", params={"action": "job.cancel"}).json()
    assert [r["target"] for r in only_cancel] == [job_id]
    assert api.call("admin_a", "GET", "/audit/verify").status_code == 403  # one project's admin


def test_openapi_document_and_problem_for_unknown_routes(api: Api) -> None:
    document = api.served.http.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}/logs",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/nodes/{name}/drain",
        "/api/v1/tokens/{token_id}",
        "/api/v1/audit",
        "/api/v1/slo",
    ):
        assert path in paths, path
    assert "Idempotency-Key" in str(paths["/api/v1/jobs"]["post"]["parameters"])
    missing = api.served.http.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


def test_a_platform_admin_verifies_the_audit_chain(api: Api) -> None:
    admin = Principal.local_user()
    api.tokens["platform"] = api.service.create_token(admin, "*", Role.ADMIN, 60)[0]
    api.call("member_a", "POST", "/jobs", json=job_document())
    report = api.call("platform", "GET", "/audit/verify").json()
    assert report["intact"] and report["records"] >= 7 and report["first_bad_seq"] is None


def test_bootstrap_token_is_written_once_for_its_owner_only(settings: Settings) -> None:
    runtime = Runtime(settings, ServeOptions(reconcile=False))
    try:
        service = Service(runtime.client.store, settings, client=runtime.client)
        bootstrap(service)
        path = settings.home / BOOTSTRAP_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        raw = path.read_text().strip()
        principal = service.authenticate(raw)
        assert principal.platform_admin
        path.unlink()
        bootstrap(service)  # a token exists now: not written again
        assert not path.exists()
    finally:
        runtime.client.close()


def test_requests_are_traced_with_the_job_id_in_the_route(api: Api) -> None:
    memory = InMemorySpanExporter()
    configure_tracing(True, exporter=memory, batch=False)
    try:
        api.call("viewer_a", "GET", "/jobs/jmissing")
    finally:
        shutdown_tracing()
    requests = [s for s in memory.get_finished_spans() if s.name == "hpcbridge.api_request"]
    (traced,) = requests
    attributes = dict(traced.attributes or {})
    assert attributes["hpcbridge.route"] == "/api/v1/jobs/jmissing"
    assert (attributes["hpcbridge.method"], attributes["hpcbridge.status"]) == ("GET", 404)


def test_a_quota_is_answered_429_with_retry_after(settings: Settings) -> None:
    limited = settings.model_copy(update={"quota_submissions_per_minute": 1})
    runtime = Runtime(limited, ServeOptions(reconcile=False))
    service = Service(runtime.client.store, limited, client=runtime.client)
    token = service.create_token(Principal.local_user(), "a", Role.MEMBER, 60)[0]
    for served in serve(runtime, app=create_app(runtime, service=service, start=False)):
        headers = {"Authorization": f"Bearer {token}"}
        first = served.http.post("/api/v1/jobs", json=job_document(), headers=headers)
        assert first.status_code == 201, first.text
        second = served.http.post("/api/v1/jobs", json=job_document("b"), headers=headers)
        assert second.status_code == 429, second.text
        assert second.headers["content-type"] == PROBLEM
        assert 1 <= int(second.headers["retry-after"]) <= 60
        assert second.json()["type"].endswith("quota-exceeded")
