"""Backends: the local executor and schedulers, found through entry points."""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from hpcbridge.backends._protocol import (
    ArraySubmit,
    AttemptRef,
    Backend,
    Deferred,
    LaunchRequest,
    NodeControl,
    NodeInfo,
    Observation,
    Phase,
    Submitted,
    WakeUp,
    array_token,
    split_array_token,
)
from hpcbridge.config import Settings
from hpcbridge.errors import ConfigError

ENTRY_POINT_GROUP = "hpcbridge.backends"


@functools.cache
def _registered() -> dict[str, EntryPoint]:
    """Entry points, read once per process: scanning installed metadata costs milliseconds."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    return sorted(_registered())


def load_backend(name: str, settings: Settings, wake: WakeUp | None = None) -> Backend:
    """Instantiate the backend registered under ``name`` (entry point group hpcbridge.backends)."""
    found = [ep for ep_name, ep in _registered().items() if ep_name == name]
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
    "ArraySubmit",
    "AttemptRef",
    "Backend",
    "Deferred",
    "LaunchRequest",
    "NodeControl",
    "NodeInfo",
    "Observation",
    "Phase",
    "Submitted",
    "WakeUp",
    "array_token",
    "available_backends",
    "load_backend",
    "split_array_token",
]
