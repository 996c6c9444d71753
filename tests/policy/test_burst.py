"""The burst decision is pure arithmetic over gathered numbers: each rule, in its order,
and the numbers the decision carries."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcbridge.cli._plan import describe
from hpcbridge.policy import BurstBudgetLeft, BurstInputs, decide_burst

BASE = BurstInputs(
    eligible=True,
    wait_threshold_s=600.0,
    onprem_wait_s=3600.0,
    burst_wait_s=60.0,
    partition="cloud",
    onprem_cost=1.0,
    burst_cost=2.0,
    currency="EUR",
    egress_bytes=2_000_000_000,
    egress_price_gb=0.5,
)


def test_a_long_wait_bursts_with_its_numbers() -> None:
    decision = decide_burst(BASE)
    assert decision.burst and decision.partition == "cloud"
    assert decision.wait_saved_s == 3540.0
    assert decision.egress_gb == 2.0 and decision.egress_cost == 1.0
    assert decision.burst_cost == 3.0  # compute plus egress
    assert "saving about 59 min" in decision.reason and "EUR 3.00" in decision.reason
    data = decision.as_data()
    assert data["burst"] is True and data["onprem_wait_s"] == 3600.0 and "reason" not in data


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"eligible": False}, "not burst-eligible"),
        ({"residency": ("onprem",)}, "residency 'onprem' keeps it on-prem"),
        ({"residency": ("eu",)}, "residency eu does not allow partition 'cloud'"),
        ({"onprem_wait_s": None}, "no on-prem start estimate"),
        ({"onprem_wait_s": 300.0}, "about 5 min is within its threshold of 10 min"),
        ({"wait_threshold_s": 0.0, "onprem_wait_s": 40.0}, "would not start it sooner"),
        ({"max_egress_gb": 1.0}, "input of 2 GB is over its egress cap of 1 GB"),
        ({"job_cap": 2.5}, "would cost EUR 3.00, over its budget_cap EUR 2.50"),
        (
            {"budgets": (BurstBudgetLeft("b", "month", 9.0, 10.0, "finops"),)},
            "burst budget 'b' is exhausted: EUR 9.00 of EUR 10.00 used this month, "
            "bursting would cost EUR 3.00; ask finops to raise it",
        ),
        ({"budgets": (BurstBudgetLeft("zero", "day", 0.0, 0.0),)}, "'zero' is exhausted"),
    ],
)
def test_each_rule_keeps_it_on_prem(change: dict[str, object], said: str) -> None:
    decision = decide_burst(replace(BASE, **change))  # type: ignore[arg-type]
    assert not decision.burst
    assert said in decision.reason
    assert decision.summary.startswith("kept it on-prem (no burst): ")


def test_a_region_the_cloud_is_in_may_burst() -> None:
    assert decide_burst(replace(BASE, residency=("eu",), cloud_regions=("eu",))).burst


def test_a_budget_with_room_allows_it() -> None:
    budget = BurstBudgetLeft("b", "month", 5.0, 10.0)
    assert decide_burst(replace(BASE, budgets=(budget,))).burst


@given(
    wait=st.floats(0, 1e6),
    threshold=st.floats(0, 1e6),
    power_up=st.floats(0, 1e4),
)
def test_bursts_only_past_the_threshold_and_when_sooner(
    wait: float, threshold: float, power_up: float
) -> None:
    decision = decide_burst(
        replace(BASE, onprem_wait_s=wait, wait_threshold_s=threshold, burst_wait_s=power_up)
    )
    assert decision.burst == (wait > threshold and wait > power_up)


def test_plan_says_what_it_does_not_know() -> None:
    decision = decide_burst(
        replace(BASE, onprem_wait_s=None, onprem_cost=None, burst_cost=None, currency="")
    )
    assert describe(decision) == [
        "on-prem: start time unknown (the scheduler gave no estimate), cost unknown (no rate card)",
        "burst: start in about 1 min (node power-up), cost unknown (no rate card), egress 2.00 GB",
        "the policy would pick: on-prem (the scheduler gave no on-prem start estimate)",
    ]
