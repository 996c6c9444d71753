"""Settings, loaded once (prefix ``HPCBRIDGE_``) and passed down; never read deep inside.

Where a value comes from, first found wins: the environment (``HPCBRIDGE_<NAME>``), the
user's file (``$XDG_CONFIG_HOME/hpcbridge/config.toml``, or ``$HPCBRIDGE_CONFIG``), the
site's file (``/etc/hpcbridge/config.toml``, or ``$HPCBRIDGE_SITE_CONFIG``), the default.
A file names settings as top-level keys (``poll_interval_s = 2``); an unknown key, a bad
value or broken TOML is a ``ConfigFileError`` naming the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import json
import os
import reprlib
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
import platformdirs
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "HPCBRIDGE_"
CONFIG_VARIABLE = f"{ENV_PREFIX}CONFIG"
SITE_CONFIG_VARIABLE = f"{ENV_PREFIX}SITE_CONFIG"
DEFAULT_SITE_CONFIG = Path("/etc/hpcbridge/config.toml")


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("hpcbridge", appauthor=False))


@dataclass(frozen=True, slots=True)
class ConfigFiles:
    """The two settings files; ``directory`` (the user's) also holds ``clusters.yaml``."""

    user: Path
    site: Path

    @property
    def directory(self) -> Path:
        return self.user.parent


def config_files(environ: Mapping[str, str]) -> ConfigFiles:
    """Where the settings files are for this environment (they need not exist)."""
    xdg = environ.get("XDG_CONFIG_HOME", "")
    config_home = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".config"
    user = environ.get(CONFIG_VARIABLE) or config_home / "hpcbridge" / "config.toml"
    site = environ.get(SITE_CONFIG_VARIABLE) or DEFAULT_SITE_CONFIG
    return ConfigFiles(user=Path(user).expanduser(), site=Path(site).expanduser())


class ConfigFileError(Exception):
    """A settings file cannot be used: broken TOML, an unknown key or a bad value."""


class Settings(BaseSettings):
    """Everything an operator can set. Each field maps to ``HPCBRIDGE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)
    _files: ConfigFiles = PrivateAttr(default_factory=lambda: config_files(os.environ))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = config_files(os.environ)
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            SettingsFileSource(settings_cls, files.user),
            SettingsFileSource(settings_cls, files.site),
            file_secret_settings,
        )

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
    cache_max_gb: float = Field(
        default=100.0,
        gt=0,
        description="Size of the control plane's cache of staged inputs (beside the data "
        "directories); least recently used inputs no job links are evicted past it.",
    )
    lease_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="With PostgreSQL: how long a reconciler leads without renewing its lease.",
    )
    clusters_file: Path | None = Field(
        default=None,
        description="YAML file naming Slurm clusters; default clusters.yaml in the "
        "directory of the user's config.toml (<home>/clusters.yaml while only that exists)",
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
    quotas_file: Path | None = Field(
        default=None,
        description="YAML file of per-project quotas over the quota_* ones; "
        "default <home>/quotas.yaml",
    )
    licence_pools_file: Path | None = Field(
        default=None,
        description="YAML file of managed licence pools; default <home>/licence_pools.yaml",
    )
    runbook_url_base: str | None = Field(
        default=None,
        description="Where the runbooks are published (URL or directory); alert rules, "
        "'why' and dashboards link <base>/<name>.md; default: the copies in the package",
    )
    metrics_textfile: Path | None = Field(
        default=None,
        description="Embedded mode: write metrics to this node-exporter textfile (*.prom) "
        "after each run, wait and agent cycle",
    )
    pushgateway_url: str | None = Field(
        default=None,
        description="Embedded mode: push metrics to this Prometheus Pushgateway "
        "after each run, wait and agent cycle",
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
    def config_files(self) -> ConfigFiles:
        """The settings files these settings were read from (where they exist)."""
        return self._files

    @property
    def resolved_clusters_file(self) -> Path:
        if self.clusters_file:
            return self.clusters_file
        in_config = self._files.directory / "clusters.yaml"
        earlier = self.home / "clusters.yaml"  # where it was before settings files
        return earlier if earlier.exists() and not in_config.exists() else in_config

    @property
    def resolved_rate_cards(self) -> Path:
        return self.rate_cards or self.home / "rate_cards"

    @property
    def resolved_budgets_file(self) -> Path:
        return self.budgets_file or self.home / "budgets.yaml"

    @property
    def resolved_quotas_file(self) -> Path:
        return self.quotas_file or self.home / "quotas.yaml"

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


# -- settings files -------------------------------------------------------------------------


class SettingsFileSource(TomlConfigSettingsSource):
    """One TOML settings file, checked key by key so that an error names the file and key."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        self.path = path
        try:
            super().__init__(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigFileError(
                f"{path} is not valid TOML ({exc}); fix it, e.g. poll_interval_s = 2"
            ) from exc
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise ConfigFileError(f"{path} cannot be read ({reason}); fix its permissions") from exc
        for key, value in self.toml_data.items():
            check_file_setting(path, key, value)


def check_file_setting(path: Path, key: str, value: object) -> None:
    """Raise ConfigFileError unless ``key = value`` is a valid setting in file ``path``."""
    if key not in Settings.model_fields:
        close = difflib.get_close_matches(key, list(Settings.model_fields), n=1)
        fix = f"did you mean {close[0]}?" if close else "remove it or fix its name"
        raise ConfigFileError(f"{path}: unknown setting {key!r}; {fix}")
    try:
        values: dict[str, Any] = {key: value}
        _OneValue(**values)
    except ValidationError as exc:
        shown = _shown.repr(value)
        raise ConfigFileError(
            f"{path}: {key} = {shown} is invalid; set it to {expected_form(key)}"
        ) from exc


class _OneValue(Settings):
    """Settings from their arguments only: checks one file's value on its own."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def setting_origins(environ: Mapping[str, str], files: ConfigFiles) -> dict[str, str]:
    """Where each setting that is not a default comes from: the variable or the file."""
    found: dict[str, str] = {}
    for path in (files.site, files.user):  # the user's file overrides the site's
        if path.is_file():
            with path.open("rb") as handle:
                found |= dict.fromkeys(tomllib.load(handle), str(path))
    variables = {name.upper(): name for name in environ}
    for name in Settings.model_fields:
        variable = f"{ENV_PREFIX}{name.upper()}"
        if variable in variables:
            found[name] = variables[variable]
    return found


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
