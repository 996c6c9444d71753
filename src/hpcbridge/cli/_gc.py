"""``hpcbridge gc``: remove finished jobs' files and unread events past a retention period."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from hpcbridge.cli import _render as render
from hpcbridge.cli._reasons import rounded_duration
from hpcbridge.cli._setup import open_client
from hpcbridge.retention import KEPT_EVENT_KINDS, GcPlan, GcResult, Removal, apply_gc, plan_gc
from hpcbridge.spec import parse_duration_s

_ZERO = re.compile(r"^\s*0+(?:\.0*)?\s*(?:d|h|m|s|ms)?\s*$", re.IGNORECASE)
DEFAULT_RETENTION_S = 30 * 86400.0


def _age(text: str | float) -> float:
    if isinstance(text, float):  # the default
        return text
    if _ZERO.match(text):
        return 0.0  # everything finished so far
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def gc(
    older_than: Annotated[
        float,
        typer.Option(
            parser=_age,
            metavar="DURATION",
            show_default="30d",
            help="Retention period: jobs that finished longer ago than this go "
            "(e.g. 30d, 12h; 0 for every finished job).",
        ),
    ] = DEFAULT_RETENTION_S,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would go; change nothing.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Remove the work directories, logs and old events of jobs finished past the retention
    period. Unfinished jobs, jobs that finished inside it, job and attempt rows and the
    events SLOs, metrics and cost read are kept. Exit 1 if a path could not be removed."""
    with open_client() as client:
        settings = client.settings
        plan = plan_gc(
            client.store,
            client.backends,
            home=settings.home,
            runs_dir=settings.runs_dir,
            older_than_s=older_than,
            now=time.time(),
        )
        result = None if dry_run else apply_gc(client.store, plan)
    out = Console(width=render.console_width())
    if json_output:
        out.print_json(render.dumps(_document(plan, result, older_than)))
    else:
        _show(out, plan, result, older_than)
    if result is not None and result.errors:
        for error in result.errors:
            typer.echo(f"error: cannot remove {error}", err=True)
        raise typer.Exit(1)


def _document(plan: GcPlan, result: GcResult | None, older_than_s: float) -> dict[str, Any]:
    removals = plan.removals if result is None else result.removed
    return {
        "dry_run": result is None,
        "older_than_s": older_than_s,
        "finished_before": plan.cutoff,
        "jobs": list(plan.job_ids),
        "paths": [
            {"job_id": r.job_id, "path": str(r.path), "bytes": r.bytes_total, "dir": r.directory}
            for r in removals
        ],
        "bytes_total": sum(r.bytes_total for r in removals),
        "events": dict(sorted(plan.events.items())),
        "events_total": plan.events_total if result is None else result.events_deleted,
        "kept_event_kinds": sorted(KEPT_EVENT_KINDS),
        "skipped": list(plan.skipped),
        "errors": [] if result is None else list(result.errors),
    }


def _show(out: Console, plan: GcPlan, result: GcResult | None, older_than_s: float) -> None:
    removals: tuple[Removal, ...] = plan.removals if result is None else result.removed
    events = plan.events_total if result is None else result.events_deleted
    verb, delete = ("would remove", "would delete") if result is None else ("removed", "deleted")
    period = rounded_duration(older_than_s) if older_than_s else "0s"
    out.print(
        f"{len(plan.job_ids)} job(s) finished before {render.when(plan.cutoff)} "
        f"(retention {period})",
        highlight=False,
    )
    size = _bytes(sum(r.bytes_total for r in removals))
    out.print(f"{verb} {len(removals)} path(s), {size}", highlight=False)
    for removal in removals:
        out.print(
            f"  {removal.job_id}  {removal.path}  {_bytes(removal.bytes_total)}",
            markup=False,
            highlight=False,
        )
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(plan.events.items()))
    out.print(f"{delete} {events} event(s)" + (f": {kinds}" if kinds else ""), highlight=False)
    for note in plan.skipped:
        out.print(f"  kept {note}", markup=False, highlight=False)
    if result is None:
        out.print("dry run: nothing changed", style="dim")


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
