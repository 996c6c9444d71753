"""Client mode: with ``--server URL`` (or ``HPCBRIDGE_SERVER``) and ``HPCBRIDGE_TOKEN``, the
commands that submit, read and cancel jobs go to a server's REST API through
``RemoteClient`` instead of a local store. Output and exit codes are the embedded ones;
errors come back as the same exceptions, so they print as the same one line."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from hpcbridge.cli import _render as render
from hpcbridge.cli._junit import Output, OutputOf, write_junit
from hpcbridge.cli._reasons import job_reason
from hpcbridge.config import Settings
from hpcbridge.remote import RemoteClient
from hpcbridge.spec import JobSpec, load_spec_document, load_spec_file
from hpcbridge.states import JobState
from hpcbridge.store import Job, JobFilter

_server: list[str] = []
"""``--server`` as given before the command (the root callback sets it)."""


def set_server(url: str | None) -> None:
    _server[:] = [url] if url else []


def server_url() -> str | None:
    """``--server``, else ``HPCBRIDGE_SERVER``; None: embedded mode."""
    if _server:
        return _server[0]
    return Settings().server


@contextmanager
def open_remote() -> Iterator[RemoteClient]:
    settings = Settings()
    url = _server[0] if _server else settings.server
    assert url is not None
    token = settings.token.get_secret_value() if settings.token is not None else None
    with RemoteClient(url, token) as remote:
        yield remote


def load(path: Path, cluster: str | None) -> JobSpec:
    """The spec as the server will check it (it applies its own required tags)."""
    spec = load_spec_file(path)
    if cluster is not None:
        document = spec.to_document() | {"backend": "slurm", "cluster": cluster}
        spec = load_spec_document(document, source=str(path))
    return spec


def _tasks(remote: RemoteClient, job: Job) -> list[Job]:
    return render.listing_order(remote.tasks(job.job_id)) if job.is_array_parent else []


def _output_of(remote: RemoteClient) -> OutputOf:
    def output(job: Job) -> Output:
        if not job.attempt_count:
            return Output()
        streams = [
            "\n".join(remote.log_tail(job.job_id, stream=name)["lines"])
            for name in ("stdout", "stderr")
        ]
        return Output(*streams)

    return output


def report(remote: RemoteClient, job_ids: Sequence[str], junit: Path | None) -> None:
    if junit is not None:
        write_junit(remote, job_ids, junit, _output_of(remote))


def show_result(out: Console, err: Console, remote: RemoteClient, job: Job) -> None:
    tasks = _tasks(remote, job)
    elapsed = (job.finished_at or time.time()) - job.created_at
    out.print(render.progress_view(job, tasks, elapsed))
    if job.is_array_parent:
        failed = [t for t in tasks if t.state is not JobState.SUCCEEDED]
        if failed:
            out.print(render.tasks_table(failed[:20]))
        return
    if job.state is not JobState.SUCCEEDED:
        err.print(f"{job.job_id}: {job.state.value}: {job_reason(job)}", markup=False)


def status(out: Console, remote: RemoteClient, job_id: str, json_output: bool) -> None:
    job = remote.get(job_id)
    attempts = remote.attempts(job_id)
    tasks = _tasks(remote, job)
    if json_output:
        out.print_json(render.dumps({"job": job, "attempts": attempts, "tasks": tasks}))
    else:
        out.print(render.job_panel(job, attempts, tasks))


def list_jobs(out: Console, remote: RemoteClient, query: JobFilter, json_output: bool) -> None:
    jobs = remote.list_jobs(query) if query.limit is None else remote.newest_jobs(query)
    jobs = render.listing_order(jobs)
    out.print_json(render.dumps(jobs)) if json_output else out.print(render.jobs_table(jobs))


def logs(
    remote: RemoteClient, job_id: str, *, stderr: bool, follow: bool, tail: int | None
) -> None:
    stream = "stderr" if stderr else "stdout"
    if follow:
        for text in remote.follow_log(job_id, stream=stream, tail=tail or 10_000):
            typer.echo(text, nl=False)
        return
    for line in remote.log_tail(job_id, stream=stream, tail=tail or 10_000)["lines"]:
        typer.echo(line)


def logs_json(out: Console, remote: RemoteClient, job_id: str, tail: int | None) -> None:
    document: dict[str, object] = {}
    for name in ("stdout", "stderr"):
        found = remote.log_tail(job_id, stream=name, tail=tail or 10_000)
        document |= {"job_id": found["job_id"], "attempt": found["attempt"]}
        document[name] = {"path": None, "exists": found["exists"], "lines": found["lines"]}
    out.print_json(render.dumps(document))
