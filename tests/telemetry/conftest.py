"""A store of each kind, and a way to read what a collector exports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hpcbridge.store import MemoryStore, SqlStore, Store
from tests.telemetry._sim import Sim


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store
    if request.param == "sqlite":
        opened = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        opened = MemoryStore()
    yield opened
    opened.close()


@pytest.fixture
def sim(store: Store) -> Sim:
    return Sim(store)


Sample = tuple[str, tuple[tuple[str, str], ...]]


def samples(registry: CollectorRegistry) -> dict[Sample, float]:
    """Every exported sample as ``(name, sorted labels) -> value``."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }


def value(source: CollectorRegistry | dict[Sample, float], name: str, **labels: str) -> float:
    """The sum of ``name`` over the series whose labels include ``labels``.

    Given a registry this scrapes it (once per call); given ``samples()``, reads that.
    """
    found = samples(source) if isinstance(source, CollectorRegistry) else source
    return sum(
        v
        for (sample, labelled), v in found.items()
        if sample == name and set(labels.items()) <= set(labelled)
    )
