"""Quotas per project: the site-wide limits of the ``HPCBRIDGE_QUOTA_*`` settings, and a
YAML file (``HPCBRIDGE_QUOTAS_FILE``, default ``<home>/quotas.yaml``) for the projects that
need other ones::

    projects:
      physics:                      # a big project: more of everything
        running_jobs: 200
        submissions_per_minute: 600
        core_hours_per_day: 50000
      students:
        running_jobs: 4             # what it leaves out comes from the settings
      ops:
        submissions_per_minute: null  # null: no limit for this project

A key a project leaves out keeps the site-wide value; ``null`` lifts that limit for the
project. The file is read when the control plane starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hpcbridge.errors import ConfigError
from hpcbridge.spec import Name

_FIELDS = ("running_jobs", "submissions_per_minute", "core_hours_per_day")


@dataclass(frozen=True, slots=True)
class Quotas:
    """Limits that hold for one project (None: no limit)."""

    running_jobs: int | None = None
    submissions_per_minute: int | None = None
    core_hours_per_day: float | None = None


class _ProjectQuotas(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    running_jobs: int | None = Field(default=None, ge=1)
    submissions_per_minute: int | None = Field(default=None, ge=1)
    core_hours_per_day: float | None = Field(default=None, gt=0)


class _QuotasFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    projects: dict[Name, _ProjectQuotas] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QuotaTable:
    """The site-wide quotas and each listed project's own."""

    default: Quotas = Quotas()
    projects: Mapping[str, Quotas] = field(default_factory=dict)

    def of(self, project: str) -> Quotas:
        return self.projects.get(project, self.default)

    def running_jobs(self, project: str) -> int | None:
        return self.of(project).running_jobs


def load_quotas(path: Path, default: Quotas) -> QuotaTable:
    """``default`` with the overrides of ``path`` (none when it does not exist).

    Raises ConfigError naming the file, the key and what to write instead.
    """
    if not path.exists():
        return QuotaTable(default)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"quotas file {path}: cannot read it as YAML: {exc}") from exc
    try:
        parsed = _QuotasFile.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"quotas file {path}: {_describe(exc)}") from exc
    projects: dict[str, Quotas] = {}
    for project, given in parsed.projects.items():
        changes: dict[str, Any] = {key: getattr(given, key) for key in given.model_fields_set}
        projects[project] = replace(default, **changes)
    return QuotaTable(default, projects)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "file"
    hint = ""
    if first["type"] == "extra_forbidden":
        hint = f"; the keys are 'projects' and, under each project, {', '.join(_FIELDS)}"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{hint}{more}"
