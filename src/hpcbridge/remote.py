"""A typed client of the REST API (``hpcbridge serve``) with the embedded ``Client``'s
methods: submit, get, tasks, list, attempts, events, cancel, wait, plus log tails and why.

Answers come back as the same record types (``Job``, ``Attempt``, ``Event``) and errors as
the same exceptions (``NotFoundError``, ``SpecError``, ...), so that callers and the CLI
treat an embedded and a remote installation alike. Re-exported as
``hpcbridge.client.RemoteClient``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from hpcbridge.errors import (
    AuthenticationError,
    BackendError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    HpcbridgeError,
    IdempotencyConflictError,
    NotFoundError,
    QuotaExceededError,
    SpecError,
)
from hpcbridge.spec import JobSpec
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import Attempt, Event, Job, JobFilter, JobId

API_PREFIX = "/api/v1"
_POLL_S = 0.5
_PAGE = 500


class RemoteClient:
    """Talks to ``server`` (``https://host:port``) with bearer ``token``."""

    def __init__(
        self,
        server: str,
        token: str | None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
    ) -> None:
        if not server.startswith(("http://", "https://")):
            raise ConfigError(
                f"server {server!r} is not an http(s) URL",
                hint="e.g. --server https://hpcbridge.example.org:8443",
            )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server + API_PREFIX,
            headers=headers,
            timeout=timeout_s,
            transport=transport,
            verify=verify,
        )

    # -- the embedded client's methods -----------------------------------------------------

    def submit(self, spec: JobSpec, *, idempotency_key: str | None = None) -> Job:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return job_of(self._call("POST", "/jobs", json=spec.to_document(), headers=headers))

    def get(self, job_id: str) -> Job:
        return job_of(self._call("GET", f"/jobs/{job_id}"))

    def list_jobs(self, query: JobFilter | None = None) -> list[Job]:
        """Every job ``query`` matches, oldest first (all pages)."""
        return list(reversed(self._pages(query or JobFilter(), limit=None)))

    def newest_jobs(self, query: JobFilter) -> list[Job]:
        """The newest ``query.limit`` jobs ``query`` matches, newest first."""
        return self._pages(query, limit=query.limit)

    def tasks(self, job_id: str) -> list[Job]:
        """An array job's tasks (none for other jobs), by index."""
        tasks = [job_of(t) for t in self._call("GET", f"/jobs/{job_id}/tasks")]
        return sorted(tasks, key=lambda t: -1 if t.task_index is None else t.task_index)

    def attempts(self, job_id: str) -> list[Attempt]:
        return [attempt_of(a) for a in self._call("GET", f"/jobs/{job_id}/attempts")]

    def events(self, job_id: str, *, after_seq: int = 0) -> list[Event]:
        found = self._call("GET", f"/jobs/{job_id}/events", params={"after_seq": after_seq})
        return [event_of(e) for e in found]

    def cancel(self, job_id: str) -> Job:
        return job_of(self._call("POST", f"/jobs/{job_id}/cancel"))

    def requeue(self, job_id: str) -> Job:
        return job_of(self._call("POST", f"/jobs/{job_id}/requeue"))

    def wait(
        self,
        job_ids: Sequence[str],
        *,
        timeout_s: float | None = None,
        on_cycle: Callable[[], None] | None = None,
    ) -> list[Job]:
        """Poll until every job is finished (the server's reconciler runs them)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        pending = list(job_ids)
        while pending:
            if not self.get(pending[0]).state.terminal:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError("timed out waiting for jobs to finish")
                if on_cycle is not None:
                    on_cycle()
                time.sleep(_POLL_S)
                continue
            pending.pop(0)
        return [self.get(job_id) for job_id in job_ids]

    # -- what only a remote client needs ---------------------------------------------------

    def log_tail(
        self, job_id: str, *, stream: str = "stdout", tail: int = 100, attempt: int | None = None
    ) -> dict[str, Any]:
        """``{job_id, attempt, stream, exists, lines}`` of the job's latest (or given) attempt."""
        params: dict[str, Any] = {"stream": stream, "tail": tail}
        if attempt is not None:
            params["attempt"] = attempt
        found: dict[str, Any] = self._call("GET", f"/jobs/{job_id}/logs", params=params)
        return found

    def follow_log(
        self, job_id: str, *, stream: str = "stdout", tail: int = 10_000
    ) -> Iterator[str]:
        """The log's text as the server streams it, until the job finishes."""
        params: dict[str, str | int] = {"stream": stream, "tail": tail, "follow": "true"}
        with self._http.stream(
            "GET", f"/jobs/{job_id}/logs", params=params, timeout=None
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise error_of(response)
            yield from response.iter_text()

    def why(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/jobs/{job_id}/why")
        return found

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _pages(self, query: JobFilter, *, limit: int | None) -> list[Job]:
        params: dict[str, Any] = {
            key: value
            for key, value in (
                ("project", query.project),
                ("name", query.name),
                ("owner", query.owner),
            )
            if value is not None
        }
        if query.states:
            params["state"] = sorted(state.value for state in query.states)
        found: list[Job] = []
        cursor: str | None = None
        while limit is None or len(found) < limit:
            page_size = _PAGE if limit is None else min(_PAGE, limit - len(found))
            page = self._call(
                "GET", "/jobs", params=params | {"limit": page_size, "cursor": cursor or None}
            )
            found.extend(job_of(item) for item in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return found

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        params = kwargs.pop("params", None)
        if params is not None:
            params = {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.request(method, path, params=params, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendError(
                f"cannot reach the hpcbridge server {self.server}: {exc}",
                hint="check --server / HPCBRIDGE_SERVER and that 'hpcbridge serve' runs there",
            ) from exc
        if response.status_code >= 400:
            raise error_of(response)
        return response.json() if response.content else None


def error_of(response: httpx.Response) -> HpcbridgeError:
    """The exception a problem+json answer stands for, with its detail as the message."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = str(body.get("detail") or f"the server answered {response.status_code}")
    status = response.status_code
    if status == 401:
        return AuthenticationError()
    if status == 403:
        return ForbiddenError(detail)
    if status == 404:
        return NotFoundError(detail)
    if status == 409:
        if "idempotency" in str(body.get("type", "")):
            return _RemoteIdempotencyConflictError(detail)
        return ConflictError(detail)
    if status == 422:
        return SpecError(detail, problems=list(body.get("problems") or ()))
    if status == 429:
        retry = float(response.headers.get("Retry-After", "1") or 1)
        return QuotaExceededError(detail, retry_after_s=retry, hint=f"retry in {retry:.0f} s")
    if status == 400:
        return ConfigError(detail)
    return BackendError(f"the server failed: {detail}", returncode=status)


class _RemoteIdempotencyConflictError(IdempotencyConflictError):
    """The server's IdempotencyConflictError, its detail as the message."""

    def __init__(self, detail: str) -> None:
        HpcbridgeError.__init__(self, detail)


def _opt(value: Any, kind: Callable[[Any], Any]) -> Any:
    return None if value is None else kind(value)


def job_of(data: Mapping[str, Any]) -> Job:
    return Job(
        job_id=JobId(data["job_id"]),
        name=data["name"],
        project=data["project"],
        workload_class=data["workload_class"],
        backend=data["backend"],
        spec=dict(data.get("spec") or {}),
        state=JobState(data["state"]),
        version=data.get("version", 0),
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        priority=data.get("priority", 0),
        tags=dict(data.get("tags") or {}),
        cluster=data.get("cluster"),
        parent_id=_opt(data.get("parent_id"), JobId),
        task_index=data.get("task_index"),
        task_params=dict(data.get("task_params") or {}),
        task_count=data.get("task_count", 0),
        reason=data.get("reason"),
        failure_class=_opt(data.get("failure_class"), FailureClass),
        exit_code=data.get("exit_code"),
        attempt_count=data.get("attempt_count", 0),
        next_attempt_at=data.get("next_attempt_at"),
        cancel_requested=data.get("cancel_requested", False),
        started_at=data.get("started_at"),
        finished_at=data.get("finished_at"),
        idempotency_key=data.get("idempotency_key"),
        owner=data.get("owner", ""),
    )


def attempt_of(data: Mapping[str, Any]) -> Attempt:
    return Attempt(
        job_id=JobId(data["job_id"]),
        number=data["number"],
        token="",
        backend=data["backend"],
        state=AttemptState(data["state"]),
        created_at=data["created_at"],
        native_id=data.get("native_id"),
        nodes=tuple(data.get("nodes") or ()),
        submitted_at=data.get("submitted_at"),
        started_at=data.get("started_at"),
        ended_at=data.get("ended_at"),
        exit_code=data.get("exit_code"),
        signal=data.get("signal"),
        failure_class=_opt(data.get("failure_class"), FailureClass),
        reason=data.get("reason"),
    )


def event_of(data: Mapping[str, Any]) -> Event:
    return Event(
        seq=data["seq"],
        job_id=JobId(data["job_id"]),
        time=data["time"],
        kind=data["kind"],
        attempt=data.get("attempt"),
        from_state=_opt(data.get("from_state"), JobState),
        to_state=_opt(data.get("to_state"), JobState),
        reason=data.get("reason"),
        data=dict(data.get("data") or {}),
        actor=data.get("actor", "system"),
    )


__all__ = ["RemoteClient", "attempt_of", "error_of", "event_of", "job_of"]
