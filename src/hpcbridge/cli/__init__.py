"""The ``hpcbridge`` command line (Typer + Rich).

Exit codes: 0 success, 1 a job failed or was cancelled (``cancel``: a job had already
finished, so it was not cancelled; ``gc``: a path could not be removed), 2 invalid input
(a usage error, an invalid spec or setting, a ``--timeout`` that ran out), 3 not found.
Errors are one clear line on stderr, never a traceback (``hpcbridge.cli._errors``).
"""

from __future__ import annotations

from hpcbridge.cli._app import app
from hpcbridge.cli._errors import EXIT_INTERRUPTED, EXIT_INVALID, handle

EXIT_OK, EXIT_JOB_FAILED, EXIT_NOT_FOUND = 0, 1, 3


def main(argv: list[str] | None = None) -> int:
    """Entry point: exceptions become one clear line on stderr and an exit code."""
    try:
        # Without standalone mode click returns the code of typer.Exit instead of exiting,
        # and raises usage errors for handle() to show in the house style.
        code = app(args=argv, prog_name="hpcbridge", standalone_mode=False)
    except SystemExit as exc:  # shell completion and --install-completion exit by themselves
        return exc.code if isinstance(exc.code, int) else EXIT_INVALID if exc.code else EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        handled = handle(exc)
        if handled is None:
            raise
        return handled
    return code if isinstance(code, int) else EXIT_OK


__all__ = ["EXIT_INVALID", "EXIT_JOB_FAILED", "EXIT_NOT_FOUND", "EXIT_OK", "app", "main"]
