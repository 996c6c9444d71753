"""What an attempt used and what it cost: a pure function of the attempt and a rate card.

Usage is what the scheduler accounted: for Slurm, the allocated TRES times the elapsed
time from sacct (``details['slurm']``); for the local executor, the slots it allocated
times the run time it measured. Staged data adds storage (the job's staged inputs kept for
the attempt's run, ``details['staged_bytes']``, at the card's ``storage_gb_month``) and
egress (inputs moved out to a burst partition, ``details['egress_bytes']``, at its
``egress_gb``). An attempt that did not succeed is waste.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpcbridge.cost._cards import ANY, CardBook, RateCard
from hpcbridge.states import AttemptState
from hpcbridge.store import Attempt, Job

LOCAL_CLUSTER = "local"
"""The cluster name rate cards use for the local executor."""
BYTES_PER_GB = 1e9
SECONDS_PER_MONTH = 30 * 86400.0
"""A storage GB-month is a GB kept for 30 days."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What one attempt was allocated, integrated over its run."""

    cluster: str
    partition: str | None
    elapsed_s: float
    cpus: int
    gpus: int
    gpu_type: str | None
    mem_gb: float
    licences: Mapping[str, int] = field(default_factory=dict)
    staged_gb: float = 0.0
    egress_gb: float = 0.0

    @property
    def core_hours(self) -> float:
        return self.cpus * self.elapsed_s / 3600.0

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.elapsed_s / 3600.0

    @property
    def mem_gb_hours(self) -> float:
        return self.mem_gb * self.elapsed_s / 3600.0

    @property
    def storage_gb_months(self) -> float:
        return self.staged_gb * self.elapsed_s / SECONDS_PER_MONTH


@dataclass(frozen=True, slots=True)
class AttemptCost:
    """The charge of one attempt, kept in its details under ``cost``."""

    amount: float
    currency: str
    card: str | None
    """``cluster/version`` of the card applied; None: no card covers the attempt."""
    waste: bool
    core_hours: float
    gpu_hours: float
    mem_gb_hours: float
    licence_hours: float
    items: Mapping[str, float] = field(default_factory=dict)
    """The amount by what was charged: cores, gpus, memory, licence:<name>, storage, egress."""

    def as_details(self) -> dict[str, Any]:
        # Spelled out: ``asdict`` deep-copies through the fields on every finished attempt.
        data: dict[str, Any] = {
            "amount": self.amount,
            "currency": self.currency,
            "card": self.card,
            "waste": self.waste,
            "core_hours": self.core_hours,
            "gpu_hours": self.gpu_hours,
            "mem_gb_hours": self.mem_gb_hours,
            "licence_hours": self.licence_hours,
            "items": dict(self.items),
        }
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_details(cls, data: object) -> AttemptCost | None:
        if not isinstance(data, dict) or "amount" not in data:
            return None
        return cls(
            amount=float(data["amount"]),
            currency=str(data.get("currency", "")),
            card=data.get("card"),
            waste=bool(data.get("waste")),
            core_hours=float(data.get("core_hours", 0.0)),
            gpu_hours=float(data.get("gpu_hours", 0.0)),
            mem_gb_hours=float(data.get("mem_gb_hours", 0.0)),
            licence_hours=float(data.get("licence_hours", 0.0)),
            items=dict(data.get("items") or {}),
        )


