"""``hpcbridge runbook [NAME]``: print a runbook shipped with hpcbridge, or list them."""

from __future__ import annotations

from typing import Annotated

import typer

from hpcbridge.config import Settings
from hpcbridge.runbooks import read_runbook, runbook_names, runbook_url


def runbook(
    name: Annotated[
        str | None, typer.Argument(help="Runbook name, e.g. node-failure; none: list them.")
    ] = None,
) -> None:
    """Print a runbook (Markdown), e.g. the one 'hpcbridge why' names; without NAME, list
    them with where they are published (the runbook_url_base setting)."""
    if name is None:
        base = Settings().runbook_url_base
        for found in runbook_names():
            typer.echo(f"{found}\t{runbook_url(found, base)}")
        return
    wanted = name.removesuffix(".md")
    try:
        text = read_runbook(wanted)
    except KeyError:
        raise typer.BadParameter(
            f"no runbook {name!r}; one of: {', '.join(runbook_names())}", param_hint="'NAME'"
        ) from None
    typer.echo(text, nl=not text.endswith("\n"))
