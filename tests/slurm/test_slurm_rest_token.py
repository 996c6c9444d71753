"""The REST transport's token: SLURM_JWT from the environment when the clusters file gives
no token or token_command (as Slurm's own clients do); none at all is one clear error.
Pure: slurmrestd is an httpx mock."""

from __future__ import annotations

import time

import httpx
import pytest

from hpcbridge.backends.slurm import ClusterConfig
from hpcbridge.backends.slurm._rest import RestTransport
from hpcbridge.errors import PermanentBackendError

from .test_slurm_config import jwt

OPENAPI: dict[str, object] = {"paths": {"/slurm/v0.0.38/licenses": {}, "/slurmdb/v0.0.38/jobs": {}}}


def transport(env: dict[str, str], seen: list[str], **config: object) -> RestTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["X-SLURM-USER-TOKEN"])
        if request.url.path == "/openapi/v3":
            return httpx.Response(200, json=OPENAPI)
        return httpx.Response(200, json={"licenses": [{"LicenseName": "fluent", "Total": 4}]})

    cluster = ClusterConfig(
        name="c", transport="rest", rest_url="http://slurm:6820", rest_user="svc", **config
    )
    client = httpx.Client(base_url="http://slurm:6820", transport=httpx.MockTransport(answer))
    return RestTransport(cluster, env=env, client=client)


def test_slurm_jwt_from_the_environment() -> None:
    token = jwt(time.time() + 3600)
    seen: list[str] = []
    assert transport({"SLURM_JWT": token}, seen).licences() == {"fluent": 4}
    assert seen and set(seen) == {token}


def test_the_clusters_file_comes_first() -> None:
    mine, theirs = jwt(time.time() + 3600), jwt(time.time() + 7200)
    seen: list[str] = []
    transport({"SLURM_JWT": theirs}, seen, token=mine).licences()
    assert set(seen) == {mine}


def test_no_token_anywhere_says_where_to_put_one() -> None:
    with pytest.raises(PermanentBackendError, match="transport rest has no token") as caught:
        transport({}, []).licences()
    assert "SLURM_JWT" in str(caught.value.hint)


def test_an_expired_slurm_jwt_is_named() -> None:
    with pytest.raises(PermanentBackendError, match="the token in SLURM_JWT expires"):
        transport({"SLURM_JWT": jwt(time.time() - 10)}, []).licences()
