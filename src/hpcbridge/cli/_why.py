"""``hpcbridge why JOB``: what happened to a job, in words, on one screen.

The service works it out (``hpcbridge.service.explain``: state and failure class as a
sentence, the scheduler's reason, nodes, exit, lost work in core-hours, checkpoints, what
hpcbridge already did, cost, the last log lines, the runbook); this renders it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import PurePosixPath
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hpcbridge.cli._remote import open_remote, server_url
from hpcbridge.cli._setup import local_service, open_client
from hpcbridge.service import Explanation, duration_text, job_cost_text

__all__ = ["job_cost_text", "render", "why"]

_out = Console()

JobOpt = Annotated[str, typer.Argument(help="Job id (an array task is JOB.INDEX).")]


def render(why: Explanation) -> RenderableType:
    style = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}.get(why.state, "cyan")
    head = Text.assemble(
        (f"{why.job_id} {why.name}", "bold"),
        f"  project {why.project}, class {why.workload_class}  ",
        (why.state.upper() + (f" ({why.failure_class})" if why.failure_class else ""), style),
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    rows: list[tuple[str, str | None]] = [
        ("What happened", why.summary),
        ("Scheduler said", why.scheduler_reason),
        ("Nodes", ", ".join(why.nodes) or None),
        ("Exit", why.exit),
        ("Lost work", why.lost_work),
        ("Cost", why.cost),
        ("Checkpoint", why.checkpoint),
        ("Tasks", ", ".join(f"{n} {s}" for s, n in sorted(why.tasks.items())) or None),
    ]
    for label, text in rows:
        if text:
            facts.add_row(label, text)
    parts: list[RenderableType] = [head, facts]
    if why.attempts:
        attempts = Table("#", "RESULT", "NODES", "RAN", "EXIT", "REASON", header_style="bold")
        for a in why.attempts:
            result = a["failure_class"] or a["state"]
            attempts.add_row(
                str(a["number"]),
                result,
                ", ".join(a["nodes"]) or "-",
                duration_text(a["run_s"]),
                a["exit"] or "-",
                a["reason"] or "",
            )
        parts.append(attempts)
    if why.actions:
        parts.append(Text("hpcbridge already:", style="bold"))
        parts.extend(Text(f"  - {action}") for action in why.actions)
    if why.log_tail:
        parts.append(Text(f"Last lines of {why.log_file}:", style="bold"))
        parts.append(Text("\n".join(f"  {line}" for line in why.log_tail), style="dim"))
    next_text = Text.assemble(("Next: ", "bold"), why.next_step)
    if why.runbook:
        next_text.append(f"\nRunbook: {why.runbook}", style="bold")
        name = PurePosixPath(why.runbook).stem
        next_text.append(f" (or 'hpcbridge runbook {name}')")
    parts.append(next_text)
    return Panel(Group(*parts), title="hpcbridge why", title_align="left", expand=False)


def why(
    job_id: JobOpt,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Why a job is where it is: what happened, in words, and what to do next."""
    if server_url():
        with open_remote() as server:
            found = server.why(job_id)
        names = Explanation.__dataclass_fields__
        explanation = Explanation(**{k: v for k, v in found.items() if k in names})
    else:
        explanation = _explain_here(job_id)
    if json_output:
        _out.print_json(json.dumps(asdict(explanation)))
    else:
        _out.print(render(explanation))


def _explain_here(job_id: str) -> Explanation:
    with open_client() as client:
        service, me = local_service(client)
        return service.why(me, job_id)
