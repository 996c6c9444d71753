"""What ``decide()`` sees of a job's data stage: running, done or failed (pure data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpcbridge.states import FailureClass


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """A finished stage-in or stage-out; a stage still running has no outcome (None)."""

    failure_class: FailureClass | None = None
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Files (path, size, digest), bytes and duration, for the event that records it."""

    @property
    def ok(self) -> bool:
        return self.failure_class is None
