"""The real Slurm test cluster for tests marked ``@pytest.mark.slurm``.

As root the fixture runs ``scripts/slurm-cluster reset`` once per session: it starts the cluster
if needed (idempotent) and leaves it without jobs, with every node idle. The cluster is left
running afterwards (starting it costs seconds, and a developer may want to look at it after a
failure).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._rig import Rig

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm-cluster"
START_TIMEOUT_S = 600  # a cold start on a fresh machine installs the Debian packages first


@dataclass(frozen=True)
class SlurmCluster:
    """What a client of the test cluster needs to know."""

    slurm_conf: Path | None
    """Value for SLURM_CONF, or None when the default location is used."""
    state_dir: Path
    rest_url: str
    """slurmrestd base URL; API paths are ``/slurm/v0.0.38/...`` and ``/slurmdb/v0.0.38/...``."""
    rest_user: str
    """User name for the ``X-SLURM-USER-NAME`` header (the token is issued for this user)."""
    token_command: tuple[str, ...]
    """Command printing a fresh JWT on stdout (append a lifespan in seconds if wanted)."""
    partitions: tuple[str, ...] = ("batch", "spot", "prio", "cloud")
    default_partition: str = "batch"
    preemptible_partition: str = "spot"
    """PriorityTier=1, PreemptMode=REQUEUE, GraceTime=10."""
    priority_partition: str = "prio"
    """PriorityTier=10: its jobs requeue running ``spot`` jobs."""
    cloud_partition: str = "cloud"
    """Power-saving nodes: a job there waits ~10-30 s while its node is started."""
    static_nodes: tuple[str, ...] = ("n1", "n2", "n3")
    cloud_nodes: tuple[str, ...] = ("c1", "c2")
    cpus_per_node: int = 2
    memory_mb_per_node: int = 4000
    gpus_per_node: int = 2
    gres: str = "gpu:fake:2"
    static_feature: str = "static"
    """Every static node has it; cloud nodes have ``cloud``."""
    bigmem_feature: str = "bigmem"
    """Only on ``bigmem_nodes``: for ``--constraint`` tests."""
    bigmem_nodes: tuple[str, ...] = ("n3",)
    licence: str = "fluent"
    licence_count: int = 4

    def env(self) -> dict[str, str]:
        """The environment for running Slurm commands against this cluster."""
        env = dict(os.environ)
        if self.slurm_conf is not None:
            env["SLURM_CONF"] = str(self.slurm_conf)
        # A SLURM_JWT in the environment would make the CLI tools authenticate with it.
        env.pop("SLURM_JWT", None)
        return env

    def token(self, lifespan_s: int = 3600) -> str:
        """A fresh slurmrestd JWT for ``rest_user``."""
        out = subprocess.run(
            [*self.token_command, str(lifespan_s)],
            check=True,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=30,
        )
        return out.stdout.strip()

    def rest_headers(self, lifespan_s: int = 3600) -> dict[str, str]:
        """HTTP headers that authenticate a request to slurmrestd."""
        return {
            "X-SLURM-USER-NAME": self.rest_user,
            "X-SLURM-USER-TOKEN": self.token(lifespan_s),
        }


def _exports(text: str) -> dict[str, str]:
    """The literal ``export NAME=value`` lines of ``scripts/slurm-cluster env``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line and "$(" not in line:
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = value
    return values


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """Ensure the Slurm test cluster runs and describe it."""
    status = subprocess.run([str(SCRIPT), "status"], check=False, capture_output=True, timeout=60)
    if os.geteuid() == 0:
        installable = shutil.which("sbatch") or shutil.which("apt-get")
        if status.returncode != 0 and not installable:
            pytest.skip("no Slurm installed and no apt-get to install it (needs Debian 12)")
        # reset, not just start: slurmctld keeps its jobs across restarts, and a job left by an
        # earlier session (or one a killed slurmctld resurrected) would hold the nodes.
        start = subprocess.run(
            [str(SCRIPT), "reset"],
            check=False,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        if start.returncode != 0:
            pytest.fail(
                f"scripts/slurm-cluster reset failed ({start.returncode}):\n"
                f"{start.stdout}\n{start.stderr}"
            )
    elif status.returncode != 0:
        pytest.skip("the Slurm test cluster is not running and starting it needs root")
    env_out = subprocess.run(
        [str(SCRIPT), "env"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    exports = _exports(env_out)
    slurm_conf = exports.get("SLURM_CONF")
    yield SlurmCluster(
        slurm_conf=Path(slurm_conf) if slurm_conf else None,
        state_dir=Path(exports["HPCBRIDGE_SLURM_STATE"]),
        rest_url=exports["HPCBRIDGE_SLURM_REST_URL"],
        rest_user=pwd.getpwuid(os.geteuid()).pw_name,
        token_command=(str(SCRIPT), "token"),
    )


@pytest.fixture
def rig(tmp_path: Path, slurm_cluster: SlurmCluster) -> Iterator[Rig]:
    """The real reconciler driving the CLI transport; repairs the cluster afterwards."""
    # These modules import this one (for SlurmCluster): import them once it is complete.
    from hpcbridge.backends.slurm import Clusters, SlurmBackend  # noqa: PLC0415

    from ._faults import restore  # noqa: PLC0415
    from ._helpers import cluster_config, make_settings, scancel  # noqa: PLC0415
    from ._rig import Rig  # noqa: PLC0415

    clusters = Clusters((cluster_config(slurm_cluster, "cli", log_dir=tmp_path / "logs"),))
    backend = SlurmBackend(make_settings(tmp_path / "home"), clusters=clusters)
    rig = Rig(backend, tmp_path)
    try:
        yield rig
    finally:
        restore(slurm_cluster)
        scancel(slurm_cluster, rig.native_ids())
        backend.close()
