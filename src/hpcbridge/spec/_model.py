"""JobSpec v1: the declarative description of a job (``apiVersion: hpcbridge/v1``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_serializer,
    field_validator,
    model_validator,
)

from hpcbridge.spec._units import format_duration, parse_duration_s, parse_memory_mb
from hpcbridge.states import DEFAULT_RETRY_ON, FailureClass

API_VERSION = "hpcbridge/v1"

DurationS = Annotated[
    float, BeforeValidator(parse_duration_s), PlainSerializer(format_duration, return_type=str)
]
MemoryMB = Annotated[int, BeforeValidator(parse_memory_mb)]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_NAME_HINT = "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name; {_NAME_HINT}")
    return value


Name = Annotated[str, BeforeValidator(lambda v: _check_name(v) if isinstance(v, str) else v)]


class Resources(_Model):
    nodes: int = Field(default=1, ge=1, le=100_000)
    tasks_per_node: int = Field(default=1, ge=1, le=100_000)
    cpus_per_task: int = Field(default=1, ge=1, le=100_000)
    mem_mb: MemoryMB | None = Field(default=None, alias="mem", description="Per node.")
    gpus: int = Field(default=0, ge=0, le=1024, description="Per node.")
    gpu_type: str | None = None
    walltime_s: DurationS | None = Field(default=None, alias="walltime")

    @property
    def cpus_per_node(self) -> int:
        return self.tasks_per_node * self.cpus_per_task

    @model_validator(mode="after")
    def _gpu_type_needs_gpus(self) -> Resources:
        if self.gpu_type and self.gpus == 0:
            raise ValueError("gpu_type is set but gpus is 0; set gpus to the number per node")
        return self


class Placement(_Model):
    partition: str | None = None
    features: tuple[str, ...] = ()
    max_switches: int | None = Field(default=None, ge=1)
    spread: Literal["none", "fault_domain"] = "none"


class StageIn(_Model):
    source: str = Field(min_length=1, description="URL or path (file or directory) to fetch.")
    dest: str = Field(min_length=1, description="Path inside the job's data directory.")
    checksum: str | None = Field(default=None, pattern=r"^(sha256|blake3|md5):[0-9a-fA-F]+$")
    include: tuple[str, ...] = Field(default=(), description="Globs a directory's files match.")
    exclude: tuple[str, ...] = Field(default=(), description="Globs of files to leave out.")


class StageOut(_Model):
    source: str = Field(min_length=1, description="Path inside the job's data directory.")
    dest: str = Field(min_length=1, description="URL or path to write to.")
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    when: Literal["success", "always"] = Field(
        default="success", description="'always' also stages out after a failure (logs)."
    )


_MOUNT = re.compile(r"^(/[^:]*):(/[^:]*)(:(ro|rw))?$")


class Container(_Model):
    """The software environment: the command runs inside this image."""

    image: str = Field(
        min_length=1,
        description="A Podman image (name:tag or ID), or the path (starting with /, ./ or "
        "../) of a Charliecloud directory image or an image tarball",
    )
    mounts: tuple[str, ...] = Field(default=(), description="host:container[:ro], absolute")
    env_passthrough: tuple[str, ...] = Field(
        default=(), description="Variables of the job's environment the container also sees"
    )
    digest: str | None = Field(
        default=None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="The image's digest; filled in at submission and pinned for every attempt",
    )

    @field_validator("mounts")
    @classmethod
    def _mount_form(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for mount in value:
            if not _MOUNT.match(mount):
                raise ValueError(
                    f"mount {mount[:80]!r} is not host:container[:ro]; write both as absolute "
                    "paths, e.g. '/scratch/data:/data:ro'"
                )
        return value

    @field_validator("env_passthrough")
    @classmethod
    def _env_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"environment variable name {name!r} is not valid")
        return value


class CheckpointPolicy(_Model):
    dir: str | None = Field(default=None, description="Default: a directory per job.")
    interval: Literal["auto"] | DurationS = "auto"
    keep: int = Field(default=3, ge=1, le=1000)
    signal: Literal["SIGTERM", "SIGUSR1", "SIGUSR2", "SIGINT"] = "SIGUSR1"
    grace_s: DurationS = Field(default=60.0, alias="grace")


class Backoff(_Model):
    initial_s: DurationS = Field(default=10.0, alias="initial")
    factor: float = Field(default=2.0, ge=1.0, le=10.0)
    max_s: DurationS = Field(default=3600.0, alias="max")
    jitter: float = Field(default=0.1, ge=0.0, le=1.0, description="Fraction of the delay.")


class RetryPolicy(_Model):
    max_attempts: int = Field(default=3, ge=1, le=100)
    backoff: Backoff = Backoff()
    retry_on: frozenset[FailureClass] = DEFAULT_RETRY_ON

    @field_serializer("retry_on")
    def _stable_order(self, value: frozenset[FailureClass]) -> list[str]:
        return sorted(c.value for c in value)  # same document in every process

    per_class_max: dict[FailureClass, int] = Field(
        default_factory=dict, description="Attempts allowed per failure class, e.g. node_failure: 5"
    )


class ArraySpec(_Model):
    """An index range and/or a parameter grid; tasks substitute ``{index}`` and ``{param}``."""

    indices: str | None = Field(default=None, description="e.g. '0-99', '1-9:2', '1,3,5'")
    params: dict[str, tuple[str | int | float | bool, ...]] = Field(default_factory=dict)
    throttle: int | None = Field(default=None, ge=1, description="Max tasks running at once.")

    @model_validator(mode="after")
    def _needs_something(self) -> ArraySpec:
        if self.indices is None and not self.params:
            raise ValueError("an array needs 'indices' (e.g. '0-19') or 'params' (a grid)")
        for name, values in self.params.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"param name {name!r} must be an identifier")
            if not values:
                raise ValueError(f"param {name!r} has no values; list at least one")
        return self


SlurmName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="A Slurm account or QOS name: letters, digits, '_', '.', '-'",
    ),
]


class Burst(_Model):
    """Burst-to-cloud (Slurm): the job may go to ``partition`` when its on-prem wait would
    exceed ``wait_threshold`` and the burst budget, egress cap and residency allow it."""

    eligible: bool = False
    wait_threshold_s: DurationS = Field(
        default=600.0, alias="wait_threshold", description="Burst only past this on-prem wait"
    )
    partition: str = Field(default="cloud", min_length=1, description="Where a burst goes")
    max_egress_gb: float | None = Field(
        default=None, ge=0, description="Largest input (from staging) worth moving, in GB"
    )
    budget_cap: float | None = Field(
        default=None, ge=0, description="Most this job's burst may cost (rate card currency)"
    )
    residency: tuple[str, ...] = Field(
        default=(), description="Where its data may go; 'onprem' keeps it on-prem"
    )
    decided: Literal["burst", "onprem"] | None = Field(
        default=None, description="What the burst policy chose; filled in at submission"
    )


class JobSpec(_Model):
    api_version: Literal["hpcbridge/v1"] = Field(alias="apiVersion")
    kind: Literal["Job"]
    name: Name
    project: Name = "default"
    tags: dict[str, str] = Field(default_factory=dict)
    workload_class: Name = "batch"
    command: tuple[str, ...] | None = Field(default=None, description="argv, never a shell line")
    script: str | None = Field(default=None, description="A script run by its #! interpreter")
    env: dict[str, str] = Field(default_factory=dict)
    resources: Resources = Resources()
    placement: Placement = Placement()
    licences: dict[str, int] = Field(default_factory=dict)
    stage_in: tuple[StageIn, ...] = ()
    stage_out: tuple[StageOut, ...] = ()
    container: Container | None = None
    checkpoint: CheckpointPolicy | None = None
    # A factory: the policy is unhashable (a dict field), so a default would be deep-copied
    # by every load of a spec that leaves it out.
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    array: ArraySpec | None = None
    priority: int = Field(default=0, ge=-1000, le=1000)
    deadline: datetime | None = None
    burst: Burst = Burst()
    backend: str = Field(default="local", description="local, slurm, ...")
    cluster: str | None = Field(default=None, description="Named cluster of the backend")
    account: SlurmName | None = Field(default=None, description="Slurm account charged")
    qos: SlurmName | None = Field(default=None, description="Slurm quality of service")
    reservation: SlurmName | None = Field(default=None, description="Slurm reservation")
    sbatch_args: tuple[str, ...] = Field(
        default=(),
        description="sbatch options hpcbridge does not model, each one long option "
        "('--mail-type=END', '--exclusive'); not those it sets itself",
    )
    submit_dir: str | None = Field(
        default=None,
        description="Where it was submitted from (HPCBRIDGE_SUBMIT_DIR); filled in at submission",
    )

    @field_validator("command")
    @classmethod
    def _argv_not_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or not value[0].strip()):
            raise ValueError("the command is empty; give argv as a list, e.g. [python, run.py]")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"environment variable name {key!r} is not valid")
            if key.startswith("HPCBRIDGE_"):
                raise ValueError(f"{key!r}: names starting with HPCBRIDGE_ are reserved")
        return value

    @field_validator("sbatch_args")
    @classmethod
    def _long_options(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arg in value:
            if not re.match(r"^--[A-Za-z][A-Za-z0-9-]*(=.*)?$", arg) or "\0" in arg:
                raise ValueError(
                    f"{arg[:60]!r} is not one long option; write each as '--name' or "
                    "'--name=value' (e.g. '--mail-type=END'), short forms as their long name"
                )
        return value

    @field_validator("licences")
    @classmethod
    def _licence_counts(cls, value: dict[str, int]) -> dict[str, int]:
        for name, count in value.items():
            if count < 1:
                raise ValueError(f"licence {name!r} count must be at least 1, got {count}")
        return value

    @model_validator(mode="after")
    def _one_entry_point(self) -> JobSpec:
        if (self.command is None) == (self.script is None):
            raise ValueError("give exactly one of 'command' (an argv list) or 'script'")
        if self.script is not None and not self.script.strip():
            raise ValueError("the script is empty; write the commands the job runs")
        return self

    def to_document(self) -> dict[str, Any]:
        """The spec as the user would write it (aliases, human units)."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True) | {
            "apiVersion": API_VERSION,
            "kind": "Job",
        }

    def check_required_tags(self, required: tuple[str, ...]) -> list[str]:
        """One problem per missing key: which key, who requires it, how to add it."""
        missing = [key for key in required if key not in self.tags]
        example = ", ".join(f"{key}: <value>" for key in missing)
        return [
            f"tags.{key}: required tag is missing (HPCBRIDGE_REQUIRED_TAGS={','.join(required)}); "
            f"add it, e.g. tags: {{{example}}}"
            for key in missing
        ]
