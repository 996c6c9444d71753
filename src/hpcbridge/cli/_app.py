"""Commands. Each read command has ``--json``; ``run``/``wait`` drive the reconciler."""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from hpcbridge.cli import _remote as remote
from hpcbridge.cli import _render as render
from hpcbridge.cli._errors import EXIT_INVALID
from hpcbridge.cli._junit import write_junit
from hpcbridge.cli._reasons import (
    is_command_not_found,
    job_reason,
    missing_command,
    stderr_tail,
)
from hpcbridge.cli._setup import check_output_file, local_service
from hpcbridge.cli._setup import open_client as _client
from hpcbridge.cli._why import job_cost_text
from hpcbridge.client import Client
from hpcbridge.errors import NotFoundError
from hpcbridge.retention import AttemptFiles, attempt_files
from hpcbridge.security import Principal
from hpcbridge.service import MAX_PAGE, Service
from hpcbridge.spec import JobSpec, load_spec_document, load_spec_file, parse_duration_s
from hpcbridge.states import SLURM_STATE_CODES, JobState, StateFilter, parse_state_filter
from hpcbridge.store import Attempt, Job, JobFilter

app = typer.Typer(
    # A bare 'hpcbridge' is a usage error ("missing command", exit 2), the same under every
    # click that typer may run on (no_args_is_help printed help and exited 0 under some).
    no_args_is_help=False,
    add_completion=True,
    pretty_exceptions_enable=False,
    help="hpcbridge: run, track and heal HPC jobs. Exit codes: 0 ok, "
    "1 job failed (cancel: it had already finished), 2 invalid input, 3 not found.",
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
    server: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Client mode: send submit, run, wait, list, status, logs, cancel and why to "
            "this 'hpcbridge serve' (or set HPCBRIDGE_SERVER; the token: HPCBRIDGE_TOKEN).",
        ),
    ] = None,
) -> None:
    """Options that come before the command."""
    remote.set_server(server)


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

JunitOpt = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help="Also write a JUnit XML report (one test case per job or array task) for CI.",
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


EXIT_NOT_CANCELLED = 1
_CANCEL_WAIT_S = 90.0
"""Client mode: how long ``cancel`` waits for the server to stop the jobs."""
"""``cancel``: a job had already finished; it keeps the state it ended in."""


def _exit_for(jobs: list[Job]) -> None:
    if any(job.state is not JobState.SUCCEEDED for job in jobs):
        raise typer.Exit(1)


@app.command()
def validate(file: FileArg, cluster: ClusterOpt = None, json_output: JsonOpt = False) -> None:
    """Check a spec without running it: schema, then what its backend can honour."""
    with _client() as client:
        spec = _load(client, file, cluster)
        problems = client.check(spec)
        estimate = None if problems else client.start_estimate(spec)
        data = client.data_preflight(spec) if spec.stage_in and not problems else None
        waits = {} if problems else client.licence_waits(spec)
        if json_output:
            document = {"valid": not problems, "problems": problems, "spec": spec.to_document()}
            document["data"] = data.summary() if data else None
            document["licence_waits_s"] = waits
            out.print_json(render.dumps(document | {"start_estimate": estimate}))
        elif not problems:
            out.print(f"{file}: valid ({spec.backend} backend)")
            if data is not None:
                out.print(data.describe(), highlight=False)
            if estimate is not None:
                out.print(f"the scheduler expects it to start at {estimate}", highlight=False)
            for pool, wait_s in sorted(waits.items()):
                out.print(_licence_wait(pool, wait_s), highlight=False)
        if problems:
            for problem in problems:
                err.print(f"error: {problem}")
            raise typer.Exit(2)


def _licence_wait(pool: str, wait_s: float) -> str:
    about = f"about {round(wait_s / 60)} min" if wait_s >= 30 else "less than a minute"
    return f"would wait {about} for licence {pool} (median of its recent jobs)"


