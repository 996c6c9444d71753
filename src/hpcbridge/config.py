"""Settings, loaded once (prefix ``HPCBRIDGE_``) and passed down; never read deep inside."""

from __future__ import annotations

import json
import reprlib
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "HPCBRIDGE_"


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("hpcbridge", appauthor=False))


class Settings(BaseSettings):
    """Everything an operator can set. Each field maps to ``HPCBRIDGE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    home: Path = Field(default_factory=default_home, description="Data directory.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite file under home."
    )
    required_tags: Annotated[tuple[str, ...], NoDecode] = Field(
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
    lease_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="With PostgreSQL: how long a reconciler leads without renewing its lease.",
    )
    clusters_file: Path | None = Field(
        default=None, description="YAML file naming Slurm clusters; default <home>/clusters.yaml"
    )
    tracing: bool | None = Field(
        default=None,
        description="Export OpenTelemetry traces over OTLP (OTEL_EXPORTER_OTLP_* say where); "
        "default: on when OTEL_EXPORTER_OTLP_ENDPOINT is set.",
    )
    server: str | None = Field(
        default=None,
        description="Client mode: the URL of an 'hpcbridge serve' to send commands to.",
    )
    token: SecretStr | None = Field(
        default=None, description="Client mode: the bearer token for the server."
    )
    oidc_issuer: str | None = Field(
        default=None, description="OIDC: the issuer (iss) of accepted JWTs; unset: OIDC off."
    )
    oidc_audience: str | None = Field(
        default=None, description="OIDC: the audience (aud) JWTs must name."
    )
    oidc_jwks: str | None = Field(
        default=None, description="OIDC: the issuer's keys, a JWKS file path or https URL."
    )
    oidc_roles_claim: str = Field(
        default="hpcbridge_roles", description="OIDC: the claim mapping projects to roles."
    )
    oidc_subject_claim: str = Field(default="sub", description="OIDC: the claim naming who.")
    oidc_jwks_cache_s: float = Field(
        default=300.0, gt=0, description="OIDC: re-read the JWKS at most this often."
    )
    quota_running_jobs: int | None = Field(
        default=None, ge=1, description="Per project: jobs running at once; more wait queued."
    )
    quota_submissions_per_minute: int | None = Field(
        default=None, ge=1, description="Per project: submissions accepted per minute."
    )
    quota_core_hours_per_day: float | None = Field(
        default=None, gt=0, description="Per project: requested core-hours per rolling day."
    )
    rate_cards: Path | None = Field(
        default=None, description="Directory of rate card files; default <home>/rate_cards"
    )
    budgets_file: Path | None = Field(
        default=None, description="YAML file of budgets; default <home>/budgets.yaml"
    )
    licence_pools_file: Path | None = Field(
        default=None,
        description="YAML file of managed licence pools; default <home>/licence_pools.yaml",
    )

    @field_validator("required_tags", mode="before")
    @classmethod
    def _split_tag_keys(cls, value: object) -> object:
        """``team,cost_centre`` or a JSON list ``["team", "cost_centre"]``."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list: {exc.msg}") from None
        return tuple(part.strip() for part in text.split(",") if part.strip())

    @field_validator("database_url")
    @classmethod
    def _parse_database_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                make_url(value)
            except ArgumentError:
                raise ValueError("not an SQLAlchemy URL") from None
        return value

    @property
    def resolved_clusters_file(self) -> Path:
        return self.clusters_file or self.home / "clusters.yaml"

    @property
    def resolved_rate_cards(self) -> Path:
        return self.rate_cards or self.home / "rate_cards"

    @property
    def resolved_budgets_file(self) -> Path:
        return self.budgets_file or self.home / "budgets.yaml"

    @property
    def resolved_licence_pools_file(self) -> Path:
        return self.licence_pools_file or self.home / "licence_pools.yaml"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'hpcbridge.db'}"

    @property
    def runs_dir(self) -> Path:
        """Per-attempt work and status directories of the local executor."""
        return self.home / "runs"


# -- what an invalid setting is told to the user --------------------------------------------

_KINDS: dict[Any, str] = {int: "a whole number", float: "a number", Path: "a path", str: "text"}
_BOUNDS = (
    (annotated_types.Gt, "gt", "greater than"),
    (annotated_types.Ge, "ge", "at least"),
    (annotated_types.Lt, "lt", "less than"),
    (annotated_types.Le, "le", "at most"),
)
_FORMS = {
    "database_url": "an SQLAlchemy URL, e.g. sqlite:////var/lib/hpcbridge/hpcbridge.db "
    "or postgresql+psycopg://user@host/hpcbridge",
    "required_tags": "tag keys, comma-separated or a JSON list, e.g. team,cost_centre",
}
_shown = reprlib.Repr()
_shown.maxstring = 60


def describe_settings_error(exc: ValidationError) -> list[str]:
    """One line per invalid setting: its variable, the value it held and the form it takes."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        shown = _shown.repr(error.get("input"))
        variable = f"{ENV_PREFIX}{name.upper()}"
        lines.append(f"{variable}={shown} is invalid; set it to {expected_form(name)}")
    return lines


def expected_form(name: str) -> str:
    """The valid values of setting ``name`` in words, e.g. 'a number greater than 0, e.g. 0.5'."""
    field = Settings.model_fields.get(name)
    if field is None:
        return "a valid value"
    if name in _FORMS:
        return _FORMS[name]
    annotation = _without_none(field.annotation)
    form = _KINDS.get(annotation, "a valid value")
    bounds = [
        f"{words} {getattr(item, attribute)}"
        for item in field.metadata
        for kind, attribute, words in _BOUNDS
        if isinstance(item, kind)
    ]
    if bounds:
        form += " " + " and ".join(bounds)
    if name.endswith("_s"):
        form += " (seconds)"
    if field.default is not None and not field.default_factory and form != "a valid value":
        example = field.default
        form += f", e.g. {example:g}" if isinstance(example, float) else f", e.g. {example}"
    return form


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation
