"""What commands check before they start: a usable data directory and writable outputs.

Each check turns what would be a traceback deep inside (``mkdir`` of a home that is a file,
``write_text`` into a missing directory) into one line that names the path and the fix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from hpcbridge.client import Client
from hpcbridge.config import ENV_PREFIX, Settings, default_home
from hpcbridge.errors import ConfigError
from hpcbridge.logs import configure_logging
from hpcbridge.security import Principal
from hpcbridge.service import Service
from hpcbridge.telemetry import configure_tracing, shutdown_tracing, tracing_wanted

HOME_VARIABLE = f"{ENV_PREFIX}HOME"


def usable_settings() -> Settings:
    """Settings from the environment, with a data directory that exists and can be written."""
    settings = Settings()
    check_home(settings.home)
    return settings


@contextmanager
def open_client() -> Iterator[Client]:
    settings = usable_settings()
    configure_logging()
    configure_tracing(tracing_wanted(settings.tracing, os.environ))
    client = Client(settings)
    try:
        yield client
    finally:
        client.close()
        shutdown_tracing()  # sends what is still buffered


def local_service(client: Client) -> tuple[Service, Principal]:
    """Embedded mode: the service over this client's store, and the local user, who has
    every right in their own home (changes are audited like those made through the API)."""
    return Service(client.store, client.settings, client=client), Principal.local_user()


def check_home(home: Path) -> None:
    """Create ``home`` if needed and make sure a file can be written there."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        named = (
            f"the data directory {home} (the default)"
            if home == default_home()
            else f"{HOME_VARIABLE}={home}"
        )
        problem = (
            "is a file, not a directory" if home.is_file() else f"cannot be used ({_reason(exc)})"
        )
        raise ConfigError(
            f"{named} {problem}; set {HOME_VARIABLE} to a directory you can write to"
        ) from exc


def check_output_file(path: Path, option: str) -> None:
    """``path`` can be created or replaced: its directory exists and it is no directory."""
    if path.is_dir():
        raise typer.BadParameter(
            f"{path} is a directory; give a file name", param_hint=f"'{option}'"
        )
    if not path.parent.is_dir():
        raise typer.BadParameter(
            f"directory {path.parent} does not exist; create it first or choose another path",
            param_hint=f"'{option}'",
        )


def check_output_directory(path: Path, what: str) -> None:
    """``path`` is a directory or can be made one: neither it nor a parent is a file."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise typer.BadParameter(
                    f"{candidate} is a file; give a directory", param_hint=what
                )
            return


def write_output(path: Path, text: str, option: str) -> None:
    """Write ``text`` to ``path`` (checked first); an OS error becomes a usage error."""
    check_output_file(path, option)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        message = f"cannot write {path} ({_reason(exc)})"
        raise typer.BadParameter(message, param_hint=f"'{option}'") from exc


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()
