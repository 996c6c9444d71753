"""slurmrestd over HTTP with a JWT: the Transport for a control plane off the cluster.

The server's API versions are read once from ``/openapi/v3``; hpcbridge speaks the newest
it shares with the server (``_rest_versions``: v0.0.38 for Slurm 22.05-23.11, v0.0.40 and
v0.0.41 for 23.11-25.05). Tokens come from
``token_command`` (e.g. ``scontrol token lifespan=3600`` run where Slurm is) or a fixed
``token``, and are renewed at half their lifespan or when the server refuses them.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from hpcbridge.backends.slurm._call import call, is_transient
from hpcbridge.backends.slurm._config import ClusterConfig
from hpcbridge.backends.slurm._parse import (
    json_errors,
    parse_nodes_json,
    parse_rest_partitions,
    parse_sacct_json,
    parse_squeue_json,
)
from hpcbridge.backends.slurm._preflight import parse_rest_licences
from hpcbridge.backends.slurm._records import JobRecord, NodeRecord, PartitionRecord
from hpcbridge.backends.slurm._render import BatchJob
from hpcbridge.backends.slurm._rest_versions import (
    SUPPORTED_VERSIONS,
    choose_version,
    new_style,
    submit_body,
)
from hpcbridge.backends.slurm._transport import array_job_ids
from hpcbridge.errors import (
    BackendError,
    PermanentBackendError,
    TransientBackendError,
    UncertainSubmissionError,
)

ACCOUNTING_CHUNK = 500
"""Job ids per ``/slurmdb/jobs`` request (they travel in the URL)."""


def offered_versions(openapi: Mapping[str, Any]) -> list[str]:
    """API versions in an OpenAPI document's paths: ``['v0.0.36', 'v0.0.37', ...]``."""
    versions = set()
    for path in openapi.get("paths") or {}:
        parts = str(path).strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "slurm" and parts[1].startswith("v"):
            versions.add(parts[1])
    return sorted(versions, key=lambda v: tuple(int(n) for n in v[1:].split(".") if n.isdigit()))


TOKEN_MARGIN_S = 60.0
"""A token that expires sooner than this is renewed before use."""


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (read, not verified), or None if it is not a JWT.

    slurmrestd 22.05 does not answer 401 to a bad or expired token: it passes the request
    on and slurmctld's refusal comes back as HTTP 500 "Failed while looking for jobs",
    the same answer as a controller that is down. So expiry is checked here, before use.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


def parse_token(text: str) -> str:
    """A token command's output: the JWT alone, or ``SLURM_JWT=...``."""
    for raw in text.splitlines():
        line = raw.strip()
        if line:
            return line.removeprefix("SLURM_JWT=")
    return ""


EMPTY_RESULT_ERRORS = frozenset({9003})
"""Error numbers slurmrestd 22.05 uses for "Nothing found": an empty answer, not a failure."""


def _drop_empty_result(document: dict[str, Any]) -> None:
    errors = document.get("errors") or []
    kept = [
        error
        for error in errors
        if not (
            isinstance(error, Mapping)
            and (
                error.get("error_number") in EMPTY_RESULT_ERRORS
                or str(error.get("description", "")).startswith("Nothing found")
            )
        )
    ]
    if len(kept) != len(errors):
        document["errors"] = kept


