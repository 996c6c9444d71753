"""Licence pools hpcbridge manages itself, across clusters, with failover between servers.

A YAML file (``HPCBRIDGE_LICENCE_POOLS_FILE``, default ``<home>/licence_pools.yaml``)::

    pools:
      - name: fluent
        total: 4                      # licences the pool holds
        unavailable_grace_s: 600      # no healthy server for this long: waiting jobs fail
        check_interval_s: 60          # health checks run at most this often per server
        servers:                      # in failover order
          - name: lic1
            check: [lmutil, lmstat, -c, 27000@lic1]   # argv, never a shell
            timeout_s: 10
          - name: lic2
            check: [lmutil, lmstat, -c, 27000@lic2]
            count: 2                  # what this server serves (default: the whole pool)

Servers are tried in order; a server whose check fails (non-zero exit, timeout, cannot
start) is skipped and the next one counted, until the pool's total is reached. A pool's
capacity is what its healthy servers provide, never more than its total.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hpcbridge.errors import ConfigError
from hpcbridge.spec import JobSpec

log = structlog.get_logger("hpcbridge.licences")


class LicenceServer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    check: tuple[str, ...] = Field(min_length=1, description="Health check argv; exit 0 = up")
    timeout_s: float = Field(default=10.0, gt=0)
    count: int | None = Field(default=None, ge=1, description="Default: the pool's total")


class LicencePool(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    total: int = Field(ge=1)
    servers: tuple[LicenceServer, ...] = Field(min_length=1)
    unavailable_grace_s: float = Field(default=600.0, ge=0)
    check_interval_s: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _unique_servers(self) -> LicencePool:
        twice = _repeated([s.name for s in self.servers])
        if twice:
            raise ValueError(f"server names must be unique in a pool; {twice} appear twice")
        return self


class LicencePoolFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pools: tuple[LicencePool, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> LicencePoolFile:
        twice = _repeated([p.name for p in self.pools])
        if twice:
            raise ValueError(f"pool names must be unique; {twice} appear twice")
        return self


def _repeated(names: Sequence[str]) -> str:
    return ", ".join(sorted({n for n in names if names.count(n) > 1}))


def load_licence_pools(path: Path) -> dict[str, LicencePool]:
    """The pools of ``path`` by name; none when it does not exist. Raises ConfigError."""
    if not path.exists():
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        pools = LicencePoolFile.model_validate(document).pools
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"licence pools {path}: cannot read it as YAML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"licence pools {path}: {_describe(exc)}") from exc
    return {pool.name: pool for pool in pools}


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "file"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def over_total(requested: Mapping[str, int], pools: Mapping[str, LicencePool]) -> list[str]:
    """Requests no pool could ever grant, in words (refused at submission)."""
    return [
        f"licences.{name}: asks for {count} but the pool {name} holds {pools[name].total}; "
        f"ask for at most {pools[name].total}"
        for name, count in sorted(requested.items())
        if name in pools and count > pools[name].total
    ]


def without_managed(spec: JobSpec, pools: Collection[str]) -> JobSpec:
    """``spec`` as a backend sees it: hpcbridge counts the managed pools, not the scheduler
    (a cluster need not know them)."""
    if not any(name in pools for name in spec.licences):
        return spec
    kept = {name: count for name, count in spec.licences.items() if name not in pools}
    return spec.model_copy(update={"licences": kept})


@dataclass(frozen=True, slots=True)
class PoolHealth:
    pool: str
    total: int
    capacity: int
    """Licences the healthy servers provide (at most ``total``)."""
    servers: tuple[str, ...]
    """The healthy servers counted, in failover order."""
    down_since: float | None
    """Since when no server has been healthy (None: one is)."""


Check = Callable[[Sequence[str], float], bool]


def run_check(argv: Sequence[str], timeout_s: float) -> bool:
    """Whether a server's health check exits 0 within its timeout."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


class LicenceMonitor:
    """Health of each pool's servers, each checked at most every ``check_interval_s``.

    Checks start processes: call ``health`` outside any transaction."""

    def __init__(self, pools: Mapping[str, LicencePool], check: Check = run_check) -> None:
        self.pools = dict(pools)
        self._check = check
        self._seen: dict[tuple[str, str], tuple[float, bool]] = {}
        self._down_since: dict[str, float] = {}

    def health(self, names: Sequence[str], now: float) -> dict[str, PoolHealth]:
        return {name: self._pool_health(self.pools[name], now) for name in names}

    def _pool_health(self, pool: LicencePool, now: float) -> PoolHealth:
        capacity, healthy = 0, []
        for server in pool.servers:
            if capacity >= pool.total:
                break  # failover order: later servers are not needed
            if self._up(pool, server, now):
                capacity += server.count or pool.total
                healthy.append(server.name)
        if healthy:
            self._down_since.pop(pool.name, None)
        else:
            self._down_since.setdefault(pool.name, now)
        return PoolHealth(
            pool.name,
            pool.total,
            min(capacity, pool.total),
            tuple(healthy),
            self._down_since.get(pool.name),
        )

    def _up(self, pool: LicencePool, server: LicenceServer, now: float) -> bool:
        key = (pool.name, server.name)
        cached = self._seen.get(key)
        if cached is not None and now - cached[0] < pool.check_interval_s:
            return cached[1]
        up = self._check(server.check, server.timeout_s)
        if cached is None or cached[1] != up:  # say so once per change, not every check
            event = "licence_server_up" if up else "licence_server_down"
            (log.info if up else log.warning)(
                event,
                pool=pool.name,
                server=server.name,
                check=list(server.check),
            )
        self._seen[key] = (now, up)
        return up
