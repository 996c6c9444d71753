"""``hpcbridge config show``: the effective settings and where each came from."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from hpcbridge.cli import _render as render
from hpcbridge.config import ENV_PREFIX, Settings, setting_origins

config_app = typer.Typer(
    no_args_is_help=False,
    help="Settings: the environment (HPCBRIDGE_*) over the user's config.toml over the "
    "site's over the defaults.",
)

MASK = "********"
# Piped output gets wide tables rather than Rich's 80-column default (as the other commands).
_out = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)


def _shown(value: object) -> Any:
    """A value as JSON shows it; secrets masked, paths as text."""
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _without_password(name: str, value: object) -> object:
    """A database URL's password is a secret too."""
    if name == "database_url" and isinstance(value, str):
        return make_url(value).render_as_string(hide_password=True)
    return value


@config_app.command()
def show(
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Each setting's value (secrets masked) and its source: a variable, a file or default."""
    settings = Settings()
    files = settings.config_files
    origins = setting_origins(os.environ, files)
    rows = [
        {
            "name": name,
            "variable": f"{ENV_PREFIX}{name.upper()}",
            "value": _shown(_without_password(name, getattr(settings, name))),
            "source": origins.get(name, "default"),
        }
        for name in Settings.model_fields
    ]
    if json_output:
        document = {
            "files": {"user": str(files.user), "site": str(files.site)},
            "clusters_file": str(settings.resolved_clusters_file),
            "settings": rows,
        }
        _out.print_json(render.dumps(document))
        return
    for label, path in (("user file", files.user), ("site file", files.site)):
        state = "" if path.is_file() else " (absent)"
        _out.print(f"{label}: {path}{state}", highlight=False)
    _out.print(f"clusters file: {settings.resolved_clusters_file}", highlight=False)
    table = Table("setting", "value", "source", box=None)
    for row in rows:
        value = "" if row["value"] is None else str(row["value"])
        table.add_row(row["name"], value, row["source"])
    _out.print(table)