def usage_of(job: Job, attempt: Attempt) -> Usage:
    """What ``attempt`` was allocated and for how long, from its backend's accounting."""
    slurm = attempt.details.get("slurm")
    run_s = _run_s(attempt)
    if isinstance(slurm, dict):
        tres = slurm.get("alloc_tres") or {}
        nodes = max(len(slurm.get("nodes") or ()), 1)
        mem_mb = _mem_mb(tres.get("mem")) or float(slurm.get("mem_mb") or 0) * nodes
        elapsed = slurm.get("elapsed_s")
        return Usage(
            cluster=str(slurm.get("cluster") or job.cluster or "slurm"),
            partition=slurm.get("partition"),
            elapsed_s=float(elapsed) if isinstance(elapsed, int | float) else run_s,
            cpus=int(slurm.get("cpus") or 0),
            gpus=int(slurm.get("gpus") or 0),
            gpu_type=_gpu_type(tres) or _spec_gpu_type(job),
            mem_gb=mem_mb / 1024.0,
            licences={str(k): int(v) for k, v in (slurm.get("licences") or {}).items()},
            staged_gb=_gb(attempt.details, "staged_bytes"),
            egress_gb=_gb(attempt.details, "egress_bytes"),
        )
    details = attempt.details
    return Usage(
        cluster=LOCAL_CLUSTER if attempt.backend == "local" else (job.cluster or attempt.backend),
        partition=None,
        elapsed_s=run_s,
        cpus=int(details.get("cpus") or 0),
        gpus=int(details.get("gpus") or 0),
        gpu_type=_spec_gpu_type(job),
        mem_gb=float(details.get("mem_mb") or 0) / 1024.0,
        staged_gb=_gb(details, "staged_bytes"),
        egress_gb=_gb(details, "egress_bytes"),
    )


def _gb(details: Mapping[str, Any], key: str) -> float:
    """GB of ``details[key]`` (bytes the reconciler noted with a finished attempt); 0 if
    absent or not a non-negative number."""
    value = details.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return 0.0
    return float(value) / BYTES_PER_GB


def price(job: Job, attempt: Attempt, book: CardBook) -> AttemptCost:
    """The charge of a finished attempt under the card in force when it started."""
    usage = usage_of(job, attempt)
    at = attempt.started_at or attempt.submitted_at or attempt.created_at
    card = book.in_force(usage.cluster, at)
    waste = attempt.state is not AttemptState.SUCCEEDED
    licence_hours = sum(usage.licences.values()) * usage.elapsed_s / 3600.0
    items = {} if card is None else _items(usage, card)
    return AttemptCost(
        amount=round(sum(items.values()), 9),
        currency=card.currency if card else "",
        card=card.card_id if card else None,
        waste=waste,
        core_hours=round(usage.core_hours, 9),
        gpu_hours=round(usage.gpu_hours, 9),
        mem_gb_hours=round(usage.mem_gb_hours, 9),
        licence_hours=round(licence_hours, 9),
        items={k: round(v, 9) for k, v in items.items() if v},
    )


def _items(usage: Usage, card: RateCard) -> dict[str, float]:
    rates = card.rates(usage.partition)
    items = {
        "cores": usage.core_hours * (rates.core_hour or 0.0),
        "memory": usage.mem_gb_hours * (rates.mem_gb_hour or 0.0),
    }
    if usage.gpus and rates.gpu_hour:
        gpu_price = rates.gpu_hour.get(usage.gpu_type or ANY, rates.gpu_hour.get(ANY, 0.0))
        items["gpus"] = usage.gpu_hours * gpu_price
    for name, count in usage.licences.items():
        items[f"licence:{name}"] = count * usage.elapsed_s / 3600.0 * card.licence_hour.get(name, 0)
    if usage.staged_gb and card.storage_gb_month:
        items["storage"] = usage.storage_gb_months * card.storage_gb_month
    if usage.egress_gb and card.egress_gb:
        items["egress"] = usage.egress_gb * card.egress_gb
    return items


def _run_s(attempt: Attempt) -> float:
    if attempt.started_at is None or attempt.ended_at is None:
        return 0.0  # never ran: nothing allocated to charge
    return max(attempt.ended_at - attempt.started_at, 0.0)


_MEM = re.compile(r"^([0-9.]+)([KMGTP]?)$")
_MB_PER_UNIT = {"K": 1 / 1024, "M": 1.0, "": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}


def _mem_mb(text: object) -> float:
    """sacct's TRES memory (``4000M``, ``2G``) in MB; 0 when absent."""
    match = _MEM.match(str(text or "").strip().upper())
    return float(match.group(1)) * _MB_PER_UNIT[match.group(2)] if match else 0.0


def _gpu_type(tres: Mapping[str, Any]) -> str | None:
    for key in tres:
        if key.startswith("gres/gpu:"):
            return key.split(":", 1)[1]
    return None


def _spec_gpu_type(job: Job) -> str | None:
    resources = job.spec.get("resources")
    value = resources.get("gpu_type") if isinstance(resources, dict) else None
    return value if isinstance(value, str) else None
