"""The real Slurm test clusters for tests marked ``@pytest.mark.slurm``.

As root the fixture runs ``scripts/slurm-cluster reset`` once per session: it starts the cluster
if needed (idempotent) and leaves it without jobs, with every node idle. The cluster is left
running afterwards (starting it costs seconds, and a developer may want to look at it after a
failure).

``slurm24_cluster`` is the same for the Slurm 24.11 cluster (``scripts/slurm-cluster v24``,
in a chroot; HPCBRIDGE_SLURM24=1 asks for it, the test command sets it), and
``versioned_cluster`` is either, so that one test body runs on both versions.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
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
    label: str = "slurm22"
    """Test id of this cluster in parametrized tests."""
    name: str = "hpcbridge"
    """Slurm's ClusterName (jobs see it as SLURM_CLUSTER_NAME)."""
    control: tuple[str, ...] = (str(SCRIPT),)
    """The cluster script: append ``start``, ``reset`` or ``status``."""
    bin_dir: Path | None = None
    """Put first on PATH for this cluster's Slurm commands (None: those on PATH)."""
    run_dir: Path | None = None
    """Where the daemons' pid files are; default ``state_dir/run``."""
    ctld_state_dir: Path | None = None
    """slurmctld's StateSaveLocation; default ``state_dir/spool/ctld``."""
    job_python: str = sys.executable
    """A Python 3 that jobs on the nodes can run (stdlib and this repository's src only)."""
    on_node: tuple[str, ...] = ()
    """Prefix for running a program here as a job on the nodes would (in their root)."""

    @property
    def pid_dir(self) -> Path:
        return self.run_dir or self.state_dir / "run"

    @property
    def job_state_file(self) -> Path:
        return (self.ctld_state_dir or self.state_dir / "spool" / "ctld") / "job_state"

    def env(self) -> dict[str, str]:
        """The environment for running Slurm commands against this cluster."""
        env = dict(os.environ)
        if self.bin_dir is not None:
            env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
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


