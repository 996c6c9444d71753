"""Turning jobs, attempts and events into Rich tables and JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from enum import Enum
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

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
            job.reason or "",
        )
    return table


def attempts_table(attempts: Sequence[Attempt]) -> Table:
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
            a.reason or "",
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
            str(e.seq), when(e.time), e.kind, str(e.attempt or "-"), change, e.reason or "", e.actor
        )
    return table


def job_panel(job: Job, attempts: Sequence[Attempt], tasks: Sequence[Job]) -> RenderableType:
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
        ("reason", job.reason or "-"),
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
    for key, value in rows:
        summary.add_row(key, value)
    parts: list[RenderableType] = [summary]
    if tasks:
        counts = Counter(t.state.value for t in tasks)
        parts.append(Text("tasks: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))))
        parts.append(tasks_table(tasks))
    if attempts:
        parts.append(attempts_table(attempts))
    return Group(*parts)


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
            task.reason or "",
        )
    return table


def progress_view(job: Job, tasks: Sequence[Job], elapsed_s: float) -> RenderableType:
    line = Text.assemble(
        f"{job.job_id} {job.name}  ", state_text(job.state), f"  {seconds(elapsed_s)}"
    )
    if not tasks:
        return Group(line, Text(job.reason or "", style="dim"))
    counts = Counter(t.state for t in tasks)
    done = sum(n for state, n in counts.items() if state.terminal)
    width = 30
    filled = int(width * done / max(1, len(tasks)))
    bar = Text("[" + "#" * filled + "." * (width - filled) + f"] {done}/{len(tasks)}")
    detail = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items()))
    return Group(line, bar, Text(detail, style="dim"))


def _exit(job: Job) -> str:
    return "-" if job.exit_code is None else str(job.exit_code)
