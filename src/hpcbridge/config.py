"""Settings, loaded once (prefix ``HPCBRIDGE_``) and passed down; never read deep inside."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("hpcbridge", appauthor=False))


class Settings(BaseSettings):
    """Everything an operator can set. Each field maps to ``HPCBRIDGE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="HPCBRIDGE_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=default_home, description="Data directory.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite file under home."
    )
    required_tags: tuple[str, ...] = Field(
        default=(), description="Tag keys every job must carry, e.g. team,cost_centre."
    )
    local_cpus: int | None = Field(default=None, ge=1, description="CPU slots; default all.")
    local_mem_mb: int | None = Field(default=None, ge=1, description="Memory slots in MB.")
    local_gpus: int | None = Field(default=None, ge=0, description="GPU slots; default NVML.")
    poll_interval_s: float = Field(default=0.5, gt=0, description="Reconciler idle period.")
    kill_grace_s: float = Field(default=10.0, ge=0, description="SIGTERM to SIGKILL delay.")
    lost_grace_s: float = Field(default=60.0, ge=0, description="Unseen this long = lost.")
    quarantine_failures: int = Field(
        default=3, ge=1, description="Infrastructure failures on a node that drain it..."
    )
    quarantine_window_s: float = Field(default=3600.0, gt=0, description="...within this time.")
    quarantine_max_drained_fraction: float = Field(
        default=0.34, ge=0, le=1, description="Never drain more of a partition than this."
    )
    clusters_file: Path | None = Field(
        default=None, description="YAML file naming Slurm clusters; default <home>/clusters.yaml"
    )

    @property
    def resolved_clusters_file(self) -> Path:
        return self.clusters_file or self.home / "clusters.yaml"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'hpcbridge.db'}"

    @property
    def runs_dir(self) -> Path:
        """Per-attempt work and status directories of the local executor."""
        return self.home / "runs"
