"""Durations as written in SLO files and PromQL: ``5m``, ``6h``, ``30d``."""

from __future__ import annotations

import re

_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^([1-9][0-9]{0,8})([smhdw])$")


def parse_duration_s(value: object) -> int:
    """Seconds in a one-unit duration such as ``30d``; plain integers are seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 5m, 1h, 30d")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"duration must be positive, got {value}")
        return value
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return int(match.group(1)) * _UNITS_S[match.group(2)]
    raise ValueError(
        f"{value!r} is not a duration; write a whole number and one unit of s, m, h, d or w "
        "(e.g. 5m, 1h, 30d)"
    )


def format_duration(seconds: float) -> str:
    """The shortest exact PromQL duration for ``seconds`` (``3600`` -> ``1h``)."""
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        raise ValueError(f"{seconds!r} is not a positive whole number of seconds")
    for unit in ("d", "h", "m"):
        size = _UNITS_S[unit]
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
