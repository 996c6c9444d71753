"""Policies the reconciler applies across jobs: node quarantine (fencing)."""

from hpcbridge.policy._quarantine import (
    Drain,
    NodeFailure,
    NodeState,
    QuarantinePolicy,
    Refusal,
    decide_quarantine,
)

__all__ = [
    "Drain",
    "NodeFailure",
    "NodeState",
    "QuarantinePolicy",
    "Refusal",
    "decide_quarantine",
]
