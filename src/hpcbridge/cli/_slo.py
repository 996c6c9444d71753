"""``hpcbridge slo report|rules|validate``: SLOs from the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hpcbridge.cli._setup import usable_settings, write_output
from hpcbridge.config import Settings
from hpcbridge.logs import configure_logging
from hpcbridge.slo import (
    DEFAULT_RUNBOOK_BASE,
    SloDefinition,
    build_samples_by_slo,
    cost_per_result,
    default_slos,
    finished_jobs,
    generate_rules,
    load_slo_file,
    render_cost_table,
    render_report_table,
    report_to_dict,
    rules_to_yaml,
    slo_report,
)
from hpcbridge.store import open_store
from hpcbridge.telemetry import data_integrity_rules

slo_app = typer.Typer(
    no_args_is_help=False,  # 'hpcbridge slo' alone: "missing command", exit 2
    help="SLOs: where they stand, their Prometheus rules, and checking an SLO file.",
)
_out = Console()

SloFileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="SLO file (YAML); default: the built-in SLOs."),
]


def _slos(file: Path | None) -> tuple[list[SloDefinition], float]:
    if file is None:
        return default_slos(), 60.0
    document = load_slo_file(file)
    return list(document.slos), float(document.evaluation_interval)


@slo_app.command("report")
def report(
    file: SloFileOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """SLI, error budget left, burn rates and firing alerts of each SLO, from the store."""
    slos, interval = _slos(file)
    settings = usable_settings()
    configure_logging()
    store = open_store(settings)
    try:
        now = time.time()
        horizon = max(slo.window for slo in slos)
        jobs = finished_jobs(store, since=now - horizon)
    finally:
        store.close()
    statuses = slo_report(
        slos,
        build_samples_by_slo(slos, jobs),
        now,
        eval_interval_s=interval,
        runbook_base=settings.runbook_url_base or DEFAULT_RUNBOOK_BASE,
    )
    costs = cost_per_result(jobs)
    if json_output:
        document = report_to_dict(statuses, now)
        document["cost_per_result"] = [cost.to_dict() for cost in costs]
        _out.print_json(json.dumps(document))
    else:
        _out.print(render_report_table(statuses))
        if costs:
            _out.print(render_cost_table(costs))


@slo_app.command("rules")
def rules(
    file: SloFileOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Prometheus recording and alerting rules for the SLOs (check with promtool)."""
    slos, _ = _slos(file)
    base = Settings().runbook_url_base or DEFAULT_RUNBOOK_BASE
    document = generate_rules(slos, runbook_base=base)
    document["groups"].append(data_integrity_rules(base))  # checksum mismatches
    text = rules_to_yaml(document)
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_output(out, text, "--out")
        typer.echo(f"wrote {len(slos)} rule groups to {out}", err=True)


@slo_app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="SLO file (YAML) to check.")],
) -> None:
    """Check an SLO file; exit 2 with every problem listed when it is invalid."""
    document = load_slo_file(file)
    names = ", ".join(slo.name for slo in document.slos)
    typer.echo(f"{file}: valid, {len(document.slos)} SLO(s): {names}")
