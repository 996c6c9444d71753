"""Reading what jobs write into their status directory (``$HPCBRIDGE_STATUS_DIR``).

Compute nodes may not reach the control plane, so the job side appends JSON lines to
``events.jsonl`` in the attempt's status directory:

- ``{"type": "checkpoint_saved", "time": T, "duration_s": D, "bytes": B, ...}`` (the
  checkpoint SDK);
- ``{"type": "fabric_latency", "time": T, "rtt_s_p50": R, ...}`` (the probe multi-node
  Slurm jobs run at start, ``hpcbridge.backends.slurm.fabric_probe``);
- ``{"type": "gpu_sample", "time": T, "utilization": U}``, U in 0..1, the mean over the
  job's GPUs (``hpcbridge.backends.gpu_sampler``, through NVML, beside every GPU job).

The control plane reads them here; nothing in this module writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcbridge.events import INGESTED_KINDS, UTILIZATION, EventKind

EVENTS_FILE = "events.jsonl"
GPU_SAMPLE: str = EventKind.GPU_SAMPLE.value
_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class StatusEvent:
    kind: str
    time: float
    data: dict[str, Any]


def _parse(line: bytes) -> StatusEvent | None:
    try:
        body = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None  # a torn or foreign line: skip it
    if not isinstance(body, dict):
        return None
    kind, when = body.get("type"), body.get("time")
    if not isinstance(kind, str) or not isinstance(when, int | float) or isinstance(when, bool):
        return None
    data = {k: v for k, v in body.items() if k not in ("type", "time", "job_id", "attempt")}
    return StatusEvent(kind, float(when), data)


def read_status_events(status_dir: Path, *, offset: int = 0) -> tuple[list[StatusEvent], int]:
    """Complete lines of ``events.jsonl`` from byte ``offset``; returns the next offset."""
    try:
        with open(status_dir / EVENTS_FILE, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return [], offset
    end = data.rfind(b"\n") + 1  # an unterminated last line is still being written
    events = [e for e in map(_parse, data[:end].splitlines()) if e is not None]
    return events, offset + end


def ingestable_events(status_dir: Path) -> list[StatusEvent]:
    """The job-side events of a finished attempt that belong in the store's event log."""
    events, _ = read_status_events(status_dir)
    return [e for e in events if e.kind in INGESTED_KINDS]


def _tail_lines(path: Path) -> Iterator[bytes]:
    """Lines of the last 64 KiB of ``path``, newest first (the first one may be torn)."""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - _TAIL_BYTES))
        data = handle.read()
    yield from reversed(data.splitlines())


def latest_gpu_utilization(status_dir: Path, *, since: float) -> float | None:
    """The newest ``gpu_sample`` taken at or after ``since``, clamped to 0..1."""
    try:
        lines = list(_tail_lines(status_dir / EVENTS_FILE))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    for line in lines:
        if GPU_SAMPLE.encode() not in line:
            continue
        event = _parse(line)
        if event is None or event.kind != GPU_SAMPLE:
            continue
        if event.time < since:
            return None
        value = event.data.get(UTILIZATION)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return min(max(float(value), 0.0), 1.0)
    return None
