"""The licence wait SLI (F4): waits in ``held`` for licences of a managed pool, from the
held -> queued (or failed) transitions the reconciler writes; the built-in ``licence-wait``
SLO and its burn-rate alert, checked with the real ``promtool test rules`` against the
Python evaluator's verdicts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from hpcbridge.slo import (
    FinishedJob,
    build_samples_by_slo,
    default_slos,
    evaluate_alerts,
    finished_jobs,
    generate_rules,
    rules_to_yaml,
)
from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import JobId, MemoryStore, NewJob, new_job_id
from hpcbridge.telemetry import StoreCollector
from tests.slo._scenarios import compress
from tests.telemetry._sim import Sim
from tests.telemetry.conftest import value

SLO = next(s for s in default_slos() if s.name == "licence-wait")
LICENCE_WAIT = "hpcbridge_licence_wait_seconds"
BASE = 'project="proj", workload_class="batch"'


def test_waits_come_from_held_transitions_with_licence_numbers() -> None:
    store = MemoryStore()
    sim = Sim(store)
    long_wait = sim.job(["succeeded"], project="proj", licence_wait_s=4000.0)
    sim.job(["succeeded"], project="proj", licence_wait_s=120.0)
    sim.job(["succeeded"], project="proj")  # never held
    cancelled = _held(store, sim, "cancelled while held")
    store.transition(
        cancelled, JobState.CANCELLED, expected_version=2, now=sim.now + 50, reason="cancelled"
    )
    failed = _held(store, sim, "licence server gone")
    store.transition(
        failed,
        JobState.FAILED,
        expected_version=2,
        now=sim.now + 900,
        reason="no licence server of fluent has passed its health check for 15m",
        failure_class=FailureClass.LICENCE_UNAVAILABLE,
    )

    by_id = {job.job_id: job for job in finished_jobs(store)}
    assert [w for _, w in by_id[long_wait].licence_waits] == [4000.0]
    assert by_id[cancelled].licence_waits == ()  # given up on: not a wait the licences ended
    assert [w for _, w in by_id[failed].licence_waits] == [900.0]

    registry = CollectorRegistry()
    registry.register(StoreCollector(store))
    assert value(registry, f"{LICENCE_WAIT}_count", project="proj") == 3
    assert value(registry, f"{LICENCE_WAIT}_bucket", project="proj", le="1800.0") == 2
    assert value(registry, f"{LICENCE_WAIT}_sum", project="proj") == 5020.0


def _held(store: MemoryStore, sim: Sim, name: str) -> JobId:
    """A job held straight from acceptance for licences, as the reconciler holds it."""
    job_id = JobId(new_job_id())
    spec = {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": name, "command": ["x"]}
    store.create_jobs(
        [NewJob(job_id, "held", "proj", "batch", "local", spec)], now=sim.now, actor="t"
    )
    store.transition(
        job_id,
        JobState.HELD,
        expected_version=1,
        now=sim.now,
        reason="waiting for 3 licences of fluent (0 free)",
        data={"licences": {"fluent": {"requested": 3, "free": 0, "total": 4}}},
    )
    return job_id


MINUTES = 150
STALL_FROM = 60
"""From this minute the pool is exhausted: half the waits take over an hour."""


def _waits(minute: int) -> list[float]:
    return [300.0, 300.0] + ([4000.0, 4000.0] if minute >= STALL_FROM else [])


def _jobs() -> list[FinishedJob]:
    return [
        FinishedJob(
            f"w{m}-{i}",
            "proj",
            "batch",
            "succeeded",
            "",
            m * 60.0 + 30,
            licence_waits=((m * 60.0, wait),),
        )
        for m in range(1, MINUTES + 1)
        for i, wait in enumerate(_waits(m))
    ]


def _cumulative(bound: float) -> str:
    values = [0]
    for m in range(1, MINUTES + 1):
        values.append(values[-1] + sum(1 for w in _waits(m) if w <= bound))
    return compress(values)


@pytest.mark.prometheus
def test_licence_wait_alert_fires_in_promtool(promtool: str, tmp_path: Path) -> None:
    samples = build_samples_by_slo([SLO], _jobs())
    alert_tests: list[dict[str, Any]] = []
    fired = set()
    for minute in (50, 64, 70, 120, 150):
        firing = [a for a in evaluate_alerts([SLO], samples, minute * 60.0) if a.status == "firing"]
        fired |= {(minute, a.severity) for a in firing}
        alert_tests.append(
            {
                "eval_time": f"{minute}m",
                "alertname": "HpcbridgeSloBurnRate",
                "exp_alerts": [
                    {
                        "exp_labels": {k: v for k, v in a.labels.items() if k != "alertname"},
                        "exp_annotations": dict(a.annotations),
                    }
                    for a in firing
                ],
            }
        )
    # Before the stall nothing fires; once half the waits pass 30 min a ticket, then a page.
    assert not any(minute == 50 for minute, _ in fired)
    assert (70, "ticket") in fired and (120, "page") in fired and (150, "page") in fired
    series = [
        {"series": f'{LICENCE_WAIT}_bucket{{le="1800.0", {BASE}}}', "values": _cumulative(1800)},
        {
            "series": f'{LICENCE_WAIT}_bucket{{le="+Inf", {BASE}}}',
            "values": _cumulative(float("inf")),
        },
        {"series": f"{LICENCE_WAIT}_count{{{BASE}}}", "values": _cumulative(float("inf"))},
    ]
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alert_tests}],
    }
    (tmp_path / "rules.yml").write_text(rules_to_yaml(generate_rules([SLO])))
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False, width=1000))
    result = subprocess.run(
        [promtool, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