@app.command()
def submit(
    file: FileArg,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    cluster: ClusterOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Submit a job and print its id; it runs in the background."""
    if remote.server_url():
        with remote.open_remote() as server:
            job = server.submit(remote.load(file, cluster), idempotency_key=key)
        out.print_json(render.dumps(job)) if json_output else print(job.job_id)
        return
    with _client() as client:
        service, me = local_service(client)
        job = service.submit(me, _load(client, file, cluster), idempotency_key=key)
        client.reconcile_once()  # starts it now when this process may lead
        client.hand_over()
        out.print_json(render.dumps(job)) if json_output else print(job.job_id)


@app.command()
def run(
    file: FileArg,
    json_output: JsonOpt = False,
    timeout: TimeoutOpt = None,
    cluster: ClusterOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Submit a job and wait for it with a live display; exit 0 only if it succeeded."""
    if junit is not None:
        check_output_file(junit, "--junit")
    if remote.server_url():
        with remote.open_remote() as server:
            job = server.submit(remote.load(file, cluster))
            if not json_output:
                out.print(f"{job.job_id} {job.name}: submitted")
            try:
                job = server.wait([job.job_id], timeout_s=timeout)[0]
            except TimeoutError:
                remote.report(server, [job.job_id], junit)
                raise _timed_out([job.job_id], timeout) from None
            remote.report(server, [job.job_id], junit)
            if json_output:
                out.print_json(render.dumps(job))
            else:
                remote.show_result(out, err, server, job)
        _exit_for([job])
        return
    with _client() as client:
        service, me = local_service(client)
        job = service.submit(me, _load(client, file, cluster))
        try:
            job = _follow(client, job, quiet=json_output, timeout_s=timeout)
        except TimeoutError:
            client.hand_over()
            if junit is not None:
                write_junit(client, [job.job_id], junit)
            raise _timed_out([job.job_id], timeout) from None
        except KeyboardInterrupt:
            client.hand_over()
            err.print(
                f"detached: {job.job_id} goes on; 'hpcbridge wait {job.job_id}' to "
                "follow it, 'hpcbridge cancel' to stop it"
            )
            raise typer.Exit(130) from None
        client.hand_over()
        if junit is not None:
            write_junit(client, [job.job_id], junit)
        if json_output:
            out.print_json(render.dumps(_full(client, job)))
        else:
            _print_result(client, job)
        _exit_for([job])


def _not_stopped(job_ids: list[str], waited_s: float) -> typer.Exit:
    typer.echo(
        f"error: not all of {' '.join(job_ids)} stopped within {waited_s:g}s; "
        "'hpcbridge list' shows where they are, 'hpcbridge cancel' asks again",
        err=True,
    )
    return typer.Exit(EXIT_INVALID)


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
            tasks = _tasks(client, current)
            view = render.progress_view(current, tasks, time.monotonic() - started)
            live.update(_with_transfer(client, current, view))

        return client.wait([job.job_id], timeout_s=timeout_s, on_cycle=refresh)[0]


def _with_transfer(client: Client, job: Job, view: RenderableType) -> RenderableType:
    """A job staging its data shows how far the copy has got."""
    if job.state not in (JobState.STAGING_IN, JobState.STAGING_OUT):
        return view
    moved = client.reconciler.staging_progress(job.job_id)
    if moved is None or not moved[1]:
        return view
    done, total = moved
    mib = f"{done / (1 << 20):.1f}/{total / (1 << 20):.1f} MiB"
    return Group(view, ProgressBar(total=total, completed=done, width=40), Text(mib, style="dim"))


def _print_result(client: Client, job: Job) -> None:
    tasks = _tasks(client, job)
    out.print(render.progress_view(job, tasks, (job.finished_at or time.time()) - job.created_at))
    if job.is_array_parent:
        failed = [t for t in tasks if t.state is not JobState.SUCCEEDED]
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
        attempts = client.attempts(job.job_id)
        missing = _missing_command(job, attempts, _latest_files(client, attempts))
        err.print(f"{job.job_id}: {job.state.value}: {job_reason(job, missing)}", markup=False)


def _tail(path: Path | None, lines: int) -> str:
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 64 * 1024))
        data = handle.read().decode(errors="replace")
    return "\n".join(data.splitlines()[-lines:]) + "\n"


