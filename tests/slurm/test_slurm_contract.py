"""The backend contract suite (tests/backends/test_backend_contract.py), unchanged, against
the real Slurm test clusters (22.05 and 24.11) through both transports: the CLI tools and
slurmrestd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import test_backend_contract as contract

from ._helpers import TRANSPORTS, SlurmHarness
from .conftest import VERSIONS, cluster_for

pytestmark = pytest.mark.slurm

# Every contract test, collected here again with this module's ``backend_harness``.
globals().update({name: test for name, test in vars(contract).items() if name.startswith("test_")})


@pytest.fixture(
    params=[(label, transport) for label in VERSIONS for transport in TRANSPORTS],
    ids="-".join,
)
def backend_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SlurmHarness]:
    label, transport = request.param
    harness = SlurmHarness(tmp_path, cluster_for(request, label), transport)
    try:
        yield harness
    finally:
        harness.close()
