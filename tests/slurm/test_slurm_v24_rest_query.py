"""How the REST transport asks slurmdbd for several jobs: slurmrestd 24.11 answers "Unable to
parse query" (HTTP 400) to a comma in a query value and "not RFC7320 compliant" (HTTP 422)
to an encoded one, but takes the parameter repeated; 22.05 takes one comma-separated value.
Both seen on the live test clusters. Pure: a mock server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hpcbridge.backends.slurm import ClusterConfig
from hpcbridge.backends.slurm._rest import RestTransport

from .test_slurm_config import jwt

GOLDEN = Path(__file__).parent / "golden"
OPENAPI = {
    "v0.0.38": GOLDEN / "openapi_v3_paths.txt",
    "v0.0.41": GOLDEN / "rest_v0.0.41_live" / "openapi_v3_paths.txt",
}


def served(version: str, queries: list[list[tuple[str, str]]]) -> RestTransport:
    offered: dict[str, Any] = {"paths": dict.fromkeys(OPENAPI[version].read_text().split())}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/openapi/v3":
            return httpx.Response(200, json=offered)
        queries.append(list(request.url.params.multi_items()))
        return httpx.Response(200, json={"jobs": [], "errors": [], "warnings": []})

    cluster = ClusterConfig(name="c", transport="rest", rest_url="http://s:6820", rest_user="u")
    client = httpx.Client(base_url="http://s:6820", transport=httpx.MockTransport(answer))
    return RestTransport(cluster, env={"SLURM_JWT": jwt(time.time() + 3600)}, client=client)


@pytest.mark.parametrize(
    ("version", "steps", "names"),
    [
        ("v0.0.38", [("step", "7,8")], [("job_name", "hb-a,hb-b")]),
        ("v0.0.41", [("step", "7"), ("step", "8")], [("job_name", "hb-a"), ("job_name", "hb-b")]),
    ],
)
def test_several_jobs_in_one_query(
    version: str, steps: list[tuple[str, str]], names: list[tuple[str, str]]
) -> None:
    queries: list[list[tuple[str, str]]] = []
    transport = served(version, queries)
    assert transport.accounting(["7", "8_1", "8_2"]) == []
    assert transport.accounting_by_name(["hb-a", "hb-b"], since_days=3) == []
    assert queries[0] == steps
    assert queries[1][:-1] == names
    assert queries[1][-1][0] == "start_time"