class RestTransport:
    def __init__(
        self,
        cluster: ClusterConfig,
        *,
        env: Mapping[str, str],
        client: httpx.Client | None = None,
    ) -> None:
        if cluster.rest_url is None or cluster.rest_user is None:
            raise PermanentBackendError(
                f"cluster {cluster.name}: transport rest needs rest_url and rest_user"
            )
        self.cluster = cluster
        self.commands = 0
        self._env = cluster.env(dict(env))
        # Slurm's own clients read SLURM_JWT; cluster.env() keeps SLURM_* from commands.
        self._env_token = env.get("SLURM_JWT") or None
        self._http = client or httpx.Client(
            base_url=cluster.rest_url.rstrip("/"), timeout=cluster.command_timeout_s
        )
        self._token: str | None = None
        self._token_at = 0.0
        self._version: str | None = None

    # -- plumbing ----------------------------------------------------------------------------

    def _fresh_token(self, force: bool = False) -> str:
        if self.cluster.token and not self.cluster.token_command:
            return self._checked(self.cluster.token, where="the token in the clusters file")
        if not self.cluster.token_command:
            if self._env_token is None:
                raise PermanentBackendError(
                    f"cluster {self.cluster.name}: transport rest has no token",
                    hint="set token_command (e.g. [scontrol, token, lifespan=3600]) or token "
                    "in the clusters file, or SLURM_JWT in hpcbridge's environment",
                )
            return self._checked(self._env_token, where="the token in SLURM_JWT")
        age = time.monotonic() - self._token_at
        expiry = token_expiry(self._token) if self._token else None
        if (
            self._token
            and not force
            and age < self.cluster.token_lifespan_s / 2
            and expiry is not None
            and expiry - time.time() > TOKEN_MARGIN_S
        ):
            return self._token
        out = call(
            self.cluster.token_command,
            env=self._env,
            timeout_s=self.cluster.command_timeout_s,
        )
        token = parse_token(out)
        if not token:
            raise PermanentBackendError(
                f"cluster {self.cluster.name}: token_command printed no token",
                argv=self.cluster.token_command,
                stdout=out,
                hint="it must print the JWT, e.g. scontrol token lifespan=3600",
            )
        checked = self._checked(token, where="the token from token_command")
        self._token, self._token_at = checked, time.monotonic()
        return token

    def _checked(self, token: str, *, where: str) -> str:
        expiry = token_expiry(token)
        if expiry is None:
            raise PermanentBackendError(
                f"cluster {self.cluster.name}: {where} is not a JWT",
                hint="give a token from 'scontrol token', or a token_command that prints one",
            )
        if expiry - time.time() <= TOKEN_MARGIN_S:
            raise PermanentBackendError(
                f"cluster {self.cluster.name}: {where} expires "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(expiry))}",
                hint="use token_command so hpcbridge renews tokens itself, or a longer lifespan",
            )
        return token

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        json_body: Any = None,
        counted: bool = True,
    ) -> dict[str, Any]:
        if counted:
            self.commands += 1
        what = f"{method} {self.cluster.rest_url}{path}"
        query = tuple(params.items()) if isinstance(params, Mapping) else tuple(params or ())
        for attempt in range(2):
            headers = {
                "X-SLURM-USER-NAME": str(self.cluster.rest_user),
                "X-SLURM-USER-TOKEN": self._fresh_token(force=attempt > 0),
            }
            try:
                response = self._http.request(
                    method, path, params=query or None, json=json_body, headers=headers
                )
            except httpx.TransportError as exc:
                raise TransientBackendError(
                    f"{what} failed: {exc!r}",
                    argv=[method, path],
                    hint="slurmrestd is unreachable; hpcbridge will ask again",
                ) from exc
            if response.status_code in (401, 403) and attempt == 0:
                continue  # the token may have expired: renew it once
            return self._answer(what, method, path, response)
        raise PermanentBackendError(
            f"{what}: slurmrestd refused the token for {self.cluster.rest_user}",
            argv=[method, path],
            hint="check rest_user and token_command (the token must belong to rest_user)",
        )

    def _answer(
        self, what: str, method: str, path: str, response: httpx.Response
    ) -> dict[str, Any]:
        try:
            document = response.json()
        except ValueError:
            document = {"errors": [{"description": response.text.strip() or "(empty answer)"}]}
        if not isinstance(document, dict):
            document = {"errors": [{"description": str(document)[:200]}]}
        if response.status_code < 400:
            _drop_empty_result(document)
        errors = json_errors(document)
        if response.status_code < 400 and not errors:
            return document
        said = "; ".join(errors) or f"HTTP {response.status_code}"
        message = f"{what} answered HTTP {response.status_code}: {said}"
        transient = (
            is_transient(said)
            or response.status_code in (502, 503, 504)
            or (response.status_code >= 500 and method == "GET")
        )
        kind: type[BackendError] = TransientBackendError if transient else PermanentBackendError
        raise kind(
            message,
            argv=[method, path],
            returncode=response.status_code,
            stdout=response.text[:2000],
        )

    @property
    def version(self) -> str:
        """The newest API version the server and hpcbridge both speak, read once from the
        server's OpenAPI document (``/openapi/v3``; ``/openapi`` on servers without it)."""
        if self._version is None:
            try:
                document = self._request("GET", "/openapi/v3", counted=False)
            except PermanentBackendError as exc:
                if exc.returncode != 404:
                    raise
                document = self._request("GET", "/openapi", counted=False)
            offered = offered_versions(document)
            chosen = choose_version(offered)
            if chosen is None:
                raise PermanentBackendError(
                    f"slurmrestd at {self.cluster.rest_url} offers API "
                    f"{', '.join(offered) or '(none)'}; hpcbridge speaks "
                    f"{', '.join(SUPPORTED_VERSIONS)}",
                    hint="load one of those data parsers in slurmrestd (-d, or -s with the "
                    "openapi plugins) or use transport: cli",
                )
            self._version = chosen
        return self._version

    def _slurm(self, tail: str) -> str:
        return f"/slurm/{self.version}/{tail}"

    def _slurmdb(self, tail: str) -> str:
        return f"/slurmdb/{self.version}/{tail}"

    def _list_param(self, name: str, values: Sequence[str]) -> list[tuple[str, str]]:
        """A query parameter with several values. slurmrestd 22.05 (v0.0.38) takes one
        comma-separated value (the comma sent as %2C); 24.11 refuses a comma in either form
        ("Unable to parse query", "not RFC7320 compliant") and takes the name repeated."""
        if new_style(self.version):
            return [(name, value) for value in values]
        return [(name, ",".join(values))]

    # -- Transport -----------------------------------------------------------------------------

    def submit(self, job: BatchJob) -> str:
        try:
            answer = self._request(
                "POST",
                self._slurm("job/submit"),
                json_body=submit_body(job, self.version),
            )
        except PermanentBackendError as exc:
            raise PermanentBackendError(
                f"slurmrestd refused the job: {exc.message}",
                argv=exc.argv,
                returncode=exc.returncode,
                stdout=exc.stdout,
                hint="fix the spec (partition, licences, resources) or the cluster config",
            ) from exc
        job_id = answer.get("job_id")
        if not isinstance(job_id, int):
            raise UncertainSubmissionError(
                f"slurmrestd accepted the job but returned no job id: {str(answer)[:500]}",
                hint="hpcbridge looks for the job by its name before submitting again",
            )
        return str(job_id)

    def queue(self) -> list[JobRecord]:
        return parse_squeue_json(self._request("GET", self._slurm("jobs")))

    def own_jobs(self) -> list[JobRecord]:
        """v0.0.38's ``/jobs`` has no user filter (only ``update_time``): the whole table,
        kept to ``rest_user``'s jobs here. The poll interval is what spares slurmctld."""
        user = self.cluster.rest_user
        return [record for record in self.queue() if not record.user or record.user == user]

    def accounting(self, job_ids: Sequence[str]) -> list[JobRecord]:
        records: list[JobRecord] = []
        ids = array_job_ids(job_ids)
        for start in range(0, len(ids), ACCOUNTING_CHUNK):
            chunk = ids[start : start + ACCOUNTING_CHUNK]
            # ``step`` filters by job id.
            answer = self._request(
                "GET", self._slurmdb("jobs"), params=self._list_param("step", chunk)
            )
            records += parse_sacct_json(answer)
        return records

    def accounting_by_name(self, names: Sequence[str], since_days: int) -> list[JobRecord]:
        if not names:
            return []
        start = time.strftime("%Y-%m-%d", time.localtime(time.time() - since_days * 86400))
        answer = self._request(
            "GET",
            self._slurmdb("jobs"),
            params=[*self._list_param("job_name", names), ("start_time", start)],
        )
        return parse_sacct_json(answer)

    def cancel(self, native_id: str, signal: str | None = None) -> None:
        params = {"signal": signal} if signal else None
        try:
            self._request("DELETE", self._slurm(f"job/{native_id}"), params=params)
        except PermanentBackendError as exc:
            if "already completing or completed" in exc.message or "Invalid job id" in exc.message:
                return  # nothing left to stop: cancelling is idempotent
            raise

    def requeue(self, native_id: str) -> None:
        raise PermanentBackendError(
            f"cluster {self.cluster.name}: slurmrestd {self.version} cannot requeue jobs",
            hint="requeue with transport: cli (scontrol requeue) on a login node",
        )

    def nodes(self) -> list[NodeRecord]:
        return parse_nodes_json(self._request("GET", self._slurm("nodes")))

    def partitions(self) -> list[PartitionRecord]:
        return parse_rest_partitions(self._request("GET", self._slurm("partitions")))

    def licences(self) -> dict[str, int]:
        return parse_rest_licences(self._request("GET", self._slurm("licenses")))

    def test_submit(self, job: BatchJob) -> str | None:
        """v0.0.38 has no test-only submission: the cluster facts alone are checked."""
        return None

    def update_node(self, node: str, state: str, reason: str | None) -> None:
        raise PermanentBackendError(
            f"cluster {self.cluster.name}: slurmrestd {self.version} cannot change node "
            f"states (drain/resume {node})",
            hint="use transport: cli on a login node, or Slurm 23.02+ (API v0.0.39)",
        )

    def close(self) -> None:
        self._http.close()
