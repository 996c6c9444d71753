"""Node quarantine decisions: who gets drained, and when the guard rail says no."""

from __future__ import annotations

import pytest

from hpcbridge.policy import (
    Drain,
    NodeFailure,
    NodeState,
    QuarantinePolicy,
    Refusal,
    decide_quarantine,
)
from hpcbridge.states import FailureClass

NOW = 10_000.0
NODES = [NodeState(f"n{i}", ("batch",), False) for i in range(1, 7)]


def failures(
    node: str, count: int, *, age_s: float = 10.0, cls: FailureClass = FailureClass.NODE_FAILURE
) -> list[NodeFailure]:
    return [NodeFailure(node, NOW - age_s - i, cls, f"j{node}{i}") for i in range(count)]


@pytest.mark.parametrize(
    ("recent", "expected"),
    [
        (failures("n1", 2), []),
        (failures("n1", 3), [Drain]),
        (failures("n1", 3, age_s=4000), []),  # outside the window
        (failures("n1", 3, cls=FailureClass.APP_ERROR), []),  # the program's fault
        (failures("n1", 3, cls=FailureClass.LOST), [Drain]),
        (failures("n1", 3) + failures("n2", 3), [Drain, Drain]),
        # A third node would leave 3 of 6 drained: over the 34% limit.
        (failures("n1", 3) + failures("n2", 3) + failures("n3", 3), [Drain, Drain, Refusal]),
    ],
)
def test_decisions(recent: list[NodeFailure], expected: list[type]) -> None:
    decisions = decide_quarantine(recent, NODES, QuarantinePolicy(), NOW)
    assert [type(d) for d in decisions] == expected


def test_the_reason_names_hpcbridge_and_the_evidence() -> None:
    (decision,) = decide_quarantine(failures("n4", 3), NODES, QuarantinePolicy(), NOW)
    assert isinstance(decision, Drain)
    assert decision.reason.startswith("hpcbridge:")
    assert "3 node_failure failures in 1h" in decision.reason
    assert "jn40" in decision.reason


def test_a_drained_node_is_not_drained_again_and_counts_toward_the_guard_rail() -> None:
    nodes = [
        NodeState("n1", ("batch",), True),
        NodeState("n2", ("batch",), False),
        NodeState("n3", ("batch",), False),
    ]
    decisions = decide_quarantine(
        failures("n1", 5) + failures("n2", 3),
        nodes,
        QuarantinePolicy(max_drained_fraction=0.5),
        NOW,
    )
    assert len(decisions) == 1
    assert isinstance(decisions[0], Refusal)
    assert "2 of 3 nodes drained" in decisions[0].reason


def test_the_guard_rail_holds_per_partition() -> None:
    nodes = [
        NodeState("a1", ("gpu",), False),
        NodeState("a2", ("gpu",), False),
        *(NodeState(f"b{i}", ("cpu",), False) for i in range(10)),
    ]
    decisions = decide_quarantine(failures("a1", 3), nodes, QuarantinePolicy(), NOW)
    assert [type(d) for d in decisions] == [Refusal]
    assert "partition gpu" in decisions[0].reason


def test_unknown_nodes_are_ignored() -> None:
    assert decide_quarantine(failures("zz", 9), NODES, QuarantinePolicy(), NOW) == []
