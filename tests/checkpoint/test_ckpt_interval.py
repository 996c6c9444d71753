"""Fixed and Young/Daly checkpoint intervals."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcbridge.checkpoint import Checkpointer, IntervalPolicy, daly_interval, young_interval
from hpcbridge.checkpoint._interval import AUTO_FIRST_INTERVAL_S, AUTO_NO_MTBF_INTERVAL_S

MakeCkpt = Callable[..., Checkpointer]


def test_young_values() -> None:
    assert young_interval(10, 86_400) == pytest.approx(math.sqrt(2 * 10 * 86_400))
    assert young_interval(60, 3_600) == pytest.approx(657.2670690)
    assert young_interval(2, 2) == pytest.approx(2 * math.sqrt(2))


def test_daly_values() -> None:
    # sqrt(2*60*3600)*(1 + sqrt(60/7200)/3 + (60/7200)/9) - 60, worked by hand
    assert daly_interval(60, 3_600) == pytest.approx(617.87565, rel=1e-6)
    assert daly_interval(7_200, 3_600) == 3_600  # C >= 2M: checkpointing barely helps
    assert daly_interval(10_000, 3_600) == 3_600


@given(
    cost=st.floats(1e-3, 1e4, allow_nan=False),
    mtbf=st.floats(1.0, 1e8, allow_nan=False),
)
def test_daly_is_young_minus_cost_to_first_order(cost: float, mtbf: float) -> None:
    tau = daly_interval(cost, mtbf)
    assert 0 < tau <= max(mtbf, young_interval(cost, mtbf))
    if cost < mtbf / 1000:
        assert tau == pytest.approx(young_interval(cost, mtbf) - cost, rel=0.02)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_formulas_refuse_meaningless_input(bad: float) -> None:
    with pytest.raises(ValueError):
        young_interval(bad, 100)
    with pytest.raises(ValueError):
        daly_interval(10, bad)


def test_fixed_interval_policy() -> None:
    policy = IntervalPolicy(100.0, None, start=1_000.0)
    assert not policy.should_save(1_099.9)
    assert policy.should_save(1_100.0)
    policy.record_save(5.0, end=1_105.0)
    assert policy.due_at() == 1_205.0
    assert not policy.should_save(1_200.0)
    assert policy.interval_s() == 100.0


def test_auto_policy_learns_the_cost() -> None:
    assert IntervalPolicy("auto", None, start=0).interval_s() == AUTO_NO_MTBF_INTERVAL_S
    policy = IntervalPolicy("auto", 86_400.0, start=0)
    assert policy.cost_s is None
    assert policy.interval_s() == AUTO_FIRST_INTERVAL_S
    assert IntervalPolicy("auto", 60.0, start=0).interval_s() == 60.0
    policy.record_save(10.0, end=50.0)
    policy.record_save(30.0, end=100.0)
    assert policy.cost_s == 20.0
    assert policy.interval_s() == pytest.approx(daly_interval(20.0, 86_400.0))
    assert policy.due_at() == pytest.approx(100.0 + daly_interval(20.0, 86_400.0))
    for _ in range(8):  # the average follows recent saves only
        policy.record_save(2.0, end=200.0)
    assert policy.cost_s == 2.0


def test_checkpointer_should_save_with_a_fake_clock(make_ckpt: MakeCkpt) -> None:
    now = [0.0]
    ckpt = make_ckpt(interval=50, clock=lambda: now[0])
    assert not ckpt.should_save()
    assert ckpt.should_save(now=50.0)
    now[0] = 60.0
    assert ckpt.should_save()
    ckpt.save_json(1, {})  # the period restarts when the save ends
    assert not ckpt.should_save()
    assert ckpt.should_save(now=110.0)
    cost = ckpt.interval.cost_s
    assert cost is not None and 0 < cost < 5


def test_checkpointer_auto_from_environment(
    make_ckpt: MakeCkpt, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPCBRIDGE_CHECKPOINT_INTERVAL_S", "auto")
    monkeypatch.setenv("HPCBRIDGE_MTBF_S", "7200")
    now = [0.0]
    ckpt = make_ckpt(clock=lambda: now[0])
    ckpt.save_json(1, {})
    cost = ckpt.interval.cost_s
    assert cost is not None
    assert ckpt.interval.interval_s() == pytest.approx(daly_interval(cost, 7200.0))
