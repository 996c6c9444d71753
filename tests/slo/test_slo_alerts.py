"""The built-in evaluator: windows, the low-volume guard, state and job ids."""

from __future__ import annotations

import pytest

from hpcbridge.slo import (
    Alert,
    BurnWindow,
    SampleSeries,
    SliSample,
    SloDefinition,
    default_slos,
    evaluate_alerts,
    evaluate_window,
    generate_rules,
)

PLATFORM = default_slos()[0]
MIN = 60.0


def _series(events: list[tuple[float, bool]]) -> SampleSeries:
    return SampleSeries(
        SliSample(minute * MIN, "batch", good, job_id=f"{'ok' if good else 'bad'}-{minute:g}")
        for minute, good in events
    )


def _steady(first: int, last: int, *, bad_every: int = 0) -> list[tuple[float, bool]]:
    """One event a minute, every ``bad_every``-th one bad."""
    return [(m, not (bad_every and m % bad_every == 0)) for m in range(first, last + 1)]


def test_page_fires_with_recent_bad_job_ids_newest_first() -> None:
    events = _steady(1, 120) + [(m, False) for m in range(121, 131)]
    alerts = evaluate_alerts([PLATFORM], {PLATFORM.name: _series(events)}, 130 * MIN)
    page = next(a for a in alerts if a.severity == "page")
    assert page.status == "firing"
    assert page.job_ids == tuple(f"bad-{m}" for m in range(130, 120, -1))
    assert page.labels == {
        "alertname": "HpcbridgeSloBurnRate",
        "slo": "platform-success",
        "severity": "page",
        "workload_class": "*",
        "service": "hpcbridge",
    }
    assert page.annotations["runbook_url"] == "docs/runbooks/triage.md"
    few = evaluate_alerts([PLATFORM], {PLATFORM.name: _series(events)}, 130 * MIN, max_job_ids=3)
    assert few[0].job_ids == ("bad-130", "bad-129", "bad-128")


def test_alert_labels_and_annotations_match_the_prometheus_rules() -> None:
    events: list[tuple[float, bool]] = [(m, False) for m in range(1, 60)]
    alerts = evaluate_alerts([PLATFORM], {PLATFORM.name: _series(events)}, 60 * MIN)
    rules = generate_rules([PLATFORM])["groups"][0]["rules"]
    for alert in alerts:
        rule = next(
            r for r in rules if r.get("alert") and r["labels"]["severity"] == alert.severity
        )
        assert {k: v for k, v in alert.labels.items() if k != "alertname"} == rule["labels"]
        assert alert.annotations == rule["annotations"]
        assert alert.name == rule["alert"]


def test_state_is_carried_between_calls() -> None:
    bad = _steady(1, 120) + [(m, False) for m in range(121, 131)]
    series = _series(bad)
    first = evaluate_alerts([PLATFORM], {PLATFORM.name: series}, 129 * MIN)
    second = evaluate_alerts([PLATFORM], {PLATFORM.name: series}, 130 * MIN, previous=first)
    page_first = next(a for a in first if a.severity == "page")
    page_second = next(a for a in second if a.severity == "page")
    assert page_second.starts_at == page_first.starts_at == 129 * MIN
    recovered = _series(bad + [(m, True) for m in range(131, 200)])
    third = evaluate_alerts([PLATFORM], {PLATFORM.name: recovered}, 199 * MIN, previous=second)
    page_third = next(a for a in third if a.severity == "page")
    assert page_third.status == "resolved"
    assert page_third.ends_at == 199 * MIN
    assert page_third.starts_at == 129 * MIN
    fourth = evaluate_alerts([PLATFORM], {PLATFORM.name: recovered}, 200 * MIN, previous=third)
    assert all(a.severity != "page" for a in fourth)


def test_short_window_uses_latest_evidence_when_empty() -> None:
    window = PLATFORM.alerting.page[0]  # 1h / 5m
    series = _series([(0, True), (15, False), (30, False), (45, False)])
    at_45 = evaluate_window(PLATFORM, window, series, 45 * MIN)
    assert at_45.short_end == 45 * MIN and at_45.firing
    at_52 = evaluate_window(PLATFORM, window, series, 52 * MIN)
    assert at_52.short_end == 49 * MIN  # the last evaluation whose 5m still held minute 45
    assert at_52.short_ratio == 1.0 and at_52.firing
    # A coarser evaluation interval moves the latest evidence accordingly.
    coarse = evaluate_window(PLATFORM, window, series, 52 * MIN, eval_interval_s=240)
    assert coarse.short_end == 48 * MIN


def test_latest_evidence_is_bounded_by_the_long_window() -> None:
    window = PLATFORM.alerting.page[0]
    series = _series([(m, False) for m in range(1, 6)])
    assert evaluate_window(PLATFORM, window, series, 30 * MIN).firing
    late = evaluate_window(PLATFORM, window, series, 66 * MIN)
    assert late.long_ratio is None and not late.firing


def test_guard_blocks_single_failure_and_can_be_overridden_per_window() -> None:
    series = _series([(15, True), (30, True), (45, False)])
    window = PLATFORM.alerting.page[0]
    verdict = evaluate_window(PLATFORM, window, series, 45 * MIN)
    assert verdict.long_ratio is not None and verdict.long_ratio > verdict.threshold
    assert verdict.short_ratio == 1.0
    assert verdict.bad_in_long == 1.0 and verdict.min_bad_events == 3
    assert not verdict.firing
    eager = BurnWindow(long=3600, short=300, burn_rate=14.4, min_bad_events=1)
    assert evaluate_window(PLATFORM, eager, series, 45 * MIN).firing


def test_ticket_only_slo_never_pages() -> None:
    slo = next(s for s in default_slos() if s.name == "attempt-platform-success")
    series = _series([(m, False) for m in range(1, 100)])
    alerts = evaluate_alerts([slo], {slo.name: series}, 100 * MIN)
    assert [a.severity for a in alerts] == ["ticket"]


def test_no_samples_no_alerts() -> None:
    assert evaluate_alerts(default_slos(), {}, 1e9) == []


def test_evaluation_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="eval_interval_s must be positive"):
        evaluate_window(PLATFORM, PLATFORM.alerting.page[0], _series([]), 0.0, eval_interval_s=0)


@pytest.mark.parametrize(
    ("objective", "bad", "total", "fires"),
    [(0.99, 7, 100, True), (0.99, 6, 100, False), (0.9, 61, 100, True), (0.9, 60, 100, False)],
)
def test_threshold_is_burn_times_budget(
    objective: float, bad: int, total: int, fires: bool
) -> None:
    slo = SloDefinition.model_validate(
        {
            **PLATFORM.model_dump(),
            "objective": objective,
            "alerting": {"page": [{"long": "1h", "short": "5m", "burn_rate": 6}], "ticket": []},
        }
    )
    series = _series([(m * 0.5, m <= total - bad) for m in range(1, total + 1)])
    verdict = evaluate_window(slo, slo.alerting.page[0], series, 50 * MIN)
    expected_threshold = 6 * (1 - objective)
    assert verdict.threshold == pytest.approx(expected_threshold)
    assert verdict.firing is fires


def test_alert_fingerprint_depends_on_labels_only() -> None:
    a = Alert("firing", {"a": "1", "b": "2"}, {"x": "y"}, 0.0)
    b = Alert("resolved", {"b": "2", "a": "1"}, {}, 5.0)
    assert a.fingerprint == b.fingerprint
