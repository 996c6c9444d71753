"""Reasons as people read them: durations rounded, and a missing command named.

The store keeps each reason as the reconciler or a backend wrote it, and ``--json`` shows
it so. Tables and panels show it through ``shown``: ``retrying after app_error in
546.5245235578141s`` becomes ``... in 9m7s``, and exit code 127 (what a shell returns when
it cannot find a command) says which command was not found, read from the attempt's error
output, instead of the advice for a program that failed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from hpcbridge.spec import format_duration
from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import Attempt, Job

EXIT_COMMAND_NOT_FOUND = 127

_FRACTIONAL_SECONDS = re.compile(r"(?<![\w.])(\d+\.\d+)s\b")
_TAIL_BYTES = 32 * 1024
# How shells and exec wrappers say it, newest line first:
#   sh: 1: foo: not found / hpcbridge-shim: 1: exec: foo: not found (dash)
#   bash: line 1: foo: command not found / zsh: command not found: foo
#   env: 'foo': No such file or directory (GNU env quotes with U+2018 and U+2019)
#   slurmstepd: error: execve(): foo: No such file or directory
_NOT_FOUND = (
    re.compile(r"command not found: (\S+)\s*$"),
    re.compile(r"(?:^|: )([^\s:'\"]+): (?:command )?not found\s*$"),
    re.compile(r"execve\(\): ([^:]+): No such file or directory"),
    re.compile(r"^env: ['\u2018]?([^'\u2019:]+)['\u2019]?: No such file or directory"),
)
_APP_ERROR_ADVICE = "app_error is not retried"
_EXITED_127 = re.compile(rf"the job exited with code {EXIT_COMMAND_NOT_FOUND}\b")
_NOT_FOUND_ADVICE = "install it on the node, or give its full path or set PATH in the spec's env"


def rounded_duration(seconds: float) -> str:
    """``2.46`` -> ``2.5s``, ``546.52`` -> ``9m7s``, ``3600.4`` -> ``1h``."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    return format_duration(round(seconds))


def round_durations(text: str) -> str:
    """Every fractional number of seconds in ``text`` (``10.212392043362895s``) rounded."""
    return _FRACTIONAL_SECONDS.sub(lambda m: rounded_duration(float(m.group(1))), text)


def missing_command(stderr_lines: Sequence[str]) -> str | None:
    """The command a shell could not find, from the end of an attempt's error output."""
    for line in reversed(stderr_lines):
        for pattern in _NOT_FOUND:
            found = pattern.search(line.strip())
            if found:
                return found.group(1)
    return None


def stderr_tail(path: Path | None) -> list[str]:
    """The last lines of an error log (its last 32 KiB); none when it cannot be read."""
    if path is None:
        return []
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - _TAIL_BYTES))
            return handle.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def not_found_text(command: str | None) -> str:
    named = f": {command}" if command else ""
    return f"command not found{named} (exit code {EXIT_COMMAND_NOT_FOUND})"


def is_command_not_found(exit_code: int | None, failure_class: FailureClass | None) -> bool:
    return exit_code == EXIT_COMMAND_NOT_FOUND and failure_class in (None, FailureClass.APP_ERROR)


def job_reason(job: Job, command: str | None = None) -> str:
    """The job's reason as shown; ``command`` is the one not found, when known."""
    text = round_durations(job.reason or "")
    if not is_command_not_found(job.exit_code, job.failure_class):
        return text
    _, _, rest = text.partition("; ")
    if rest.startswith(_APP_ERROR_ADVICE) or (job.state is JobState.FAILED and not rest):
        rest = _NOT_FOUND_ADVICE
    return f"{not_found_text(command)}; {rest}" if rest else not_found_text(command)


def history_reason(text: str, command: str | None = None) -> str:
    """A reason from the event history (``gave up: the job exited with code 127; ...``),
    with durations rounded and a missing command said as such."""
    text = round_durations(text)
    found = _EXITED_127.search(text)
    if found is None:
        return text
    head, rest = text[: found.start()], text[found.end() :]
    if rest.startswith("; " + _APP_ERROR_ADVICE):
        rest = "; " + _NOT_FOUND_ADVICE
    return f"{head}{not_found_text(command)}{rest}"


def attempt_reason(attempt: Attempt, command: str | None = None) -> str:
    if is_command_not_found(attempt.exit_code, attempt.failure_class):
        return not_found_text(command)
    return round_durations(attempt.reason or "")
