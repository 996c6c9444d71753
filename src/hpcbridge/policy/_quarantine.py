"""Node quarantine: drain a node that keeps failing jobs, within a guard rail.

Pure: the reconciler passes recent failures, the nodes as the backend sees them, the policy
and ``now``; it gets back drains to perform and refusals to shout about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from hpcbridge.spec import format_duration
from hpcbridge.states import FailureClass

REASON_PREFIX = "hpcbridge:"


@dataclass(frozen=True, slots=True)
class QuarantinePolicy:
    failures: int = 3
    """Infrastructure failures on one node..."""
    window_s: float = 3600.0
    """...within this window drain it."""
    max_drained_fraction: float = 0.34
    """Never leave more than this fraction of a partition drained; refuse loudly instead."""
    classes: frozenset[FailureClass] = frozenset({FailureClass.NODE_FAILURE, FailureClass.LOST})


@dataclass(frozen=True, slots=True)
class NodeFailure:
    node: str
    time: float
    failure_class: FailureClass
    job_id: str


@dataclass(frozen=True, slots=True)
class NodeState:
    name: str
    partitions: tuple[str, ...]
    drained: bool


@dataclass(frozen=True, slots=True)
class Drain:
    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class Refusal:
    node: str
    reason: str


def decide_quarantine(
    failures: Sequence[NodeFailure],
    nodes: Sequence[NodeState],
    policy: QuarantinePolicy,
    now: float,
) -> list[Drain | Refusal]:
    recent: dict[str, list[NodeFailure]] = defaultdict(list)
    for failure in failures:
        if failure.failure_class in policy.classes and now - failure.time <= policy.window_s:
            recent[failure.node].append(failure)
    by_name = {node.name: node for node in nodes}
    drained = {node.name for node in nodes if node.drained}
    decisions: list[Drain | Refusal] = []
    for name in sorted(recent):
        seen = recent[name]
        node = by_name.get(name)
        if len(seen) < policy.failures or node is None or name in drained:
            continue
        evidence = _evidence(seen, policy)
        blocked = _guard_rail(node, nodes, drained, policy)
        if blocked is not None:
            decisions.append(Refusal(name, f"not draining {name} ({evidence}): {blocked}"))
            continue
        drained.add(name)
        decisions.append(Drain(name, f"{REASON_PREFIX} {evidence}"))
    return decisions


def _evidence(seen: Sequence[NodeFailure], policy: QuarantinePolicy) -> str:
    classes = sorted({f.failure_class.value for f in seen})
    jobs = ", ".join(sorted({f.job_id for f in seen})[:5])
    return (
        f"{len(seen)} {'/'.join(classes)} failures in {format_duration(policy.window_s)} "
        f"(jobs {jobs})"
    )


def _guard_rail(
    node: NodeState, nodes: Sequence[NodeState], drained: set[str], policy: QuarantinePolicy
) -> str | None:
    for partition in node.partitions or ("(none)",):
        members = [n for n in nodes if partition in (n.partitions or ("(none)",))]
        after = sum(1 for n in members if n.name in drained) + 1
        if after / len(members) > policy.max_drained_fraction:
            return (
                f"partition {partition} would have {after} of {len(members)} nodes drained, "
                f"over the limit of {policy.max_drained_fraction:.0%}; look at the nodes "
                "and drain by hand if it is really them"
            )
    return None
