"""Exceptions as the CLI's wire format: one clear line on stderr and an exit code.

Usage errors (an unknown option or command, a bad value, a missing argument) print
``error: ...`` and ``Try '... --help' for help.`` and exit 2, as do invalid settings.
Typer up to 0.15 raises click's exceptions; later versions raise those of a click they
vendor. The classes are therefore looked up from ``typer.BadParameter`` (public in both),
so that whichever click typer runs on, its usage errors are caught here.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from hpcbridge.config import ConfigFileError, Settings, describe_settings_error
from hpcbridge.errors import HpcbridgeError

EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


def _typer_click_class(name: str) -> type[Exception]:
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == name and issubclass(cls, Exception):
            return cls
    raise ImportError(f"typer.BadParameter derives from no {name}; is typer too new or too old?")


ClickException = _typer_click_class("ClickException")
UsageError = _typer_click_class("UsageError")


def handle(exc: BaseException) -> int | None:
    """Print ``exc`` as the CLI shows errors and return the exit code; None: not ours."""
    if isinstance(exc, HpcbridgeError):
        _print(f"error: {exc.message}")
        if exc.hint:
            _print(f"hint: {exc.hint}")
        return exc.exit_code
    if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
        for line in describe_settings_error(exc):
            _print(f"error: {line}")
        return EXIT_INVALID
    if isinstance(exc, ConfigFileError):
        _print(f"error: {exc}")
        return EXIT_INVALID
    if isinstance(exc, SettingsError):
        _print(f"error: settings: {_one_line(str(exc))}; check the HPCBRIDGE_* variables")
        return EXIT_INVALID
    if isinstance(exc, typer.Exit):
        return int(getattr(exc, "exit_code", 0))
    if isinstance(exc, typer.Abort):
        _print("aborted")
        return EXIT_INTERRUPTED
    if isinstance(exc, UsageError):
        for line in usage_lines(exc):
            _print(line)
        return EXIT_INVALID
    if isinstance(exc, ClickException):
        _print(f"error: {_one_line(_message(exc))}")
        return int(getattr(exc, "exit_code", 1))
    return None


def usage_lines(exc: Exception) -> list[str]:
    """``error: <what is wrong>`` and where to read the usage of the command at fault."""
    ctx: Any = getattr(exc, "ctx", None)
    command_path = getattr(ctx, "command_path", None) or "hpcbridge"
    if type(exc).__name__ == "NoArgsIsHelpError" or _message(exc).startswith("Missing command"):
        message = "missing command"
        names = _visible_commands(ctx)
        if names:
            message += f"; one of: {', '.join(names)}"
    else:
        message = _one_line(_message(exc))
    return [f"error: {message}", f"Try '{command_path} --help' for help."]


def _message(exc: Exception) -> str:
    format_message = getattr(exc, "format_message", None)
    text = str(format_message()) if callable(format_message) else str(exc)
    return text.replace("Value error, ", "")


def _visible_commands(ctx: Any) -> list[str]:
    command = getattr(ctx, "command", None)
    if ctx is None or command is None or not hasattr(command, "list_commands"):
        return []
    names = []
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is not None and not getattr(sub, "hidden", False):
            names.append(name)
    return names


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    if line[:1].isupper() and line[1:2].islower():
        line = line[0].lower() + line[1:]
    return line


def _print(line: str) -> None:
    print(line, file=sys.stderr)
