"""Named Slurm clusters, from the YAML file ``Settings.resolved_clusters_file``.

.. code-block:: yaml

    clusters:
      onprem:                      # a login node: the Slurm commands are on PATH
        default: true
        transport: cli
        default_partition: batch
        slurm_conf: /etc/slurm/slurm.conf
        log_dir: /shared/hpcbridge/logs
      cloud:                       # a control plane off the cluster: slurmrestd + JWT
        transport: rest
        rest_url: https://slurm.example.org:6820
        rest_user: svc-hpcbridge
        token_command: [scontrol, token, lifespan=3600]
        log_dir: /shared/hpcbridge/logs

Without the file there is one cluster, ``default``, reached through the CLI tools on PATH.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hpcbridge.errors import ConfigError, NotFoundError

DEFAULT_CLUSTER = "default"
REST_API_VERSION = "v0.0.38"


class ClusterConfig(BaseModel):
    """One Slurm cluster hpcbridge can submit to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = DEFAULT_CLUSTER
    default: bool = False
    transport: Literal["cli", "rest"] = "cli"
    default_partition: str | None = None
    slurm_conf: Path | None = Field(
        default=None, description="SLURM_CONF for the CLI tools; default: Slurm's own default"
    )
    rest_url: str | None = Field(default=None, description="slurmrestd base URL")
    rest_user: str | None = Field(default=None, description="X-SLURM-USER-NAME")
    token: str | None = Field(
        default=None,
        description="A fixed JWT (prefer token_command); without either, SLURM_JWT from "
        "hpcbridge's environment",
    )
    token_command: tuple[str, ...] | None = Field(
        default=None, description="argv printing a JWT (or SLURM_JWT=...) on stdout"
    )
    token_lifespan_s: int = Field(default=3600, ge=60)
    log_dir: Path | None = Field(
        default=None,
        description="Where jobs write stdout/stderr; must be visible to the compute nodes "
        "and, to read logs, to hpcbridge. Default: <home>/slurm/<cluster>",
    )
    workdir: Path | None = Field(
        default=None, description="Working directory of jobs; default the submit directory"
    )
    job_path: str = Field(
        default="/usr/local/bin:/usr/bin:/bin",
        description="PATH given to jobs submitted over REST (the CLI exports the login PATH)",
    )
    job_python: str | None = Field(
        default=None,
        description="Python with hpcbridge installed, as the compute nodes see it (runs the "
        "input check, the node cache and the container launcher before the command); "
        "default: this control plane's own interpreter, for an installation the nodes share",
    )
    spot_partitions: tuple[str, ...] = Field(
        default=(),
        description="Partitions whose jobs may be preempted (metrics label them spot)",
    )
    fabric_probe: bool = Field(
        default=True,
        description="Time the fabric between the first two nodes of multi-node jobs at start "
        "(M7; needs python3 on the nodes, costs about a second)",
    )
    node_cache_dir: str | None = Field(
        default=None,
        description="Node-local cache of staged inputs, e.g. /scratch/hpcbridge-cache or "
        "/var/lib/hpcbridge/nodecache/{node} ({node}: the node's name): single-node jobs read "
        "their inputs from it, and jobs go to a usable node that already holds them",
    )
    node_cache_max_gb: float = Field(
        default=100.0, gt=0, description="Size of each node's cache (least recently used out)"
    )
    command_timeout_s: float = Field(default=60.0, gt=0)
    accounting_wait_s: float = Field(
        default=30.0,
        ge=0,
        description="How long a verdict that needs sacct (memory of a killed job, who "
        "cancelled it) waits for the record",
    )
    usage_wait_s: float = Field(
        default=10.0,
        ge=0,
        description="How long any finished job waits for its sacct usage record (MaxRSS, TRES)",
    )
    find_window_days: int = Field(default=14, ge=1)
    negative_nice: bool = Field(
        default=False,
        description="hpcbridge submits as a Slurm operator or administrator, who may set a "
        "negative --nice: a spec's positive priority is then passed on, not refused",
    )
    queue_interval_s: float = Field(
        default=30.0,
        ge=0,
        description="Least time between two looks at this cluster's queue (squeue --me or "
        "REST /jobs); in between, hpcbridge answers from the last look and the jobs' status "
        "files. A job's start or end seen in its status files brings the next look forward "
        "(at most every 5 s)",
    )

    @field_validator("token_command", mode="before")
    @classmethod
    def _split_command(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(shlex.split(value))
        return value

    @model_validator(mode="after")
    def _rest_needs(self) -> ClusterConfig:
        if self.transport == "rest":
            missing = [
                field
                for field, value in (("rest_url", self.rest_url), ("rest_user", self.rest_user))
                if not value
            ]
            if missing:
                raise ValueError(
                    f"transport rest needs {' and '.join(missing)}, e.g. "
                    "rest_url: http://slurm-head:6820, rest_user: svc-hpcbridge"
                )
        return self

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """The environment for Slurm's CLI tools: ``base`` without variables that would
        change what they do (SBATCH_*, SLURM_* but SLURM_CONF) or leak hpcbridge's own
        settings (HPCBRIDGE_*: database URLs) into jobs, which inherit it."""
        env = {
            key: value
            for key, value in base.items()
            if not key.startswith(("HPCBRIDGE_", "SBATCH_", "SALLOC_", "SRUN_", "SQUEUE_"))
            and (not key.startswith("SLURM_") or key == "SLURM_CONF")
        }
        if self.slurm_conf is not None:
            env["SLURM_CONF"] = str(self.slurm_conf)
        return env


@dataclass(frozen=True)
class Clusters:
    """The configured clusters, in file order."""

    clusters: tuple[ClusterConfig, ...]
    source: Path | None = None

    @property
    def names(self) -> list[str]:
        return [cluster.name for cluster in self.clusters]

    @property
    def default(self) -> ClusterConfig:
        marked = [cluster for cluster in self.clusters if cluster.default]
        return marked[0] if marked else self.clusters[0]

    def __iter__(self) -> Iterator[ClusterConfig]:
        return iter(self.clusters)

    def get(self, name: str | None) -> ClusterConfig:
        """The cluster called ``name``; the default one for None."""
        if name is None:
            return self.default
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        where = f" in {self.source}" if self.source else ""
        raise NotFoundError(
            f"unknown Slurm cluster {name!r}; configured{where}: {', '.join(self.names)}",
            hint="set 'cluster' in the spec to one of them, or add it to the clusters file",
        )


def load_clusters(path: Path) -> Clusters:
    """Read the clusters file; a missing file means one CLI cluster called ``default``."""
    if not path.exists():
        return Clusters((ClusterConfig(),), None)
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read the clusters file {path}: {exc}", hint="fix the YAML"
        ) from exc
    entries = document.get("clusters") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(
            f"{path}: expected a mapping 'clusters: {{NAME: {{transport: cli, ...}}}}'",
            hint="see docs/slurm.md for an example",
        )
    clusters = []
    for name, body in entries.items():
        try:
            clusters.append(ClusterConfig.model_validate({**(body or {}), "name": str(name)}))
        except ValidationError as exc:
            problems = "; ".join(
                f"clusters.{name}.{'.'.join(map(str, e['loc'])) or '(cluster)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"{path}: {problems}", hint="see docs/slurm.md") from exc
    if sum(cluster.default for cluster in clusters) > 1:
        raise ConfigError(
            f"{path}: more than one cluster has 'default: true'", hint="mark only one"
        )
    return Clusters(tuple(clusters), path)
