"""The remote client and the embedded one answer with equal records for the same jobs:
the real server on 127.0.0.1 in front of the embedded client's store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hpcbridge.api import Runtime, ServeOptions, create_app
from hpcbridge.client import Client, RemoteClient
from hpcbridge.config import Settings
from hpcbridge.provenance._origin import REDACTED
from hpcbridge.security import SITE, Principal, Role
from hpcbridge.service import Service
from hpcbridge.spec import load_spec_document
from hpcbridge.store import JobFilter
from tests.api.conftest import serve
from tests.conftest import spec_document


@dataclass
class Both:
    embedded: Client
    remote: RemoteClient


@pytest.fixture
def both(settings: Settings) -> Iterator[Both]:
    runtime = Runtime(settings, ServeOptions())
    service = Service(runtime.client.store, settings, client=runtime.client)
    token, _ = service.create_token(Principal.local_user(), SITE, Role.ADMIN, 3600)
    for served in serve(runtime, app=create_app(runtime, service=service)):
        with RemoteClient(str(served.http.base_url), token) as remote:
            yield Both(runtime.client, remote)


def test_both_clients_give_equal_jobs_spec_version_and_owner_included(both: Both) -> None:
    sweep = load_spec_document(
        spec_document(
            name="sweep",
            project="p",
            array={"params": {"x": ["0", "1"]}},
            command=["sh", "-c", "exit $0", "{x}"],
            retry={"max_attempts": 1},
        ),
        source="test",
    )
    job = both.remote.submit(sweep, idempotency_key="parity-1")
    done = both.remote.wait([job.job_id], timeout_s=60)[0]
    assert done.spec and done.version > 0 and done.owner
    assert done == both.embedded.get(job.job_id)
    assert both.remote.tasks(job.job_id) == both.embedded.tasks(job.job_id)
    query = JobFilter(top_level_only=True, limit=10)
    assert both.remote.newest_jobs(query) == both.embedded.newest_jobs(query)


def test_the_remote_spec_hides_values_of_secret_looking_variables(both: Both) -> None:
    spec = load_spec_document(
        spec_document(name="env", env={"API_TOKEN": "s3cret", "MODE": "fast"}), source="test"
    )
    job = both.remote.submit(spec)
    env = both.remote.get(job.job_id).spec["env"]
    assert env == {"API_TOKEN": REDACTED, "MODE": "fast"}
    assert both.embedded.get(job.job_id).spec["env"]["API_TOKEN"] == "s3cret"
