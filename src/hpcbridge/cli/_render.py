"""Turning jobs, attempts and events into Rich tables and JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hpcbridge.cli._reasons import attempt_reason, history_reason, job_reason
from hpcbridge.retention import AttemptFiles
from hpcbridge.states import JobState
from hpcbridge.store import Attempt, Event, Job

STATE_STYLE = {
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "yellow",
    JobState.RUNNING: "cyan",
    JobState.LOST: "magenta",
    JobState.RETRY_WAIT: "yellow",
}


def _column(table: Table, name: str) -> None:
    wraps = name in ("REASON", "NODES", "PARAMS", "CHANGE")
    table.add_column(name, overflow="fold", no_wrap=not wraps)


def console_width() -> int | None:
    """Piped output gets wide lines rather than Rich's 80-column default."""
    return None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, sort_keys=False)


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def listing_order(jobs: Sequence[Job]) -> list[Job]:
    """Oldest first; an array's tasks after it, in the numeric order of their index (.2
    before .10), where the store's order is the order of their ids."""
    return sorted(
        jobs,
        key=lambda j: (
            j.created_at,
            j.parent_id or j.job_id,
            -1 if j.task_index is None else j.task_index,
            j.job_id,
        ),
    )


def state_text(state: JobState) -> Text:
    return Text(state.value, style=STATE_STYLE.get(state, ""))


def jobs_table(jobs: Sequence[Job], *, title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("JOB", "NAME", "PROJECT", "STATE", "ATTEMPTS", "EXIT", "CREATED", "REASON"):
        _column(table, column)
    for job in jobs:
        table.add_row(
            job.job_id,
            job.name,
            job.project,
            state_text(job.state),
            str(job.attempt_count),
            _exit(job),
            when(job.created_at),
            job_reason(job),
        )
    return table


def attempts_table(attempts: Sequence[Attempt], *, missing_command: str | None = None) -> Table:
    """``missing_command``: the command the latest attempt could not find, if known."""
    table = Table(title="Attempts")
    for column in ("#", "STATE", "NATIVE ID", "NODES", "STARTED", "RUN", "EXIT", "CLASS", "REASON"):
        _column(table, column)
    for a in attempts:
        run = a.ended_at - a.started_at if a.started_at and a.ended_at else None
        table.add_row(
            str(a.number),
            a.state.value,
            a.native_id or "-",
            ",".join(a.nodes) or "-",
            when(a.started_at),
            seconds(run),
            "-" if a.exit_code is None else str(a.exit_code),
            a.failure_class.value if a.failure_class else "-",
            attempt_reason(a, missing_command if a is attempts[-1] else None),
        )
    return table


def events_table(events: Sequence[Event]) -> Table:
    table = Table(title="Events")
    for column in ("SEQ", "TIME", "KIND", "ATTEMPT", "CHANGE", "REASON", "ACTOR"):
        _column(table, column)
    for e in events:
        change = (
            f"{e.from_state.value if e.from_state else ''} -> {e.to_state.value}"
            if e.to_state
            else ""
        )
        table.add_row(
            str(e.seq),
            when(e.time),
            e.kind,
            str(e.attempt or "-"),
            change,
            history_reason(e.reason or ""),
            e.actor,
        )
    return table


def job_panel(
    job: Job,
    attempts: Sequence[Attempt],
    tasks: Sequence[Job],
    *,
    files: AttemptFiles | None = None,
    missing_command: str | None = None,
) -> RenderableType:
    """``files``: where the latest attempt's outputs are; ``missing_command``: the command
    it could not find (exit code 127), if known."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("job", job.job_id),
        ("name", job.name),
        ("project", job.project),
        ("class", job.workload_class),
        ("backend", job.backend),
        ("state", state_text(job.state)),
        ("reason", job_reason(job, missing_command) or "-"),
        ("created", when(job.created_at)),
        ("started", when(job.started_at)),
        ("finished", when(job.finished_at)),
    ]
    if job.failure_class:
        rows.append(("failure", job.failure_class.value))
    if job.exit_code is not None:
        rows.append(("exit code", str(job.exit_code)))
    if job.parent_id:
        rows.append(("array job", f"{job.parent_id} task {job.task_index}"))
    if job.task_params:
        rows.append(("params", ", ".join(f"{k}={v}" for k, v in job.task_params.items())))
    if files is not None:
        for label, path in (
            ("stdout", files.stdout),
            ("stderr", files.stderr),
            ("work dir", files.work_dir),
        ):
            if path is not None:
                rows.append((label, _path_text(path)))
    for key, value in rows:
        summary.add_row(key, value)
    parts: list[RenderableType] = [summary]
    if tasks:
        counts = Counter(t.state.value for t in tasks)
        parts.append(Text("tasks: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))))
        parts.append(tasks_table(tasks))
    if attempts:
        parts.append(attempts_table(attempts, missing_command=missing_command))
    return Group(*parts)


def _path_text(path: Path) -> Text:
    gone = "" if path.exists() else "  (not there: not written yet, or removed by 'hpcbridge gc')"
    return Text(f"{path}{gone}")


def tasks_table(tasks: Sequence[Job]) -> Table:
    table = Table(title="Tasks")
    for column in ("TASK", "PARAMS", "STATE", "ATTEMPTS", "EXIT", "REASON"):
        _column(table, column)
    for task in tasks:
        params = ", ".join(f"{k}={v}" for k, v in task.task_params.items())
        table.add_row(
            task.job_id,
            params,
            state_text(task.state),
            str(task.attempt_count),
            _exit(task),
            job_reason(task),
        )
    return table


def progress_view(job: Job, tasks: Sequence[Job], elapsed_s: float) -> RenderableType:
    line = Text.assemble(
        f"{job.job_id} {job.name}  ", state_text(job.state), f"  {seconds(elapsed_s)}"
    )
    if not tasks:
        return Group(line, Text(job_reason(job), style="dim"))
    counts = Counter(t.state for t in tasks)
    done = sum(n for state, n in counts.items() if state.terminal)
    width = 30
    filled = int(width * done / max(1, len(tasks)))
    bar = Text("[" + "#" * filled + "." * (width - filled) + f"] {done}/{len(tasks)}")
    detail = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items()))
    return Group(line, bar, Text(detail, style="dim"))


def _exit(job: Job) -> str:
    return "-" if job.exit_code is None else str(job.exit_code)
