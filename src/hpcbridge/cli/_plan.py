"""``hpcbridge plan FILE``: before submitting, on-prem against burst to cloud.

The same checks as ``validate`` (which ask the scheduler for its start estimate), then the
burst policy's decision over those numbers; nothing is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hpcbridge.cli._setup import open_client
from hpcbridge.policy import BurstDecision
from hpcbridge.spec import load_spec_document, load_spec_file

_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)


def plan(
    file: Annotated[Path, typer.Argument(help="Job spec, YAML or JSON.")],
    cluster: Annotated[
        str | None,
        typer.Option(help="Plan on this Slurm cluster (a name in clusters.yaml)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Where a job would start sooner and for how much: on-prem or burst to the cloud."""
    with open_client() as client:
        spec = load_spec_file(file, required_tags=client.settings.required_tags)
        if cluster is not None:
            document = spec.to_document() | {"backend": "slurm", "cluster": cluster}
            spec = load_spec_document(document, source=str(file))
        problems = client.check(spec)
        if problems:
            for problem in problems:
                _err.print(f"error: {problem}", highlight=False)
            raise typer.Exit(2)
        decision = client.burst_decision(spec)
    if json_output:
        _out.print_json(json.dumps(decision.as_data() | {"reason": decision.reason}))
        return
    for line in describe(decision):
        _out.print(line, highlight=False)


def describe(decision: BurstDecision) -> list[str]:
    """The two options and the policy's pick, in words."""
    money = _money(decision.currency)
    onprem_start = (
        "start time unknown (the scheduler gave no estimate)"
        if decision.onprem_wait_s is None
        else f"start in about {_minutes(decision.onprem_wait_s)}"
    )
    pick = f"burst to partition {decision.partition!r}" if decision.burst else "on-prem"
    return [
        f"on-prem: {onprem_start}, cost {money(decision.onprem_cost)}",
        f"burst: start in about {_minutes(decision.burst_wait_s)} (node power-up), "
        f"cost {money(decision.burst_cost)}, egress {decision.egress_gb:.2f} GB",
        f"the policy would pick: {pick} ({decision.reason})",
    ]


def _minutes(seconds: float) -> str:
    return f"{round(seconds / 60)} min"


def _money(currency: str) -> Callable[[float | None], str]:
    def text(amount: float | None) -> str:
        return "unknown (no rate card)" if amount is None else f"{currency} {amount:.2f}".strip()

    return text
