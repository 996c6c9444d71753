"""``hpcbridge dashboards export DIR``: Grafana dashboards as JSON files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpcbridge.cli._setup import check_output_directory
from hpcbridge.config import Settings

# 'hpcbridge dashboards' alone: "missing command", exit 2.
dashboards_app = typer.Typer(no_args_is_help=False, help="Grafana dashboards as code.")


@dashboards_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="Directory to write the JSON files into.")],
) -> None:
    """Write the executive, on-call and debug dashboards (Grafana JSON) into DIRECTORY.

    Each uses a 'datasource' variable for the Prometheus that scrapes 'hpcbridge serve'
    and loads the rules of 'hpcbridge slo rules'; runbook links point under the
    runbook_url_base setting.
    """
    from hpcbridge.telemetry import dashboards  # noqa: PLC0415 (only this command needs it)

    check_output_directory(directory, "DIRECTORY")
    for path in dashboards.export(directory, Settings().runbook_url_base):
        typer.echo(str(path))
