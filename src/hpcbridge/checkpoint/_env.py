"""The environment contract between the job wrapper and the SDK.

Every variable is optional and every one can be overridden by a constructor argument;
the wrapper (Slurm script or local executor) sets them so that job code needs no flags.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from signal import SIGTERM, Signals
from typing import Literal

from ._errors import CheckpointConfigError

ENV_JOB_ID = "HPCBRIDGE_JOB_ID"
ENV_ATTEMPT = "HPCBRIDGE_ATTEMPT"
ENV_DIR = "HPCBRIDGE_CHECKPOINT_DIR"
ENV_KEEP = "HPCBRIDGE_CHECKPOINT_KEEP"
ENV_INTERVAL = "HPCBRIDGE_CHECKPOINT_INTERVAL_S"
ENV_MTBF = "HPCBRIDGE_MTBF_S"
ENV_SIGNAL = "HPCBRIDGE_CHECKPOINT_SIGNAL"
ENV_STATUS_DIR = "HPCBRIDGE_STATUS_DIR"
ENV_REQUEUE_EXIT_CODE = "HPCBRIDGE_REQUEUE_EXIT_CODE"

REQUEUE_EXIT_CODE = 75
"""EX_TEMPFAIL: the exit code that asks the control plane to requeue the job."""

DEFAULT_KEEP = 3
DEFAULT_DIR = "checkpoints"

Interval = float | Literal["auto"]


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def parse_int(name: str, raw: str, *, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise CheckpointConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise CheckpointConfigError(f"{name}={raw!r} must be >= {minimum}")
    return value


def parse_seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise CheckpointConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise CheckpointConfigError(f"{name}={raw!r} must be a positive number of seconds")
    return value


def parse_interval(name: str, raw: str) -> Interval:
    if raw.lower() == "auto":
        return "auto"
    return parse_seconds(name, raw)


def parse_signal(name: str, raw: str | int | Signals) -> Signals:
    """Accept ``SIGUSR1``, ``USR1``, ``usr1``, ``10`` or a ``signal.Signals``."""
    if isinstance(raw, Signals):
        return raw
    text = str(raw).strip()
    try:
        if text.isdigit():
            return Signals(int(text))
        upper = text.upper()
        return Signals[upper if upper.startswith("SIG") else "SIG" + upper]
    except (KeyError, ValueError):
        raise CheckpointConfigError(f"{name}={raw!r} is not a signal name") from None


def requeue_exit_code(environ: Mapping[str, str] | None = None) -> int:
    """The exit code that asks for a requeue: ``HPCBRIDGE_REQUEUE_EXIT_CODE`` or 75."""
    return _requeue_code(os.environ if environ is None else environ)


def _requeue_code(env: Mapping[str, str]) -> int:
    raw = _get(env, ENV_REQUEUE_EXIT_CODE)
    if raw is None:
        return REQUEUE_EXIT_CODE
    code = parse_int(ENV_REQUEUE_EXIT_CODE, raw, minimum=1)
    if code > 255:
        raise CheckpointConfigError(f"{ENV_REQUEUE_EXIT_CODE}={raw!r} must be <= 255")
    return code


@dataclass(frozen=True, slots=True)
class CheckpointConfig:
    """Resolved settings; build with :meth:`from_env`, which applies overrides on top."""

    directory: Path
    job_id: str | None = None
    attempt: int | None = None
    keep: int = DEFAULT_KEEP
    interval: Interval = "auto"
    mtbf_s: float | None = None
    signal: Signals = SIGTERM
    status_dir: Path | None = None
    requeue_exit_code: int = REQUEUE_EXIT_CODE

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        directory: str | os.PathLike[str] | None = None,
        job_id: str | None = None,
        attempt: int | None = None,
        keep: int | None = None,
        interval: Interval | None = None,
        mtbf_s: float | None = None,
        signal: str | int | Signals | None = None,
        status_dir: str | os.PathLike[str] | None = None,
        requeue_exit_code: int | None = None,
    ) -> CheckpointConfig:
        """Read ``HPCBRIDGE_*`` from ``environ`` (default ``os.environ``); arguments win."""
        env = os.environ if environ is None else environ

        raw_dir = _get(env, ENV_DIR)
        resolved_dir = Path(directory if directory is not None else raw_dir or DEFAULT_DIR)

        if attempt is None and (raw := _get(env, ENV_ATTEMPT)) is not None:
            attempt = parse_int(ENV_ATTEMPT, raw, minimum=1)
        if attempt is not None and attempt < 1:
            raise CheckpointConfigError(f"attempt={attempt} must be >= 1 (attempts are 1-based)")

        if keep is None:
            raw = _get(env, ENV_KEEP)
            keep = DEFAULT_KEEP if raw is None else parse_int(ENV_KEEP, raw, minimum=1)
        if keep < 1:
            raise CheckpointConfigError(f"keep={keep} must be >= 1")

        if interval is None:
            raw = _get(env, ENV_INTERVAL)
            interval = "auto" if raw is None else parse_interval(ENV_INTERVAL, raw)
        elif interval != "auto":
            interval = parse_seconds("interval", str(interval))

        if mtbf_s is None and (raw := _get(env, ENV_MTBF)) is not None:
            mtbf_s = parse_seconds(ENV_MTBF, raw)
        elif mtbf_s is not None:
            mtbf_s = parse_seconds("mtbf_s", str(mtbf_s))

        raw_signal = signal if signal is not None else _get(env, ENV_SIGNAL) or "SIGTERM"
        resolved_signal = parse_signal(ENV_SIGNAL if signal is None else "signal", raw_signal)

        raw_status = _get(env, ENV_STATUS_DIR)
        resolved_status = (
            Path(status_dir) if status_dir is not None else Path(raw_status) if raw_status else None
        )

        code = requeue_exit_code if requeue_exit_code is not None else _requeue_code(env)

        return cls(
            directory=resolved_dir,
            job_id=job_id if job_id is not None else _get(env, ENV_JOB_ID),
            attempt=attempt,
            keep=keep,
            interval=interval,
            mtbf_s=mtbf_s,
            signal=resolved_signal,
            status_dir=resolved_status,
            requeue_exit_code=code,
        )