def _tasks(client: Client, job: Job) -> list[Job]:
    """An array job's tasks in the order of their index (none for other jobs)."""
    return render.listing_order(client.tasks(job.job_id)) if job.is_array_parent else []


def _latest_files(client: Client, attempts: list[Attempt]) -> AttemptFiles | None:
    """Where the latest attempt's outputs are (None before the first attempt)."""
    if not attempts:
        return None
    last = attempts[-1]
    return attempt_files(last, client.backends.get(last.backend))


def _missing_command(job: Job, attempts: list[Attempt], files: AttemptFiles | None) -> str | None:
    """The command the latest attempt could not find (exit code 127), from its stderr."""
    if files is None or not attempts:
        return None
    last = attempts[-1]
    if not is_command_not_found(last.exit_code, last.failure_class):
        return None
    return missing_command(stderr_tail(files.stderr))


def _full(client: Client, job: Job) -> dict[str, object]:
    attempts = client.attempts(job.job_id)
    files = _latest_files(client, attempts)
    return {
        "job": job,
        "attempts": attempts,
        "tasks": _tasks(client, job),
        "cost": job_cost_text(client, job, attempts),
        "outputs": None
        if files is None
        else {
            "attempt": attempts[-1].number,
            "stdout": _path_or_none(files.stdout),
            "stderr": _path_or_none(files.stderr),
            "work_dir": _path_or_none(files.work_dir),
        },
    }


def _path_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


@app.command()
def status(job_id: JobArg, json_output: JsonOpt = False) -> None:
    """Show a job: state, reason, where its outputs are, attempts, and an array's tasks."""
    if remote.server_url():
        with remote.open_remote() as server:
            remote.status(out, server, job_id, json_output)
        return
    with _client() as client:
        service, me = local_service(client)
        job = service.get(me, job_id)
        if json_output:
            out.print_json(render.dumps(_full(client, job)))
            return
        attempts = service.attempts(me, job_id)
        files = _latest_files(client, attempts)
        panel = render.job_panel(
            job,
            attempts,
            _tasks(client, job),
            files=files,
            missing_command=_missing_command(job, attempts, files),
        )
        out.print(panel)
        cost = job_cost_text(client, job, attempts)
        if cost:
            out.print(f"Cost: {cost}")


def _state_filter(text: str) -> StateFilter:
    found = parse_state_filter(text)
    if found is None:
        raise typer.BadParameter(
            f"{text!r} is not a job state; use one of {', '.join(s.value for s in JobState)}, "
            f"or Slurm's codes {', '.join(SLURM_STATE_CODES)} (any case)"
        )
    return found


