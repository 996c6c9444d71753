"""Generated rules against the real promtool: syntax, and unit tests whose expectations
are the Python evaluator's verdicts, so both implementations are held to the same scenarios."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpcbridge.slo import (
    FinishedJob,
    GpuUtilizationSample,
    SloDefinition,
    build_samples_by_slo,
    default_slos,
    error_ratio,
    generate_rules,
    load_slo_file,
    rules_to_yaml,
)
from tests.slo._scenarios import Scenario, compress, every, firing, phases, promtool_test

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.prometheus

PLATFORM = default_slos()[0]
UNGUARDED = PLATFORM.model_copy(
    update={
        "name": "platform-success-unguarded",
        "alerting": PLATFORM.alerting.model_copy(update={"min_bad_events": 0}),
    }
)


def _run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _check_rules(promtool: str, slos: Sequence[SloDefinition], tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(rules_to_yaml(generate_rules(slos)))
    result = _run(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _test_rules(
    promtool: str, slos: Sequence[SloDefinition], test: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "rules.yml").write_text(rules_to_yaml(generate_rules(slos)))
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False, width=1000))
    result = _run(promtool, "test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    _check_rules(promtool, default_slos(), tmp_path)


def test_example_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    _check_rules(promtool, load_slo_file(REPO / "examples" / "slo.yaml").slos, tmp_path)


FAST = Scenario(
    "fast burn pages, recovery clears",
    330,
    good=phases((0, every(1, 10)), (241, every(1, 5)), (271, every(1, 10))),
    bad=phases((241, every(1, 5)), (271, every(1, 0))),
)


def test_fast_burn_pages_and_recovery_clears(promtool: str, tmp_path: Path) -> None:
    slos = [PLATFORM]
    assert ("platform-success", "page") not in firing(FAST.alerts_at(slos, 255))
    assert ("platform-success", "page") in firing(FAST.alerts_at(slos, 260))
    assert ("platform-success", "page") in firing(FAST.alerts_at(slos, 270))
    assert ("platform-success", "page") not in firing(FAST.alerts_at(slos, 280))
    _test_rules(promtool, slos, promtool_test(FAST, slos, [244, 255, 260, 270, 280, 330]), tmp_path)


MEDIUM = Scenario(
    "10% errors page on the 6h/30m pair only",
    360,
    good=phases((0, every(1, 10)), (121, every(1, 9))),
    bad=phases((121, every(1, 1))),
)


def test_sustained_medium_burn_pages_on_six_hour_window(promtool: str, tmp_path: Path) -> None:
    slos = [PLATFORM]
    assert ("platform-success", "page") not in firing(MEDIUM.alerts_at(slos, 280))
    alerts = MEDIUM.alerts_at(slos, 330)
    page = next(a for a in alerts if a.severity == "page")
    assert [v.long_s for v in page.windows if v.firing] == [6 * 3600]
    _test_rules(
        promtool, slos, promtool_test(MEDIUM, slos, [200, 280, 290, 310, 330, 360]), tmp_path
    )


SLOW = Scenario(
    "2% errors open a ticket, never a page",
    14 * 60,
    good=phases((0, every(1, 10)), (361, lambda m: 9 if m % 5 == 0 else 10)),
    bad=phases((361, every(5, 1))),
)


def test_slow_burn_tickets_without_paging(promtool: str, tmp_path: Path) -> None:
    slos = [PLATFORM]
    assert firing(SLOW.alerts_at(slos, 10 * 60)) == set()
    assert firing(SLOW.alerts_at(slos, 13 * 60)) == {("platform-success", "ticket")}
    assert firing(SLOW.alerts_at(slos, 14 * 60)) == {("platform-success", "ticket")}
    checks = [6 * 60, 10 * 60, 11 * 60, 13 * 60, 14 * 60]
    _test_rules(promtool, slos, promtool_test(SLOW, slos, checks), tmp_path)


_FAILED = (480, 600, 615, 630)
LOW = Scenario(
    "four jobs an hour",
    720,
    good=lambda m: 1 if m % 15 == 0 and m not in _FAILED else 0,
    bad=lambda m: 1 if m in _FAILED else 0,
)


def test_low_volume_single_failure_does_not_page(promtool: str, tmp_path: Path) -> None:
    slos = [PLATFORM, UNGUARDED]
    for minute in (480, 485, 540):
        alerts = firing(LOW.alerts_at(slos, minute))
        assert not {a for a in alerts if a[0] == "platform-success"}, minute
    # Without the guard the classic rules page on that one failure.
    assert ("platform-success-unguarded", "page") in firing(LOW.alerts_at(slos, 480))
    _test_rules(promtool, slos, promtool_test(LOW, slos, [480, 485, 540]), tmp_path)


def test_low_volume_repeated_failures_page_without_flapping(promtool: str, tmp_path: Path) -> None:
    slos = [PLATFORM]
    # 600, 615, 630 fail; the 5m window is empty between jobs, but the page holds on
    # the latest evidence until successes arrive, then clears.
    for minute in (630, 634, 640, 644, 650, 659):
        assert ("platform-success", "page") in firing(LOW.alerts_at(slos, minute)), minute
    assert ("platform-success", "page") not in firing(LOW.alerts_at(slos, 660))
    checks = [600, 615, 630, 634, 640, 644, 650, 659, 660, 700]
    _test_rules(promtool, slos, promtool_test(LOW, slos, checks), tmp_path)


def _expr_test(expr: str, minute: int, labels: str) -> dict[str, Any]:
    return {
        "expr": expr,
        "eval_time": f"{minute}m",
        "exp_samples": [{"labels": labels, "value": 1}],
    }


@pytest.mark.parametrize("le", ["3600.0", "3600"])
def test_queue_wait_threshold_matches_python(promtool: str, tmp_path: Path, le: str) -> None:
    """Error ratio of the histogram SLI equals Python's; both ``le`` spellings match."""
    slo = next(s for s in default_slos() if s.name == "queue-wait-priority")
    minutes = 180
    waits = {m: [100.0, 200.0, 300.0] + ([5000.0] if m % 2 else []) for m in range(1, minutes + 1)}
    jobs = [
        FinishedJob(
            f"q{m}-{i}",
            "proj",
            "priority",
            "succeeded",
            "",
            m * 60.0 + 1,
            queue_wait_s=w,
            started_at=m * 60.0,
        )
        for m, ws in waits.items()
        for i, w in enumerate(ws)
    ]
    base = 'project="proj", workload_class="priority"'

    def cumulative_count(bound: float) -> str:
        values = [0]
        for m in range(1, minutes + 1):
            values.append(values[-1] + sum(1 for w in waits[m] if w <= bound))
        return compress(values)

    series = [
        {
            "series": f'hpcbridge_queue_wait_seconds_bucket{{le="{le}", {base}}}',
            "values": cumulative_count(3600),
        },
        {
            "series": f'hpcbridge_queue_wait_seconds_bucket{{le="+Inf", {base}}}',
            "values": cumulative_count(float("inf")),
        },
        {
            "series": f"hpcbridge_queue_wait_seconds_count{{{base}}}",
            "values": cumulative_count(float("inf")),
        },
    ]
    samples = build_samples_by_slo([slo], jobs)[slo.name]
    tests = []
    for minute in (60, 121, 180):
        expected = error_ratio(samples, 3600, minute * 60.0)
        assert expected is not None and 0.1 < expected < 0.2
        tests.append(
            _expr_test(
                f'abs(slo:sli_error:ratio_rate1h{{slo="{slo.name}"}} - {expected!r}) < bool 1e-9',
                minute,
                '{slo="queue-wait-priority", workload_class="priority"}',
            )
        )
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
    }
    _test_rules(promtool, [slo], test, tmp_path)


def test_gpu_band_matches_python_within_one_slice(promtool: str, tmp_path: Path) -> None:
    slo = next(s for s in default_slos() if s.name == "gpu-utilization-band")
    minutes = 200
    cycle = (0.5, 0.7, 0.7, 0.9, 0.65)
    values = [cycle[m % len(cycle)] for m in range(minutes + 1)]
    readings = [GpuUtilizationSample(m * 60.0, "proj", "training", v) for m, v in enumerate(values)]
    samples = build_samples_by_slo([slo], [], readings)[slo.name]
    series = [
        {
            "series": 'hpcbridge_gpu_utilization_ratio{project="proj", workload_class="training"}',
            "values": " ".join(str(v) for v in values),
        }
    ]
    tests = []
    for minute in (90, 150, 200):
        expected = error_ratio(samples, 3600 * 6, minute * 60.0)
        assert expected == pytest.approx(0.4, abs=0.02)
        tests.append(
            _expr_test(
                f'abs(slo:sli_error:ratio_rate6h{{slo="{slo.name}"}} - {expected!r}) < bool 0.02',
                minute,
                '{slo="gpu-utilization-band", workload_class="*"}',
            )
        )
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
    }
    _test_rules(promtool, [slo], test, tmp_path)
