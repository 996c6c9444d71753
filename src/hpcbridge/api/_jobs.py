"""``/api/v1/jobs``: submit, list (cursor pages), read, logs, cancel, requeue, why.

Each route is a thin caller of the service layer, which authorizes, changes state and
writes the audit record; another project's job is answered 404 by the service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from hpcbridge.api._auth import Caller, service_of
from hpcbridge.api._problems import ERROR_RESPONSES
from hpcbridge.api._schemas import AttemptOut, EventOut, JobOut, JobPage, LogTail, jsonable
from hpcbridge.errors import NotFoundError
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.states import JobState
from hpcbridge.store import JobFilter

MAX_PAGE = 500
MAX_TAIL = 10_000
_FOLLOW_POLL_S = 0.5
_CHUNK = 64 * 1024

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


SPEC_SCHEMA_REF = "#/components/schemas/JobSpec"


def spec_schemas() -> dict[str, Any]:
    """JobSpec and the models it refers to, as OpenAPI components (``create_app`` adds
    them to the document; the body of POST /jobs refers to ``JobSpec``)."""
    schema = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return defs | {"JobSpec": schema}


_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": SPEC_SCHEMA_REF}}},
    }
}


@router.post("", status_code=201, response_model=JobOut, openapi_extra=_SPEC_BODY)
def submit_job(
    request: Request,
    response: Response,
    principal: Caller,
    document: Annotated[dict[str, Any], Body()],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Retries with the same key and spec get the job the first one made.",
        ),
    ] = None,
) -> JobOut:
    """Submit a job (a JobSpec document, as the CLI reads from YAML)."""
    spec = load_spec_document(document, source="request body")
    job = service_of(request).submit(principal, spec, idempotency_key=idempotency_key)
    response.headers["Location"] = f"{request.url.path}/{job.job_id}"
    return JobOut.of(job)


@router.get("", response_model=JobPage)
def list_jobs(
    request: Request,
    response: Response,
    principal: Caller,
    state: Annotated[list[JobState] | None, Query(description="Only these states.")] = None,
    project: Annotated[str | None, Query(max_length=200)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> JobPage:
    """Jobs the caller may see, newest first, one page at a time (``next_cursor``, and a
    ``Link: <...>; rel="next"`` header)."""
    query = JobFilter(
        states=frozenset(state) if state else None,
        project=project,
        name=name,
        owner=owner,
        top_level_only=True,
    )
    page = service_of(request).list_jobs(principal, query, cursor=cursor, limit=limit)
    next_cursor = page.next_cursor
    if next_cursor:
        following = request.url.include_query_params(cursor=next_cursor, limit=limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return JobPage(items=[JobOut.of(job) for job in page.items], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobOut)
def get_job(request: Request, principal: Caller, job_id: str) -> JobOut:
    return JobOut.of(service_of(request).get(principal, job_id))


@router.get("/{job_id}/tasks", response_model=list[JobOut])
def job_tasks(request: Request, principal: Caller, job_id: str) -> list[JobOut]:
    """An array job's tasks (none for other jobs)."""
    return [JobOut.of(task) for task in service_of(request).tasks(principal, job_id)]


@router.get("/{job_id}/attempts", response_model=list[AttemptOut])
def job_attempts(request: Request, principal: Caller, job_id: str) -> list[AttemptOut]:
    return [AttemptOut.of(a) for a in service_of(request).attempts(principal, job_id)]


@router.get("/{job_id}/events", response_model=list[EventOut])
def job_events(
    request: Request,
    principal: Caller,
    job_id: str,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> list[EventOut]:
    """The job's event history; ``after_seq`` returns only newer events."""
    found = service_of(request).events(principal, job_id, after_seq=after_seq)
    return [EventOut.of(e) for e in found]


@router.get(
    "/{job_id}/logs",
    response_model=LogTail,
    responses={200: {"content": {"text/plain": {}}}},
)
def job_logs(
    request: Request,
    principal: Caller,
    job_id: str,
    stream: Annotated[str, Query(pattern="^(stdout|stderr)$")] = "stdout",
    tail: Annotated[int, Query(ge=1, le=MAX_TAIL)] = 100,
    attempt: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    follow: Annotated[bool, Query(description="Stream as text until the job ends.")] = False,
) -> Any:
    """The last ``tail`` lines of the job's stdout or stderr (its latest attempt unless
    ``attempt``); with ``follow=true``, text that streams until the job finishes."""
    service = service_of(request)
    attempts = service.attempts(principal, job_id)
    if not attempts:
        raise NotFoundError(
            f"job {job_id} has no attempts yet, so no logs",
            hint="wait until it starts (GET /api/v1/jobs/{id})",
        )
    number = attempt if attempt is not None else attempts[-1].number
    paths = service.log_paths(principal, job_id, number)
    path: Path | None = paths[1] if stream == "stderr" else paths[0]
    lines, position = _last_lines(path, tail)
    if not follow:
        return LogTail(
            job_id=job_id,
            attempt=number,
            stream=stream,
            exists=path is not None and path.is_file(),
            lines=lines,
        )

    def finished() -> bool:
        return bool(service.get(principal, job_id).state.terminal)

    head = "".join(line + "\n" for line in lines)
    return StreamingResponse(_follow(path, head, position, finished), media_type="text/plain")


def _last_lines(path: Path | None, count: int) -> tuple[list[str], int]:
    """The last ``count`` lines of ``path`` (from its last few MiB) and its size."""
    if path is None or not path.is_file():
        return [], 0
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - min(size, count * 1024)))
        text = handle.read(size).decode(errors="replace")
    return text.splitlines()[-count:], size


def _follow(path: Path | None, head: str, position: int, finished: Any) -> Iterator[bytes]:
    if head:
        yield head.encode()
    while True:
        done = finished()  # read before the file: nothing written before the end is missed
        if path is not None and path.is_file():
            with open(path, "rb") as handle:
                handle.seek(position)
                while chunk := handle.read(_CHUNK):
                    position += len(chunk)
                    yield chunk
        if done:
            return
        time.sleep(_FOLLOW_POLL_S)


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(request: Request, principal: Caller, job_id: str) -> JobOut:
    """Ask for the job (an array: each unfinished task) to stop; the reconciler does it."""
    return JobOut.of(service_of(request).cancel(principal, job_id))


@router.post("/{job_id}/requeue", response_model=JobOut)
def requeue_job(request: Request, principal: Caller, job_id: str) -> JobOut:
    """Run a finished job again under the same id (a new attempt)."""
    return JobOut.of(service_of(request).requeue(principal, job_id))


@router.get("/{job_id}/why", response_model=dict[str, Any])
def why_job(request: Request, principal: Caller, job_id: str) -> dict[str, Any]:
    """What happened to the job, in words, with the runbook to read next."""
    found = jsonable(service_of(request).why(principal, job_id))
    return found if isinstance(found, dict) else {"explanation": found}
