"""Schemathesis against /api/v1/openapi.json on a real server (derandomized, so seeded and
repeatable; well under a minute): no 5xx, and every answer matches the document.

The server runs no reconciler, so the jobs it accepts never run (their commands are made up
by the fuzzer); nodes come from a stand-in, never a real scheduler.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from hpcbridge.api import Runtime, ServeOptions, create_app
from hpcbridge.config import Settings
from hpcbridge.security import Principal, Role
from hpcbridge.service import Service
from tests.api.conftest import serve

EXAMPLES = 40
"""Cases per operation; about 20 operations stay well under a minute."""


class _Nodes:
    """A scheduler's node calls, answered from memory."""

    def nodes(self, cluster: str | None) -> list[Any]:
        return []

    def drain(self, node: str, reason: str, cluster: str | None) -> None:
        return None

    def resume(self, node: str, cluster: str | None) -> None:
        return None

    def close(self) -> None:
        return None


@pytest.fixture
def served_api(settings: Settings) -> Iterator[tuple[str, str]]:
    runtime = Runtime(settings, ServeOptions(reconcile=False))
    service = Service(
        runtime.client.store,
        settings,
        client=runtime.client,
        slurm=_Nodes,  # type: ignore[arg-type]
    )
    admin = Principal.local_user()
    token = service.create_token(admin, "*", Role.ADMIN, 3600, subject="fuzzer")[0]
    for served in serve(runtime, app=create_app(runtime, service=service, start=False)):
        yield str(served.http.base_url), token


def test_api_matches_its_openapi_document(served_api: tuple[str, str]) -> None:
    base, token = served_api
    api_schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the document itself is valid
        operations.append(result.ok())
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,  # seeded: the same cases every run
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            # A schema-valid spec may still be refused (422): a backend cannot honour it.
            case.call_and_validate(
                base_url=base, headers=headers, excluded_checks=[positive_data_acceptance]
            )

        check()
