"""Reasons as people read them: moved to ``hpcbridge.service.reasons`` (the API and the
CLI both show them); the CLI's modules import them from here."""

from hpcbridge.service.reasons import (
    EXIT_COMMAND_NOT_FOUND,
    attempt_reason,
    history_reason,
    is_command_not_found,
    job_reason,
    missing_command,
    not_found_text,
    round_durations,
    rounded_duration,
    stderr_tail,
)

__all__ = [
    "EXIT_COMMAND_NOT_FOUND",
    "attempt_reason",
    "history_reason",
    "is_command_not_found",
    "job_reason",
    "missing_command",
    "not_found_text",
    "round_durations",
    "rounded_duration",
    "stderr_tail",
]
