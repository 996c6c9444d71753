"""Policies applied across jobs: node quarantine (fencing), licence pools, burst to cloud."""

from hpcbridge.policy._burst import (
    ONPREM,
    BurstBudgetLeft,
    BurstDecision,
    BurstInputs,
    decide_burst,
)
from hpcbridge.policy._licence_history import wait_estimates
from hpcbridge.policy._licences import (
    LicenceMonitor,
    LicencePool,
    LicenceServer,
    PoolHealth,
    load_licence_pools,
    over_total,
    without_managed,
)
from hpcbridge.policy._quarantine import (
    Drain,
    NodeFailure,
    NodeState,
    QuarantinePolicy,
    Refusal,
    decide_quarantine,
)
from hpcbridge.policy._quotas import Quotas, QuotaTable, load_quotas

__all__ = [
    "ONPREM",
    "BurstBudgetLeft",
    "BurstDecision",
    "BurstInputs",
    "Drain",
    "LicenceMonitor",
    "LicencePool",
    "LicenceServer",
    "NodeFailure",
    "NodeState",
    "PoolHealth",
    "QuarantinePolicy",
    "QuotaTable",
    "Quotas",
    "Refusal",
    "decide_burst",
    "decide_quarantine",
    "load_licence_pools",
    "load_quotas",
    "over_total",
    "wait_estimates",
    "without_managed",
]
