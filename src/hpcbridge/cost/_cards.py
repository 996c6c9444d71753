"""Rate cards: versioned prices per cluster and partition, each in force from a date.

One YAML file holds one version of one cluster's card::

    cluster: hpc1            # a cluster of clusters.yaml, or "local" for the local executor
    version: "2026-01"
    effective_from: 2026-01-01
    currency: EUR
    partitions:
      "*": {core_hour: 0.03, mem_gb_hour: 0.004, gpu_hour: {"*": 1.2, a100: 2.5}}
      spot: {core_hour: 0.01}
    licence_hour: {fluent: 4.0}
    storage_gb_month: 0.02
    egress_gb: 0.08

A partition's rates fall back, field by field, to those under ``"*"``. The card applied to
an attempt is its cluster's newest version in force when the attempt started.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hpcbridge.errors import ConfigError

ANY = "*"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Price = float


class Rates(_Strict):
    """Prices of one partition, per unit of what an attempt was allocated."""

    core_hour: Price | None = Field(default=None, ge=0)
    mem_gb_hour: Price | None = Field(default=None, ge=0)
    gpu_hour: dict[str, Price] | None = Field(
        default=None, description='per GPU type; "*" for any type not named'
    )

    @field_validator("gpu_hour", mode="before")
    @classmethod
    def _one_price_for_all(cls, value: object) -> object:
        return {ANY: value} if isinstance(value, int | float) else value

    @field_validator("gpu_hour")
    @classmethod
    def _non_negative(cls, value: dict[str, Price] | None) -> dict[str, Price] | None:
        for kind, price in (value or {}).items():
            if price < 0:
                raise ValueError(f"gpu_hour.{kind}: a price must be at least 0, got {price}")
        return value

    def over(self, fallback: Rates) -> Rates:
        """These rates, each missing one taken from ``fallback``."""
        own = self.model_dump(exclude_none=True)
        return Rates.model_validate(fallback.model_dump(exclude_none=True) | own)


class RateCardFile(_Strict):
    cluster: str = Field(min_length=1)
    version: str = Field(min_length=1)
    effective_from: datetime
    currency: str = Field(default="EUR", min_length=1, max_length=8)
    partitions: dict[str, Rates] = Field(min_length=1)
    licence_hour: dict[str, Price] = Field(default_factory=dict)
    storage_gb_month: Price | None = Field(default=None, ge=0)
    egress_gb: Price | None = Field(default=None, ge=0)

    @field_validator("effective_from", mode="before")
    @classmethod
    def _date_is_midnight_utc(cls, value: object) -> object:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        return value

    @field_validator("effective_from")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RateCard:
    """One version of one cluster's card, as loaded."""

    cluster: str
    version: str
    effective_from: float
    currency: str
    partitions: Mapping[str, Rates]
    licence_hour: Mapping[str, Price]
    storage_gb_month: Price | None
    egress_gb: Price | None
    source: str

    @property
    def card_id(self) -> str:
        return f"{self.cluster}/{self.version}"

    def rates(self, partition: str | None) -> Rates:
        fallback = self.partitions.get(ANY, Rates())
        own = self.partitions.get(partition or ANY)
        return fallback if own is None else own.over(fallback)


class CardBook:
    """Every loaded card, by cluster, sorted by the time each comes into force."""

    def __init__(self, cards: Iterable[RateCard]) -> None:
        self._by_cluster: dict[str, list[RateCard]] = {}
        for card in sorted(cards, key=lambda c: c.effective_from):
            self._by_cluster.setdefault(card.cluster, []).append(card)
        self._starts = {
            cluster: [c.effective_from for c in cards]
            for cluster, cards in self._by_cluster.items()
        }

    def __bool__(self) -> bool:
        return bool(self._by_cluster)

    @property
    def cards(self) -> list[RateCard]:
        return [card for cards in self._by_cluster.values() for card in cards]

    def in_force(self, cluster: str, at: float) -> RateCard | None:
        """The newest card of ``cluster`` in force at ``at``; None before the first."""
        starts = self._starts.get(cluster)
        if not starts:
            return None
        position = bisect.bisect_right(starts, at)
        return self._by_cluster[cluster][position - 1] if position else None


def load_cards(directory: Path) -> CardBook:
    """Every ``*.yaml``/``*.yml`` file under ``directory``; a missing directory has none.

    Raises ConfigError naming the file, the field and the fix.
    """
    if not directory.is_dir():
        return CardBook(())
    cards = [
        _load_card(path)
        for path in sorted(directory.iterdir())
        if path.suffix in (".yaml", ".yml") and path.is_file()
    ]
    _check_unique(cards)
    return CardBook(cards)


def _load_card(path: Path) -> RateCard:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"rate card {path}: cannot read it as YAML: {_first_line(exc)}") from exc
    try:
        parsed = RateCardFile.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"rate card {path}: {describe(exc)}") from exc
    return RateCard(
        cluster=parsed.cluster,
        version=parsed.version,
        effective_from=parsed.effective_from.timestamp(),
        currency=parsed.currency,
        partitions=dict(parsed.partitions),
        licence_hour=dict(parsed.licence_hour),
        storage_gb_month=parsed.storage_gb_month,
        egress_gb=parsed.egress_gb,
        source=str(path),
    )


def _check_unique(cards: list[RateCard]) -> None:
    seen: dict[tuple[str, Any], str] = {}
    for card in cards:
        for key, what in (
            ((card.cluster, card.version), f"version {card.version!r}"),
            ((card.cluster, card.effective_from), f"effective_from {_day(card)}"),
        ):
            other = seen.setdefault(key, card.source)
            if other != card.source:
                raise ConfigError(
                    f"rate cards {other} and {card.source} both give cluster "
                    f"{card.cluster!r} {what}; give each version its own version and date"
                )


def describe(exc: ValidationError) -> str:
    """A pydantic error as one line: each field, what is wrong with it."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(document)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        elif error["type"] == "missing":
            message = "required field is missing; add it"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _day(card: RateCard) -> str:
    return datetime.fromtimestamp(card.effective_from, UTC).isoformat()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
