"""The ``hpcbridge`` command line (Typer + Rich).

Exit codes: 0 success, 1 a job failed (or was cancelled), 2 invalid input, 3 not found.
"""

from __future__ import annotations

import sys

from click import ClickException
from click.exceptions import Abort, Exit

from hpcbridge.cli._app import app
from hpcbridge.errors import HpcbridgeError

EXIT_OK, EXIT_JOB_FAILED, EXIT_INVALID, EXIT_NOT_FOUND = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    """Entry point: exceptions become one clear line on stderr and an exit code."""
    try:
        # Without standalone mode click returns the code of typer.Exit instead of exiting.
        code = app(args=argv, prog_name="hpcbridge", standalone_mode=False)
        return code if isinstance(code, int) else EXIT_OK
    except HpcbridgeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_INVALID
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # click's usage errors and aborts
        if isinstance(exc, Exit):
            return exc.exit_code
        if isinstance(exc, ClickException):
            exc.show()
            return EXIT_INVALID
        if isinstance(exc, Abort):
            return 130
        raise
    return EXIT_OK


__all__ = ["EXIT_INVALID", "EXIT_JOB_FAILED", "EXIT_NOT_FOUND", "EXIT_OK", "app", "main"]