@app.command("list")
def list_jobs(
    state: Annotated[
        list[StateFilter] | None,
        typer.Option(
            parser=_state_filter,
            metavar="STATE",
            help="Only these states: hpcbridge's (running, failed...) or Slurm's codes "
            "(PD, R, CD, F, CA, TO, OOM, NF, PR...), any case.",
        ),
    ] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    name: Annotated[str | None, typer.Option(help="Only jobs with this name.")] = None,
    tasks: Annotated[bool, typer.Option("--tasks", help="Include array tasks.")] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the newest N (still listed oldest first).")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """List jobs, oldest first (the newest at the bottom)."""
    wanted = state or []
    states: frozenset[JobState] | None = None
    if wanted and all(f.states is not None for f in wanted):
        states = frozenset().union(*(f.states or () for f in wanted))
    query = JobFilter(
        states=states,
        project=project,
        name=name,
        top_level_only=not tasks,
        limit=limit,
    )
    if remote.server_url():
        with remote.open_remote() as server:
            remote.list_jobs(out, server, query, json_output)
        return
    with _client() as client:
        jobs = _visible_jobs(*local_service(client), query, limit)
        if wanted:  # Slurm's TO, OOM, NF, PR: one way of failing
            jobs = [j for j in jobs if any(f.matches(j.state, j.failure_class) for f in wanted)]
        jobs = render.listing_order(jobs)
        if json_output:
            out.print_json(render.dumps(jobs))
        else:
            out.print(render.jobs_table(jobs))


def _visible_jobs(
    service: Service, me: Principal, query: JobFilter, limit: int | None
) -> list[Job]:
    """The newest ``limit`` jobs of ``query`` that ``me`` may see (all: None), page by page."""
    jobs: list[Job] = []
    cursor: str | None = None
    while True:
        size = MAX_PAGE if limit is None else min(MAX_PAGE, limit - len(jobs))
        page = service.list_jobs(me, query, cursor=cursor, limit=size)
        jobs += page.items
        cursor = page.next_cursor
        if cursor is None or (limit is not None and len(jobs) >= limit):
            return jobs


@app.command()
def logs(
    job_id: JobArg,
    attempt: Annotated[int | None, typer.Option(help="Attempt number; default last.")] = None,
    stderr: Annotated[bool, typer.Option("--stderr", help="Show stderr.")] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    tail: Annotated[int | None, typer.Option(min=1, help="Only the last N lines.")] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Both streams as {path, exists, lines} (with --tail: the last lines)."
        ),
    ] = False,
) -> None:
    """Print a job's output (stdout, or stderr with --stderr)."""
    if json_output and follow:
        raise typer.BadParameter(
            "--json prints what is there now; leave out --follow", param_hint="'--json'"
        )
    if remote.server_url():
        with remote.open_remote() as server:
            if json_output:
                remote.logs_json(out, server, job_id, tail)
            else:
                remote.logs(server, job_id, stderr=stderr, follow=follow, tail=tail)
        return
    with _client() as client:
        service, me = local_service(client)
        job = service.get(me, job_id)
        if job.is_array_parent:
            raise NotFoundError(
                f"{job_id} is an array job; its tasks have logs",
                hint=f"e.g. 'hpcbridge logs {job_id}.{0}'",
            )
        paths = service.log_paths(me, job_id, attempt)
        if json_output:
            number = attempt if attempt is not None else service.attempts(me, job_id)[-1].number
            document = {"job_id": job.job_id, "attempt": number, "state": job.state}
            for name, stream in zip(("stdout", "stderr"), paths, strict=True):
                document[name] = _stream(stream, tail)
            out.print_json(render.dumps(document))
            return
        path = paths[1] if stderr else paths[0]
        if path is None or not path.exists():
            if job.state.terminal:
                err.print(
                    f"note: {path or 'the log'} is not there: the job wrote nothing, or "
                    "'hpcbridge gc' removed it",
                    markup=False,
                    highlight=False,
                )
            position = 0
        elif tail is not None:
            last, position = _last_lines(path, tail)
            for line in last:
                typer.echo(line)
        else:
            position = 0
        while True:
            position = _copy_from(path, position)
            if not follow or client.get(job_id).state.terminal:
                _copy_from(path, position)
                return
            client.reconcile_once()
            time.sleep(client.settings.poll_interval_s)


def _last_lines(path: Path, count: int | None) -> tuple[list[str], int]:
    """The last ``count`` lines of ``path`` (all: None) and the offset after them."""
    lines: deque[str] = deque(maxlen=count)
    with open(path, "rb") as handle:
        lines.extend(line.decode(errors="replace").rstrip("\r\n") for line in handle)
        return list(lines), handle.tell()


def _stream(path: Path | None, tail: int | None) -> dict[str, object]:
    """One log for ``logs --json``: its path, whether it is there, its (last) lines."""
    exists = path is not None and path.is_file()
    lines = _last_lines(path, tail)[0] if path is not None and exists else []
    return {"path": None if path is None else str(path), "exists": exists, "lines": lines}


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
        service, me = local_service(client)
        found = service.events(me, job_id)
        if json_output:
            out.print_json(render.dumps(found))
        else:
            out.print(render.events_table(found))


@app.command()
def cancel(
    job_ids: Annotated[list[str], typer.Argument(help="Job ids.")], json_output: JsonOpt = False
) -> None:
    """Cancel jobs (SIGTERM, then SIGKILL after the grace period) and wait until they stop.
    Exit 1 if one had already finished (or finished before the cancel took effect): it
    stays as it ended, which stderr says."""
    if remote.server_url():
        with remote.open_remote() as server:
            finished_before = {j for j in job_ids if server.cancel(j).state.terminal}
            try:
                jobs = server.wait(job_ids, timeout_s=_CANCEL_WAIT_S)
            except TimeoutError:
                raise _not_stopped(job_ids, _CANCEL_WAIT_S) from None
        _report_cancelled(jobs, finished_before, json_output)
        return
    with _client() as client:
        service, me = local_service(client)
        finished_before = set()
        for job_id in job_ids:
            if service.cancel(me, job_id).state.terminal:
                finished_before.add(job_id)
        grace = client.settings.kill_grace_s + 30
        try:
            jobs = client.wait(job_ids, timeout_s=grace)
        except TimeoutError:
            client.hand_over()
            raise _not_stopped(job_ids, grace) from None
        client.hand_over()
        _report_cancelled(jobs, finished_before, json_output)


def _report_cancelled(jobs: list[Job], finished_before: set[str], json_output: bool) -> None:
    """Say how each cancelled job ended; exit 1 if one was not cancelled."""
    if json_output:
        out.print_json(render.dumps(jobs))
    not_cancelled = [job.job_id for job in jobs if job.state is not JobState.CANCELLED]
    for job in jobs:
        if job.job_id in not_cancelled:
            ended = f"finished ({job.state.value})"
            typer.echo(
                f"error: {job.job_id} was not cancelled: it had already {ended}"
                if job.job_id in finished_before
                else f"error: {job.job_id} was not cancelled: it {ended} before the "
                "cancel took effect",
                err=True,
            )
        elif not json_output:
            out.print(f"{job.job_id}: {job.state.value}")
    if not_cancelled:
        raise typer.Exit(EXIT_NOT_CANCELLED)


@app.command()
def wait(
    job_ids: Annotated[list[str], typer.Argument(help="Job ids.")],
    timeout: TimeoutOpt = None,
    json_output: JsonOpt = False,
    junit: JunitOpt = None,
) -> None:
    """Wait until jobs finish (driving the reconciler); exit 0 only if all succeeded."""
    if junit is not None:
        check_output_file(junit, "--junit")
    if remote.server_url():
        with remote.open_remote() as server:
            try:
                jobs = server.wait(job_ids, timeout_s=timeout)
            except TimeoutError:
                remote.report(server, job_ids, junit)
                raise _timed_out(job_ids, timeout) from None
            remote.report(server, job_ids, junit)
        out.print_json(render.dumps(jobs)) if json_output else out.print(render.jobs_table(jobs))
        _exit_for(jobs)
        return
    with _client() as client:
        try:
            jobs = client.wait(job_ids, timeout_s=timeout)
        except TimeoutError:
            client.hand_over()
            if junit is not None:
                write_junit(client, job_ids, junit)
            raise _timed_out(job_ids, timeout) from None
        client.hand_over()
        if junit is not None:
            write_junit(client, job_ids, junit)
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
from hpcbridge.cli._gc import gc  # noqa: E402
from hpcbridge.cli._serve import serve  # noqa: E402
from hpcbridge.cli._slo import slo_app  # noqa: E402
from hpcbridge.cli._why import why  # noqa: E402

app.command()(serve)
app.command()(why)
app.command()(gc)
app.add_typer(slo_app, name="slo")
app.add_typer(dashboards_app, name="dashboards")
from hpcbridge.cli._nodes import nodes_app  # noqa: E402

app.add_typer(nodes_app, name="nodes")
from hpcbridge.cli._cost import cost_app  # noqa: E402

app.add_typer(cost_app, name="cost")
from hpcbridge.cli._plan import plan  # noqa: E402

app.command()(plan)
from hpcbridge.cli._provenance import provenance, rerun  # noqa: E402

app.command()(provenance)
app.command()(rerun)
from hpcbridge.cli._security import audit_app, token_app  # noqa: E402

app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
from hpcbridge.cli._config import config_app  # noqa: E402

app.add_typer(config_app, name="config")
from hpcbridge.cli._config_runbooks import runbook  # noqa: E402

app.command()(runbook)
