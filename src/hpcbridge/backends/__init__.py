"""Backends: the local executor and schedulers, found through entry points."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from hpcbridge.backends._protocol import (
    AttemptRef,
    Backend,
    Deferred,
    LaunchRequest,
    Observation,
    Phase,
    Submitted,
    WakeUp,
)
from hpcbridge.config import Settings
from hpcbridge.errors import ConfigError

ENTRY_POINT_GROUP = "hpcbridge.backends"


def available_backends() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_backend(name: str, settings: Settings, wake: WakeUp | None = None) -> Backend:
    """Instantiate the backend registered under ``name`` (entry point group hpcbridge.backends)."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        raise ConfigError(
            f"unknown backend {name!r}; available: {', '.join(available_backends())}",
            hint="set 'backend' in the job spec to one of them",
        )
    factory: Any = found[0].load()
    backend: Backend = factory(settings, wake)
    return backend


__all__ = [
    "ENTRY_POINT_GROUP",
    "AttemptRef",
    "Backend",
    "Deferred",
    "LaunchRequest",
    "Observation",
    "Phase",
    "Submitted",
    "WakeUp",
    "available_backends",
    "load_backend",
]
