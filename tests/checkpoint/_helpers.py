"""Helpers shared by the checkpoint tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hpcbridge.checkpoint import EVENTS_FILE


def read_events(status_dir: Path) -> list[dict[str, Any]]:
    path = status_dir / EVENTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def flip_bit(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
