"""Commands. Each read command has ``--json``; ``run``/``wait`` drive the reconciler."""

from __future__ import annotations

import os
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

from hpcbridge.cli import _render as render
from hpcbridge.cli._errors import EXIT_INVALID
from hpcbridge.cli._setup import open_client as _client
from hpcbridge.client import Client
from hpcbridge.errors import NotFoundError
from hpcbridge.spec import JobSpec, load_spec_document, load_spec_file, parse_duration_s
from hpcbridge.states import JobState
from hpcbridge.store import Job, JobFilter

app = typer.Typer(
    # A bare 'hpcbridge' is a usage error ("missing command", exit 2), the same under every
    # click that typer may run on (no_args_is_help printed help and exited 0 under some).
    no_args_is_help=False,
    add_completion=True,
    pretty_exceptions_enable=False,
    help="hpcbridge: run, track and heal HPC jobs. Exit codes: 0 ok, "
    "1 job failed, 2 invalid input, 3 not found.",
)
# Piped output gets wide tables rather than Rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
out = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)


def version() -> str:
    try:
        return metadata.version("hpcbridge")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        from hpcbridge import __version__  # noqa: PLC0415

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hpcbridge {version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Options that come before the command."""


def _timeout(text: str) -> float:
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
FileArg = Annotated[Path, typer.Argument(help="Job spec, YAML or JSON.")]
JobArg = Annotated[str, typer.Argument(help="Job id (an array task is JOB.INDEX).")]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        parser=_timeout,
        metavar="DURATION",
        help="Give up waiting after this long: seconds or e.g. 90s, 10m, 2h (the job goes on).",
    ),
]


ClusterOpt = Annotated[
    str | None,
    typer.Option(help="Run on this Slurm cluster (a name in clusters.yaml); sets backend slurm."),
]


def _load(client: Client, path: Path, cluster: str | None = None) -> JobSpec:
    spec = load_spec_file(path, required_tags=client.settings.required_tags)
    if cluster is not None:
        # Re-validated, so that what the spec says is checked as a Slurm job.
        document = spec.to_document() | {"backend": "slurm", "cluster": cluster}
        spec = load_spec_document(document, source=str(path))
    return spec


def _exit_for(jobs: list[Job]) -> None:
    if any(job.state is not JobState.SUCCEEDED for job in jobs):
        raise typer.Exit(1)


@app.command()
def validate(file: FileArg, cluster: ClusterOpt = None, json_output: JsonOpt = False) -> None:
    """Check a spec without running it: schema, then what its backend can honour."""
    with _client() as client:
        spec = _load(client, file, cluster)
        problems = client.check(spec)
        if json_output:
            out.print_json(
                render.dumps(
                    {"valid": not problems, "problems": problems, "spec": spec.to_document()}
                )
            )
        elif not problems:
            out.print(f"{file}: valid ({spec.backend} backend)")
        if problems:
            for problem in problems:
                err.print(f"error: {problem}")
            raise typer.Exit(2)


@app.command()
def submit(
    file: FileArg,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    cluster: ClusterOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Submit a job and print its id; it runs in the background."""
    with _client() as client:
        job = client.submit(_load(client, file, cluster), idempotency_key=key)
        client.reconcile_once()  # starts it now when this process may lead
        client.hand_over()
        out.print_json(render.dumps(job)) if json_output else print(job.job_id)


@app.command()
def run(
    file: FileArg,
    json_output: JsonOpt = False,
    timeout: TimeoutOpt = None,
    cluster: ClusterOpt = None,
) -> None:
    """Submit a job and wait for it with a live display; exit 0 only if it succeeded."""
    with _client() as client:
        job = client.submit(_load(client, file, cluster))
        try:
            job = _follow(client, job, quiet=json_output, timeout_s=timeout)
        except TimeoutError:
            client.hand_over()
            raise _timed_out([job.job_id], timeout) from None
        except KeyboardInterrupt:
            client.hand_over()
            err.print(
                f"detached: {job.job_id} goes on; 'hpcbridge wait {job.job_id}' to "
                "follow it, 'hpcbridge cancel' to stop it"
            )
            raise typer.Exit(130) from None
        client.hand_over()
        if json_output:
            out.print_json(render.dumps(_full(client, job)))
        else:
            _print_result(client, job)
        _exit_for([job])


def _timed_out(job_ids: list[str], timeout_s: float | None) -> typer.Exit:
    """Say that ``--timeout`` ran out (the jobs go on) and return the exit to raise."""
    ids = " ".join(job_ids)
    typer.echo(
        f"error: --timeout {timeout_s:g}s ran out before {ids} finished; it goes on: "
        f"'hpcbridge wait {ids}' to follow it, 'hpcbridge cancel {ids}' to stop it",
        err=True,
    )
    return typer.Exit(EXIT_INVALID)


def _follow(client: Client, job: Job, *, quiet: bool, timeout_s: float | None) -> Job:
    started = time.monotonic()
    if quiet or not out.is_terminal:
        if not quiet:
            out.print(f"{job.job_id} {job.name}: submitted")
        return client.wait([job.job_id], timeout_s=timeout_s)[0]
    with Live(console=out, refresh_per_second=8, transient=True) as live:
        last = 0.0

        def refresh() -> None:
            nonlocal last
            if time.monotonic() - last < 0.12:
                return
            last = time.monotonic()
            current = client.get(job.job_id)
            tasks = client.tasks(job.job_id) if current.is_array_parent else []
            live.update(render.progress_view(current, tasks, time.monotonic() - started))

        return client.wait([job.job_id], timeout_s=timeout_s, on_cycle=refresh)[0]


def _print_result(client: Client, job: Job) -> None:
    out.print(
        render.progress_view(
            job,
            client.tasks(job.job_id) if job.is_array_parent else [],
            (job.finished_at or time.time()) - job.created_at,
        )
    )
    if job.is_array_parent:
        failed = [t for t in client.tasks(job.job_id) if t.state is not JobState.SUCCEEDED]
        if failed:
            out.print(render.tasks_table(failed[:20]))
        return
    stdout_path, stderr_path = client.log_paths(job.job_id) if job.attempt_count else (None, None)
    for label, path in (("output", stdout_path), ("errors", stderr_path)):
        text = _tail(path, 20)
        if text.strip():
            out.print(f"--- {label} ({path}) ---", style="dim", highlight=False)
            out.print(text.rstrip("\n"), markup=False, highlight=False)
    if job.state is not JobState.SUCCEEDED:
        err.print(f"{job.job_id}: {job.state.value}: {job.reason or ''}")


def _tail(path: Path | None, lines: int) -> str:
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 64 * 1024))
        data = handle.read().decode(errors="replace")
    return "\n".join(data.splitlines()[-lines:]) + "\n"


