"""Events for the control plane: JSON lines appended to ``$HPCBRIDGE_STATUS_DIR/events.jsonl``.

Several processes (the job, its wrapper, helper ranks) may append to the same file, so every
event is one ``write()`` of one whole line on an ``O_APPEND`` descriptor; the kernel then
never interleaves two lines (true for local file systems, not for NFS across hosts).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"

log = logging.getLogger("hpcbridge.checkpoint")


class EventLog:
    """Appends events; with no status directory it only keeps them in memory for tests."""

    def __init__(self, status_dir: Path | None, *, job_id: str | None, attempt: int | None):
        self.path = None if status_dir is None else status_dir / EVENTS_FILE
        self.job_id = job_id
        self.attempt = attempt

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        """Record one event; an unwritable status directory is logged, never fatal to the job."""
        event: dict[str, Any] = {
            "time": time.time(),
            "type": type,
            "job_id": self.job_id,
            "attempt": self.attempt,
            **fields,
        }
        if self.path is None:
            return event
        line = json.dumps(event, default=str, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("cannot append event %s to %s: %s", type, self.path, exc)
        return event