def _start(control: tuple[str, ...], what: str) -> None:
    """``reset`` as root (start if needed, no jobs, nodes idle); else the cluster must run."""
    status = subprocess.run([*control, "status"], check=False, capture_output=True, timeout=60)
    if os.geteuid() == 0:
        installable = shutil.which("sbatch") or shutil.which("apt-get")
        if status.returncode != 0 and not installable:
            pytest.skip("no Slurm installed and no apt-get to install it (needs Debian 12)")
        # reset, not just start: slurmctld keeps its jobs across restarts, and a job left by an
        # earlier session (or one a killed slurmctld resurrected) would hold the nodes.
        start = subprocess.run(
            [*control, "reset"],
            check=False,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        if start.returncode != 0:
            pytest.fail(
                f"{' '.join(control)} reset failed ({start.returncode}):\n"
                f"{start.stdout}\n{start.stderr}"
            )
    elif status.returncode != 0:
        pytest.skip(f"the {what} is not running and starting it needs root")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """Ensure the Slurm test cluster runs and describe it."""
    _start((str(SCRIPT),), "Slurm test cluster")
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


SLURM24 = os.environ.get("HPCBRIDGE_SLURM24") == "1"
SLURM24_SKIP = (
    "needs the Slurm 24.11 test cluster: HPCBRIDGE_SLURM24=1 (root starts it with "
    "'scripts/slurm-cluster v24 start'; the test command does both)"
)


@pytest.fixture(scope="session")
def slurm24_cluster() -> Iterator[SlurmCluster]:
    """The Slurm 24.11 cluster in its chroot, reached through the command wrappers of
    ``scripts/slurm-cluster v24 env``; its jobs run the chroot's python3. Running the
    wrappers (chroot) needs root."""
    if not SLURM24:
        pytest.skip(SLURM24_SKIP)
    if os.geteuid() != 0:
        pytest.skip("the Slurm 24.11 cluster's commands run in a chroot, which needs root")
    control = (str(SCRIPT), "v24")
    _start(control, "Slurm 24.11 test cluster")
    exports = _exports(
        subprocess.run(
            [*control, "env"], check=True, capture_output=True, text=True, timeout=30
        ).stdout
    )
    root = Path(exports["HPCBRIDGE_SLURM24_ROOT"])
    yield SlurmCluster(
        slurm_conf=None,
        state_dir=root.parent,
        rest_url=exports["HPCBRIDGE_SLURM24_REST_URL"],
        rest_user="root",
        token_command=(*control, "token"),
        partitions=("batch", "spot", "prio"),
        cloud_partition="",
        static_nodes=("m1", "m2", "m3"),
        cloud_nodes=(),
        gpus_per_node=0,
        gres="",
        bigmem_nodes=("m3",),
        label="slurm24",
        name="test24",
        control=control,
        bin_dir=Path(exports["HPCBRIDGE_SLURM24_BIN"]),
        run_dir=root / "run",
        ctld_state_dir=root / "var" / "spool" / "slurmctld",
        job_python="/usr/bin/python3",
        on_node=("chroot", str(root)),
    )


VERSIONS = ("slurm22", "slurm24")
"""Labels of the test clusters; ``versioned_cluster`` is parametrized over them."""
_FIXTURES = {"slurm22": "slurm_cluster", "slurm24": "slurm24_cluster"}


def cluster_for(request: pytest.FixtureRequest, label: str) -> SlurmCluster:
    """The session's cluster of that label (started on first use; 24.11 may skip)."""
    cluster = request.getfixturevalue(_FIXTURES[label])
    assert isinstance(cluster, SlurmCluster)
    return cluster


@pytest.fixture(params=VERSIONS)
def versioned_cluster(request: pytest.FixtureRequest) -> SlurmCluster:
    """Each test cluster in turn: Slurm 22.05, then 24.11."""
    return cluster_for(request, request.param)


@contextlib.contextmanager
def open_rig(root: Path, cluster: SlurmCluster, transport: str = "cli") -> Iterator[Rig]:
    """The real reconciler driving ``cluster`` through ``transport``; repairs the cluster
    afterwards (restarts killed daemons, resumes nodes, cancels the rig's jobs)."""
    # These modules import this one (for SlurmCluster): import them once it is complete.
    from hpcbridge.backends.slurm import Clusters, SlurmBackend  # noqa: PLC0415

    from ._faults import restore  # noqa: PLC0415
    from ._helpers import cluster_config, make_settings, scancel  # noqa: PLC0415
    from ._rig import Rig  # noqa: PLC0415

    clusters = Clusters((cluster_config(cluster, transport, log_dir=root / "logs"),))
    backend = SlurmBackend(make_settings(root / "home"), clusters=clusters, env=cluster.env())
    rig = Rig(backend, root, cluster=cluster)
    try:
        yield rig
    finally:
        restore(cluster)
        scancel(cluster, rig.native_ids())
        backend.close()


@pytest.fixture
def rig(tmp_path: Path, slurm_cluster: SlurmCluster) -> Iterator[Rig]:
    """The real reconciler driving the CLI transport; repairs the cluster afterwards."""
    with open_rig(tmp_path, slurm_cluster) as rig:
        yield rig


RIG_RUNS = (("slurm22", "cli"), ("slurm24", "cli"), ("slurm24", "rest"))
"""Cluster and transport of each ``versioned_rig``. Not slurm22 over REST: slurmrestd 22.05
(v0.0.38) refuses the checkpoint signal to the batch shell (``signal: "B:USR1@8"`` answers
HTTP 400 "Invalid SIGNAL specification"), so a checkpointed job cannot be submitted there."""


@pytest.fixture(params=RIG_RUNS, ids="-".join)
def versioned_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    """``rig`` on each cluster version and transport of ``RIG_RUNS``; ``rig.cluster`` says
    which."""
    label, transport = request.param
    cluster = cluster_for(request, label)
    with open_rig(tmp_path, cluster, transport) as rig:
        yield rig
