"""Preemption: the scheduler announces the end (walltime, preemption) with a signal.

The handler only sets an attribute. Anything more (locks, I/O, logging) could deadlock or
corrupt state when the signal lands in the middle of the same operation in the main thread;
the job polls the flag at a safe point, saves, and exits for a requeue.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, NoReturn

from ._env import ENV_SIGNAL, parse_signal, requeue_exit_code

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class PreemptionFlag:
    """Set (never cleared by the SDK) once one of the watched signals has arrived."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[signal.Signals, _Handler] = {}

    @property
    def is_set(self) -> bool:
        return self.signum is not None

    def __bool__(self) -> bool:
        return self.is_set

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    def install(self, *signals: signal.Signals) -> PreemptionFlag:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        for sig in signals:
            if sig not in self._previous:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        """Put back the handlers that were there before (used by tests)."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


def install_preemption_handler(
    sig: str | int | signal.Signals | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> PreemptionFlag:
    """Watch ``sig`` (default ``$HPCBRIDGE_CHECKPOINT_SIGNAL``, else SIGTERM); poll the flag."""
    env = os.environ if environ is None else environ
    raw = sig if sig is not None else env.get(ENV_SIGNAL, "").strip() or "SIGTERM"
    return PreemptionFlag().install(parse_signal(ENV_SIGNAL, raw))


def exit_for_requeue(
    code: int | None = None, *, environ: Mapping[str, str] | None = None
) -> NoReturn:
    """Leave with the code that asks the control plane to requeue (75 unless overridden).

    Raises ``SystemExit`` rather than calling ``os._exit`` so ``finally`` blocks still run.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    raise SystemExit(requeue_exit_code(environ) if code is None else code)
