"""Parsing of human units: durations (``90m``, ``2h``, ``1-12:00:00``) and memory (``4G``)."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)", re.IGNORECASE)
_DURATION_FULL = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*(?:d|h|m|s|ms)\s*)+$", re.IGNORECASE)
_CLOCK = re.compile(r"^(?:(\d+)-)?(\d+):(\d{1,2})(?::(\d{1,2}))?$")
_SECONDS_PER = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}

DURATION_HINT = "use seconds or units like 45s, 90m, 2h, 1h30m, 1d, or Slurm's D-HH:MM:SS"
MEMORY_HINT = "use megabytes or units like 512M, 4G, 2GiB, 1T"

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_MB_PER = {"k": 1 / 1024, "": 1.0, "m": 1.0, "g": 1024.0, "t": 1024.0 * 1024.0}


def parse_duration_s(value: object) -> float:
    """Seconds in ``value``; raises ValueError with a hint for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value.strip())
    else:
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{value!r} must be a positive duration (finite); {DURATION_HINT}")
    return seconds


def _parse_duration_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    clock = _CLOCK.match(text)
    if clock:
        days, first, second, third = clock.groups()
        hours, minutes, secs = (first, second, third) if third is not None else (0, first, second)
        return int(days or 0) * 86400.0 + int(hours) * 3600.0 + int(minutes) * 60.0 + int(secs)
    if _DURATION_FULL.match(text):
        return sum(float(n) * _SECONDS_PER[u.lower()] for n, u in _DURATION_PART.findall(text))
    raise ValueError(f"{text!r} is not a duration; {DURATION_HINT}")


def parse_memory_mb(value: object) -> int:
    """Megabytes in ``value`` (plain numbers are megabytes, as in Slurm's ``--mem``)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount of memory; {MEMORY_HINT}")
    if isinstance(value, int | float):
        megabytes = float(value)
    elif isinstance(value, str) and (match := _MEMORY.match(value)):
        number, unit, _suffix = match.groups()
        megabytes = float(number) * _MB_PER[unit.lower()]
    else:
        raise ValueError(f"{value!r} is not an amount of memory; {MEMORY_HINT}")
    if not math.isfinite(megabytes) or megabytes <= 0:
        raise ValueError(f"{value!r} must be a positive amount of memory (finite); {MEMORY_HINT}")
    return max(1, round(megabytes))


def format_duration(seconds: float) -> str:
    """``5400`` -> ``1h30m``; exact, so that parsing the text gives ``seconds`` back."""
    if seconds != int(seconds):
        # Positional and exact (no exponent), so parsing gives the same float back.
        return format(Decimal(repr(seconds)), "f") + "s"
    total = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    if total or not parts:
        parts.append(f"{total}s")
    return "".join(parts)
