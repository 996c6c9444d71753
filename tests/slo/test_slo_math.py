"""SLI math: table-driven cases and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcbridge.slo import (
    SampleSeries,
    SliSample,
    burn_rate,
    error_budget,
    error_ratio,
    sli,
)

HOUR = 3600.0


def _samples(spec: str, *, start: float = 0.0, step: float = 60.0) -> list[SliSample]:
    """``"ggb."``: one sample per step; g good, b bad, . nothing."""
    return [
        SliSample(start + (i + 1) * step, "batch", char == "g", job_id=f"j{i}")
        for i, char in enumerate(spec)
        if char != "."
    ]


@pytest.mark.parametrize(
    ("spec", "window_s", "now", "expected_sli"),
    [
        ("gggg", HOUR, 240, 1.0),
        ("gggb", HOUR, 240, 0.75),
        ("bbbb", HOUR, 240, 0.0),
        ("", HOUR, 240, None),
        ("....", HOUR, 240, None),
        ("bggg", 180, 240, 1.0),  # (60, 240]: the bad sample at 60 is outside
        ("bggg", 181, 240, 0.75),
        ("gggb", 180, 180, 1.0),  # the bad sample at 240 is after now
        ("gb", 60, 120, 0.0),  # windows are (now - w, now]
    ],
)
def test_sli_table(spec: str, window_s: float, now: float, expected_sli: float | None) -> None:
    assert sli(_samples(spec), window_s, now) == expected_sli


@pytest.mark.parametrize(
    ("spec", "objective", "expected_burn"),
    [
        ("g" * 99 + "b", 0.99, 1.0),
        ("g" * 98 + "bb", 0.99, 2.0),
        ("g" * 100, 0.99, 0.0),
        ("b", 0.99, 100.0),
        ("gb", 0.5, 1.0),
        ("", 0.99, None),
    ],
)
def test_burn_rate_table(spec: str, objective: float, expected_burn: float | None) -> None:
    result = burn_rate(_samples(spec), objective, 1e9, 1e9)
    assert result == (None if expected_burn is None else pytest.approx(expected_burn))


@pytest.mark.parametrize(
    ("spec", "objective", "allowed", "consumed", "remaining"),
    [
        ("g" * 100, 0.99, 1.0, 0.0, 1.0),
        ("g" * 99 + "b", 0.99, 1.0, 1.0, 0.0),
        ("g" * 199 + "b", 0.99, 2.0, 0.5, 0.5),
        ("g" * 98 + "bb" + "b", 0.99, 1.01, 3 / 1.01, 1 - 3 / 1.01),
        ("", 0.99, 0.0, 0.0, 1.0),
    ],
)
def test_error_budget_table(
    spec: str, objective: float, allowed: float, consumed: float, remaining: float
) -> None:
    budget = error_budget(_samples(spec), objective, 30 * 86400, 30 * 86400)
    assert budget.allowed_bad == pytest.approx(allowed)
    assert budget.consumed_ratio == pytest.approx(consumed)
    assert budget.remaining_ratio == pytest.approx(remaining)


def test_weights_count_as_units() -> None:
    samples = [
        SliSample(10, "batch", good=False, weight=30.0),  # 30 s checkpointing
        SliSample(10, "batch", good=True, weight=570.0),  # of 600 s run
    ]
    assert error_ratio(samples, 60, 10) == pytest.approx(0.05)
    totals = SampleSeries(samples).totals(0, 10)
    assert (totals.total, totals.bad, totals.events, totals.bad_events) == (600.0, 30.0, 2, 1)


def test_series_queries_are_windowed() -> None:
    series = SampleSeries(_samples("gbgbg"))
    assert [s.job_id for s in series.samples(60, 180)] == ["j1", "j2"]
    assert list(series.times_before(300, 120)) == [300, 240, 180]
    assert len(series) == 5


samples_strategy = st.lists(
    st.builds(
        SliSample,
        time=st.floats(0, 10_000, allow_nan=False),
        workload_class=st.just("batch"),
        good=st.booleans(),
        weight=st.floats(0.001, 1000, allow_nan=False),
    ),
    max_size=60,
)
windows = st.floats(1, 20_000, allow_nan=False)
nows = st.floats(0, 12_000, allow_nan=False)
objectives = st.floats(0.5, 0.9999)


@given(samples_strategy, windows, nows)
def test_sli_is_a_ratio(samples: list[SliSample], window: float, now: float) -> None:
    value = sli(samples, window, now)
    assert value is None or 0.0 <= value <= 1.0


@given(samples_strategy, windows, nows, objectives)
def test_no_bad_events_means_zero_burn(
    samples: list[SliSample], window: float, now: float, objective: float
) -> None:
    good_only = [SliSample(s.time, s.workload_class, True, s.weight) for s in samples]
    rate = burn_rate(good_only, objective, window, now)
    assert rate is None or rate == 0.0
    assert error_budget(good_only, objective, window, now).remaining_ratio == 1.0


@given(samples_strategy, st.data(), objectives)
def test_more_bad_events_never_increase_remaining_budget(
    samples: list[SliSample], data: st.DataObject, objective: float
) -> None:
    now, window = 10_000.0, 20_000.0
    before = error_budget(samples, objective, window, now).remaining_ratio
    extra = data.draw(
        st.lists(st.floats(0, 10_000, allow_nan=False), min_size=1, max_size=5), label="bad"
    )
    worse = samples + [SliSample(t, "batch", False) for t in extra]
    assert error_budget(worse, objective, window, now).remaining_ratio <= before + 1e-12
    if samples:
        flipped = [SliSample(samples[0].time, "batch", False, samples[0].weight), *samples[1:]]
        assert error_budget(flipped, objective, window, now).remaining_ratio <= before + 1e-12


@given(samples_strategy, windows, nows, objectives)
def test_burn_rate_is_error_ratio_over_budget(
    samples: list[SliSample], window: float, now: float, objective: float
) -> None:
    ratio = error_ratio(samples, window, now)
    rate = burn_rate(samples, objective, window, now)
    assert (ratio is None) == (rate is None)
    if ratio is not None and rate is not None:
        assert rate == pytest.approx(ratio / (1 - objective))