def _full(client: Client, job: Job) -> dict[str, object]:
    return {
        "job": job,
        "attempts": client.attempts(job.job_id),
        "tasks": client.tasks(job.job_id) if job.is_array_parent else [],
    }


@app.command()
def status(job_id: JobArg, json_output: JsonOpt = False) -> None:
    """Show a job: state, reason, attempts, and its tasks for an array job."""
    with _client() as client:
        job = client.get(job_id)
        if json_output:
            out.print_json(render.dumps(_full(client, job)))
            return
        tasks = client.tasks(job_id) if job.is_array_parent else []
        out.print(render.job_panel(job, client.attempts(job_id), tasks))


@app.command("list")
def list_jobs(
    state: Annotated[list[JobState] | None, typer.Option(help="Only these states.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    name: Annotated[str | None, typer.Option(help="Only jobs with this name.")] = None,
    tasks: Annotated[bool, typer.Option("--tasks", help="Include array tasks.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """List jobs, oldest first."""
    with _client() as client:
        query = JobFilter(
            states=frozenset(state) if state else None,
            project=project,
            name=name,
            top_level_only=not tasks,
            limit=limit,
        )
        jobs = client.list_jobs(query)
        if json_output:
            out.print_json(render.dumps(jobs))
        else:
            out.print(render.jobs_table(jobs))


@app.command()
def logs(
    job_id: JobArg,
    attempt: Annotated[int | None, typer.Option(help="Attempt number; default last.")] = None,
    stderr: Annotated[bool, typer.Option("--stderr", help="Show stderr.")] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """Print a job's output (stdout, or stderr with --stderr)."""
    with _client() as client:
        job = client.get(job_id)
        if job.is_array_parent:
            raise NotFoundError(
                f"{job_id} is an array job; its tasks have logs",
                hint=f"e.g. 'hpcbridge logs {job_id}.{0}'",
            )
        paths = client.log_paths(job_id, attempt)
        path = paths[1] if stderr else paths[0]
        position = 0
        while True:
            position = _copy_from(path, position)
            if not follow or client.get(job_id).state.terminal:
                _copy_from(path, position)
                return
            client.reconcile_once()
            time.sleep(client.settings.poll_interval_s)


def _copy_from(path: Path | None, position: int) -> int:
    if path is None or not path.exists():
        return position
    with open(path, "rb") as handle:
        handle.seek(position)
        data = handle.read()
    if data:
        typer.echo(data.decode(errors="replace"), nl=False)
    return position + len(data)


@app.command()
def events(job_id: JobArg, json_output: JsonOpt = False) -> None:
    """The append-only event history of a job."""
    with _client() as client:
        found = client.events(job_id)
        if json_output:
            out.print_json(render.dumps(found))
        else:
            out.print(render.events_table(found))


@app.command()
def cancel(
    job_ids: Annotated[list[str], typer.Argument(help="Job ids.")], json_output: JsonOpt = False
) -> None:
    """Cancel jobs (SIGTERM, then SIGKILL after the grace period) and wait until they stop."""
    with _client() as client:
        for job_id in job_ids:
            client.cancel(job_id)
        grace = client.settings.kill_grace_s + 30
        try:
            jobs = client.wait(job_ids, timeout_s=grace)
        except TimeoutError:
            client.hand_over()
            typer.echo(
                f"error: not all of {' '.join(job_ids)} stopped within {grace:g}s; "
                "'hpcbridge list' shows where they are, 'hpcbridge cancel' asks again",
                err=True,
            )
            raise typer.Exit(EXIT_INVALID) from None
        client.hand_over()
        if json_output:
            out.print_json(render.dumps(jobs))
        else:
            for job in jobs:
                out.print(f"{job.job_id}: {job.state.value}")


@app.command()
def wait(
    job_ids: Annotated[list[str], typer.Argument(help="Job ids.")],
    timeout: TimeoutOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Wait until jobs finish (driving the reconciler); exit 0 only if all succeeded."""
    with _client() as client:
        try:
            jobs = client.wait(job_ids, timeout_s=timeout)
        except TimeoutError:
            client.hand_over()
            raise _timed_out(job_ids, timeout) from None
        client.hand_over()
        if json_output:
            out.print_json(render.dumps(jobs))
        else:
            out.print(render.jobs_table(jobs))
        _exit_for(jobs)


@app.command(hidden=True)
def agent() -> None:
    """Drive the reconciler until no job is active (started by 'submit')."""
    with _client() as client:
        client.drive(lambda: not client.has_active_jobs())


# -- observability commands (telemetry, SLOs, why, server) ---------------------------------
from hpcbridge.cli._dashboards import dashboards_app  # noqa: E402
from hpcbridge.cli._serve import serve  # noqa: E402
from hpcbridge.cli._slo import slo_app  # noqa: E402
from hpcbridge.cli._why import why  # noqa: E402

app.command()(serve)
app.command()(why)
app.add_typer(slo_app, name="slo")
app.add_typer(dashboards_app, name="dashboards")
from hpcbridge.cli._nodes import nodes_app  # noqa: E402

app.add_typer(nodes_app, name="nodes")
