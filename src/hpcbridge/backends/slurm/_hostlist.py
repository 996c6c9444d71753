"""Slurm host lists (``n[1-3,7],gpu[01-02]``) and index ranges (``0-99:2,105%4``)."""

from __future__ import annotations

import re

_BRACKET = re.compile(r"\[([^\]]*)\]")


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets: ``a[1,2],b`` -> ``['a[1,2]', 'b']``."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part for part in (p.strip() for p in parts) if part]


def _expand_range(spec: str) -> list[str]:
    """``01-03`` -> ``['01', '02', '03']`` keeping the zero padding; ``7`` -> ``['7']``."""
    out: list[str] = []
    for item in spec.split(","):
        low, _, high = item.strip().partition("-")
        if not high:
            out.append(low)
            continue
        width = len(low) if low.startswith("0") else 0
        out.extend(str(n).zfill(width) for n in range(int(low), int(high) + 1))
    return out


def expand_hostlist(text: str | None) -> tuple[str, ...]:
    """Every host name in a Slurm host list; ``''``, ``None assigned`` and ``(null)`` -> ()."""
    if not text or text in ("None assigned", "(null)", "None"):
        return ()
    hosts: list[str] = []
    for part in split_top_level(text):
        hosts.extend(_expand_one(part))
    return tuple(hosts)


def _expand_one(pattern: str) -> list[str]:
    match = _BRACKET.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [
        f"{head}{middle}{rest}"
        for middle in _expand_range(match.group(1))
        for rest in _expand_one(tail)
    ]


def expand_indices(text: str) -> list[int]:
    """Array indices of ``0-99``, ``1-9:2``, ``1,3,5``, ``5-99%4`` (the throttle is dropped)."""
    text = text.strip().strip("[]").split("%", 1)[0]
    indices: list[int] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        span, _, step = item.partition(":")
        low, _, high = span.partition("-")
        if high:
            indices.extend(range(int(low), int(high) + 1, int(step or 1)))
        else:
            indices.append(int(low))
    return indices


def compress_indices(indices: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5``: the ``--array`` form of a list of indices."""
    ordered = sorted(set(indices))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)
